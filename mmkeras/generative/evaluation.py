r"""Numbers for a generator: does it draw what the caption asks, how close to real, how diverse?

A GAN has no test loss that says "good": its two losses measure the game, not the images. Three measurements
with an *attribute classifier* (a CNN with one softmax head per attribute, trained on real scenes only) do:

* **conditional accuracy** (条件准确率): generate images for conditions `c`; the share of them in which the
  classifier recovers the attribute that `c` asked for. Reported per attribute, as their mean (the headline
  number) and "joint" (all four right at once, the strictest);
* **Fréchet distance** (Fréchet 距离) on the classifier's penultimate features, FID's formula
  (Heusel et al. 2017) with this small classifier in place of Inception:
  $d^2 = \lVert\mu_r - \mu_g\rVert^2 + \operatorname{Tr}(\Sigma_r + \Sigma_g - 2(\Sigma_r\Sigma_g)^{1/2})$,
  with `Tr((S_r S_g)^{1/2}) = sum_i sqrt(lambda_i)`, `lambda_i` the eigenvalues of the symmetric PSD matrix
  `S_r^{1/2} S_g S_r^{1/2}` (same eigenvalues as `S_r S_g`): NumPy only. The distance between two halves
  of the real test images is the floor that sampling noise alone gives;
* **diversity** (多样性): the mean pairwise feature distance among images generated for the *same* condition,
  divided by the same figure for real scenes rendered with the same attributes. 1.0: as varied as real
  scenes; near 0: mode collapse (模式崩溃), the noise is ignored.
"""

from __future__ import annotations

import time

import keras
import numpy as np
from keras import layers

from mmkeras._validation import check_int
from mmkeras.config import is_smoke
from mmkeras.data.scenes import SCENE_ATTRIBUTES, SCENE_VALUES, load_scene_splits, render_scenes
from mmkeras.generative.gan import attributes_to_condition, labels_to_condition

# ------------------------------------------------------------------------------ the attribute classifier


def build_attribute_classifier(filters=(32, 64, 128), feature_dim: int = 64, image_shape=(32, 32, 3),
                               name: str = "attribute_classifier") -> keras.Model:
    """A CNN with one logits head per scene attribute: shape (5), color (6), size (2), position (9).

    Three `Conv2D(3x3) -> ReLU -> MaxPool(2)` blocks give a 4x4 map `m`; two views of it are joined:
    `GlobalMaxPool(m)` (*what* is there, wherever it is: learns shapes fast) and `ReLU(Dense(Flatten(m)))`
    (*where* it is). Then `features = ReLU(W [pool; where] + b)` (`feature_dim`, the layer named
    `"features"`: what the Fréchet distance compares), and four Dense heads returning logits.

    Example:
    >>> model = build_attribute_classifier(filters=(4, 4, 4), feature_dim=8)
    >>> tuple(model(np.zeros((2, 32, 32, 3), "float32"))["position"].shape)
    (2, 9)
    """
    feature_dim = check_int("feature_dim", feature_dim)
    image = keras.Input(image_shape, name="image")  # (batch, 32, 32, 3) in [0, 1]
    x = image
    for i, f in enumerate(filters):
        x = layers.Conv2D(check_int("filters", f), 3, padding="same", activation="relu", name=f"conv{i + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)  # (batch, h/2, w/2, f)
    what = layers.GlobalMaxPooling2D(name="what")(x)  # (batch, filters[-1])
    where = layers.Dense(feature_dim, activation="relu", name="where")(layers.Flatten(name="flatten")(x))
    x = layers.Concatenate(name="what_and_where")([what, where])  # (batch, filters[-1] + feature_dim)
    features = layers.Dense(feature_dim, activation="relu", name="features")(x)  # (batch, feature_dim)
    outputs = {name: layers.Dense(len(values), name=name)(features) for name, values in SCENE_VALUES.items()}
    return keras.Model(image, outputs, name=name)


def feature_extractor(classifier: keras.Model) -> keras.Model:
    """The classifier up to its `"features"` layer: images in [0, 1] -> `(batch, feature_dim)`."""
    return keras.Model(classifier.inputs, classifier.get_layer("features").output, name="classifier_features")


def train_attribute_classifier(train, val=None, epochs: int = 6, batch_size: int = 64, seed: int = 0,
                               verbose: int = 0) -> keras.Model:
    """Trains `build_attribute_classifier` on real scenes (a `MultimodalData`, images in [0, 1]) with
    Adam(2e-3) on the sum of the four cross-entropies. Calls `keras.utils.set_random_seed(seed)` first.

    Example:
    >>> from mmkeras.data.scenes import make_scenes
    >>> model = train_attribute_classifier(make_scenes(16), epochs=1)
    >>> sorted(model.output)
    ['color', 'position', 'shape', 'size']
    """
    keras.utils.set_random_seed(check_int("seed", seed, minimum=0))
    model = build_attribute_classifier()
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss={a: loss for a in SCENE_ATTRIBUTES},
                  metrics={a: ["accuracy"] for a in SCENE_ATTRIBUTES}, run_eagerly=is_smoke())
    validation = None if val is None else (val.features["image"], dict(val.labels))
    model.fit(train.features["image"], dict(train.labels), validation_data=validation, epochs=epochs,
              batch_size=batch_size, verbose=verbose)
    return model


def attribute_accuracy(classifier: keras.Model, images, labels, batch_size: int = 256) -> dict:
    """How often the classifier reads each attribute right on `images` (in [0, 1]).

    Returns:
        `{"shape", "color", "size", "position"}` accuracies, `"mean"` (their average) and `"joint"` (all
        four right on the same image).

    Example:
    >>> model = build_attribute_classifier(filters=(4, 4, 4), feature_dim=8)
    >>> labels = {"shape": [0], "color": [0], "size": [0], "position": [0]}
    >>> sorted(attribute_accuracy(model, np.zeros((1, 32, 32, 3), "float32"), labels))
    ['color', 'joint', 'mean', 'position', 'shape', 'size']
    """
    images = np.asarray(images, dtype="float32")
    if images.ndim != 4:
        raise ValueError(f"`images` must be (n, h, w, c) in [0, 1]. Received: shape={images.shape}")
    predictions = classifier.predict(images, batch_size=batch_size, verbose=0)
    correct = {a: np.asarray(predictions[a]).argmax(-1) == np.asarray(labels[a]) for a in SCENE_ATTRIBUTES}
    result = {a: float(c.mean()) for a, c in correct.items()}
    result["mean"] = float(np.mean([result[a] for a in SCENE_ATTRIBUTES]))
    result["joint"] = float(np.logical_and.reduce(list(correct.values())).mean())
    return result


def conditional_accuracy(gan, classifier: keras.Model, labels, batch_size: int = 256) -> dict:
    """Generates one image per row of `labels` (conditioned on those attributes) and scores it like
    `attribute_accuracy`: did the generator draw what the condition asked for?"""
    images = gan.sample(len(labels["shape"]), labels_to_condition(labels))
    return attribute_accuracy(classifier, images, labels, batch_size)


# ------------------------------------------------------------------------------------ Fréchet distance


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix (eigen-decomposition)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance_from_moments(mu_a, sigma_a, mu_b, sigma_b) -> float:
    r"""The Fréchet distance between the Gaussians `N(mu_a, sigma_a)` and `N(mu_b, sigma_b)`:
    $\lVert\mu_a - \mu_b\rVert^2 + \operatorname{Tr}\Sigma_a + \operatorname{Tr}\Sigma_b
    - 2 \sum_i \sqrt{\lambda_i}$, `lambda_i` the eigenvalues of `sigma_a^{1/2} sigma_b sigma_a^{1/2}`.

    Example:
    >>> frechet_distance_from_moments([0.0], [[1.0]], [3.0], [[4.0]])  # (0 - 3)^2 + (1 - 2)^2
    10.0
    """
    mu_a, mu_b = np.atleast_1d(np.asarray(mu_a, "float64")), np.atleast_1d(np.asarray(mu_b, "float64"))
    sigma_a, sigma_b = np.atleast_2d(np.asarray(sigma_a, "float64")), np.atleast_2d(np.asarray(sigma_b, "float64"))
    d = mu_a.shape[0]
    if mu_b.shape != (d,) or sigma_a.shape != (d, d) or sigma_b.shape != (d, d):
        raise ValueError(f"The means must be (d,) and the covariances (d, d), for the same d. Received: "
                         f"{mu_a.shape}, {sigma_a.shape}, {mu_b.shape}, {sigma_b.shape}")
    root_a = _psd_sqrt(sigma_a)
    middle = root_a @ sigma_b @ root_a  # symmetric PSD, same eigenvalues as sigma_a @ sigma_b
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum()  # Tr((S_a S_b)^1/2)
    distance = np.sum((mu_a - mu_b) ** 2) + np.trace(sigma_a) + np.trace(sigma_b) - 2 * trace_sqrt
    return float(max(distance, 0.0))


def frechet_distance(features_a, features_b) -> float:
    """The Fréchet distance between two sets of feature vectors `(n, d)`, each summarised by its mean and
    covariance (FID's formula; 0 for a set with itself).

    Example:
    >>> x = np.random.default_rng(0).normal(size=(500, 3))
    >>> frechet_distance(x, x) < 1e-6, round(frechet_distance(x, x + 1.0), 6)  # a shift by 1 in 3 dims
    (True, 3.0)
    """
    a, b = np.asarray(features_a, "float64"), np.asarray(features_b, "float64")
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"`features_a` and `features_b` must be (n, d) with the same d and n >= 2. "
                         f"Received: shapes {a.shape} and {b.shape}")
    return frechet_distance_from_moments(a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))


# ------------------------------------------------------------------------------------------- diversity


def mean_pairwise_distance(features) -> float:
    """The mean Euclidean distance over all pairs of rows of `features` `(n, d)`, n >= 2.

    Example:
    >>> mean_pairwise_distance([[0.0, 0.0], [3.0, 4.0]])
    5.0
    """
    f = np.asarray(features, "float64")
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"`features` must be (n, d) with n >= 2. Received: shape={f.shape}")
    squared = np.sum(f ** 2, 1)
    distances = np.sqrt(np.clip(squared[:, None] + squared[None, :] - 2 * f @ f.T, 0, None))  # (n, n)
    return float(distances[np.triu_indices(len(f), 1)].mean())


def diversity(gan, features: keras.Model, num_conditions: int = 24, per_condition: int = 16, seed: int = 0) -> dict:
    """Mode-collapse check: within-condition spread of generated images relative to real ones.

    For `num_conditions` random attribute combinations, `per_condition` images are generated (different
    noise) and as many real scenes rendered (`render_scenes`: position jitter, radius, color noise,
    background); the mean pairwise distance of their `features` within each group is averaged.

    Returns:
        `{"generated": float, "real": float, "ratio": generated / real}`; ratio 1.0: as diverse as real
        scenes; about 0: the generator ignores its noise (mode collapse).
    """
    num_conditions = check_int("num_conditions", num_conditions)
    per_condition = check_int("per_condition", per_condition, minimum=2)
    rng = np.random.default_rng(check_int("seed", seed, minimum=0))
    spread = {"generated": [], "real": []}
    for _ in range(num_conditions):
        ids = [int(rng.integers(len(SCENE_VALUES[a]))) for a in SCENE_ATTRIBUTES]
        real = render_scenes(*[np.full(per_condition, i) for i in ids], rng=rng)
        fake = gan.sample(per_condition, attributes_to_condition(*ids)[0])
        for key, images in (("real", real), ("generated", fake)):
            spread[key].append(mean_pairwise_distance(features.predict(images, verbose=0)))
    result = {key: float(np.mean(v)) for key, v in spread.items()}
    result["ratio"] = result["generated"] / max(result["real"], 1e-12)
    return result


# ------------------------------------------------------------------------------------- the whole report


def evaluate_generator(gan, classifier: keras.Model, test, seed: int = 0, diversity_conditions: int = 24) -> dict:
    """All the chapter's numbers for a conditional GAN, on a real test split (`MultimodalData`).

    The test split is halved: half A against half B gives the Fréchet floor; half A against images generated
    for half B's conditions (as many as B) gives the generator's distance, so both use the same sample size.

    Returns:
        `{"classifier_accuracy": {...} on real test images, "conditional_accuracy": {...} per attribute /
        mean / joint, "frechet_distance", "frechet_real_real", "diversity": {...}}`.
    """
    images, labels = test.features["image"], test.labels
    n = len(images) // 2
    half_a, half_b = slice(0, n), slice(n, 2 * n)
    labels_b = {a: np.asarray(labels[a])[half_b] for a in SCENE_ATTRIBUTES}
    features = feature_extractor(classifier)
    generated = gan.sample(n, labels_to_condition(labels_b))
    real_a = features.predict(images[half_a], verbose=0)
    return {
        "classifier_accuracy": attribute_accuracy(classifier, images, labels),
        "conditional_accuracy": attribute_accuracy(classifier, generated, labels_b),
        "frechet_distance": frechet_distance(real_a, features.predict(generated, verbose=0)),
        "frechet_real_real": frechet_distance(real_a, features.predict(images[half_b], verbose=0)),
        "diversity": diversity(gan, features, num_conditions=diversity_conditions, seed=seed),
    }


RECIPE = {"train_size": 6000, "epochs": 30, "batch_size": 64, "latent_dim": 64, "filters": 32,
          "auxiliary_weight": 10.0, "classifier_epochs": 6, "test_size": 1000}
"""The notebook's recipe (full mode): 6000 training scenes, 30 epochs of batch 64, a 64-d noise, an AC-GAN
auxiliary loss with weight 10 (measured on this recipe, joint conditional accuracy: 0.44 with weight 2,
0.68 with weight 10)."""
SMOKE_RECIPE = {"train_size": 256, "epochs": 1, "batch_size": 64, "latent_dim": 64, "filters": 32,
                "auxiliary_weight": 10.0, "classifier_epochs": 1, "test_size": 128}


def bench(smoke: bool | None = None, progress: bool = False) -> dict:
    """Trains the chapter's conditional GAN on the scenes with the notebook's recipe and evaluates it.

    Args:
        smoke: bool or None. Tiny sizes (seconds); `None` reads `MMKERAS_SMOKE`. Defaults to `None`.
        progress: bool. Print Keras progress. Defaults to `False`.

    Returns:
        `{"conditional_accuracy": mean per-attribute accuracy, "frechet_distance": float, "diversity": ratio,
        "seconds": wall-clock of training + evaluation}` and, for context, `"conditional_accuracy_joint"`,
        `"frechet_real_real"` and `"classifier_accuracy"` (mean over the attributes, on real test images).
    """
    from mmkeras.generative.gan import build_conditional_gan, to_tanh_range

    recipe = SMOKE_RECIPE if (is_smoke() if smoke is None else smoke) else RECIPE
    start = time.perf_counter()
    splits = load_scene_splits(recipe["train_size"], 200, recipe["test_size"], seed=0)
    train, val, test = splits["train"], splits["val"], splits["test"]
    verbose = 2 if progress else 0
    classifier = train_attribute_classifier(train, val, epochs=recipe["classifier_epochs"], verbose=verbose)
    keras.utils.set_random_seed(0)
    gan = build_conditional_gan(recipe["latent_dim"], recipe["filters"], seed=0,
                                auxiliary_weight=recipe["auxiliary_weight"])
    gan.fit(to_tanh_range(train.features["image"]), labels_to_condition(train), batch_size=recipe["batch_size"],
            epochs=recipe["epochs"], shuffle=True, verbose=verbose)
    report = evaluate_generator(gan, classifier, test)
    return {
        "conditional_accuracy": report["conditional_accuracy"]["mean"],
        "frechet_distance": report["frechet_distance"],
        "diversity": report["diversity"]["ratio"],
        "seconds": time.perf_counter() - start,
        "conditional_accuracy_joint": report["conditional_accuracy"]["joint"],
        "frechet_real_real": report["frechet_real_real"],
        "classifier_accuracy": report["classifier_accuracy"]["mean"],
    }
