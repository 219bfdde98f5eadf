"""Solutions to the exercises of notebook 09 (GANs).

Run: `python notebooks/solutions/09_gan.py` (add `MMKERAS_SMOKE=1` for a quick run; the full run trains two
small conditional GANs for a few epochs each: several minutes on 2 CPU cores). Pass exercise numbers to run
only some of them, e.g. `python notebooks/solutions/09_gan.py 1 2`.
"""

from __future__ import annotations

import sys

import keras
import numpy as np

import mmkeras
import mmkeras.generative as gen
from mmkeras.data.scenes import SCENE_ATTRIBUTES, SCENE_VALUES, load_scene_splits, render_scenes

SMOKE = mmkeras.config.is_smoke()
EPOCHS = mmkeras.config.by_mode(full=6, smoke=1)
TRAIN_SIZE = mmkeras.config.by_mode(full=6000, smoke=128)


def exercise_1():
    """a log y + b log(1 - y) has derivative a / y - b / (1 - y) = 0 <=> y = a / (a + b), and it is concave, so
    D*(x) = p_data / (p_data + p_G) maximises V pointwise (a = p_data(x), b = p_G(x)). With p_G = p_data,
    D* = 1/2 everywhere and V(D*, G) = log(1/2) + log(1/2) = -log 4 (L_D = 2 log 2)."""
    def gaussian(x, mean, std):
        return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * np.sqrt(2 * np.pi))

    grid = np.linspace(1e-4, 1 - 1e-4, 100_001)  # candidate values of D(x)
    for x in (-1.0, 0.0, 0.7, 2.0):
        p_data, p_g = gaussian(x, 0.0, 1.0), gaussian(x, 1.0, 0.5)
        pointwise_loss = -(p_data * np.log(grid) + p_g * np.log(1 - grid))  # the integrand of -V at x
        numeric, formula = grid[pointwise_loss.argmin()], p_data / (p_data + p_g)
        print(f"x = {x:+.1f}: argmin over D {numeric:.4f}, formula {formula:.4f}")
        assert abs(numeric - formula) < 1e-3
    value = np.log(0.5) + np.log(0.5)
    print(f"p_G = p_data: D* = 1/2, V = {value:.4f} = -log 4, L_D = {float(gen.discriminator_loss([0.0], [0.0])):.4f}")
    assert np.isclose(value, -np.log(4)) and np.isclose(float(gen.discriminator_loss([0.0], [0.0])), np.log(4))


def exercise_2():
    """Same noise for every image of a condition -> identical images -> pairwise distance 0 -> ratio 0. The
    conditional accuracy cannot see it: one good image per condition, repeated, reads back perfectly."""
    keras.utils.set_random_seed(0)
    gan = gen.build_conditional_gan(latent_dim=16, filters=8)  # untrained is enough: collapse is about the noise
    classifier = gen.build_attribute_classifier(filters=(8, 8, 8), feature_dim=16)
    features = gen.feature_extractor(classifier)
    rng = np.random.default_rng(0)
    spread = {"collapsed": [], "normal": [], "real": []}
    for _ in range(4):
        ids = [int(rng.integers(len(SCENE_VALUES[a]))) for a in SCENE_ATTRIBUTES]
        condition = gen.attributes_to_condition(*ids)[0]
        same_noise = np.repeat(rng.standard_normal((1, gan.latent_dim)).astype("float32"), 16, axis=0)
        images = {"collapsed": gan.generate(same_noise, condition), "normal": gan.sample(16, condition),
                  "real": render_scenes(*[np.full(16, i) for i in ids], rng=rng)}
        for key, batch in images.items():
            spread[key].append(gen.mean_pairwise_distance(features.predict(batch, verbose=0)))
    ratios = {key: float(np.mean(spread[key]) / np.mean(spread["real"])) for key in ("collapsed", "normal")}
    print(f"diversity ratio: collapsed generator {ratios['collapsed']:.4f}, normal noise {ratios['normal']:.3f}")
    assert ratios["collapsed"] < 1e-3 < ratios["normal"]


class SaturatingConditionalGAN(gen.ConditionalGAN):
    """The minimax generator loss mean[log(1 - D(G(z, c), c))], whose gradient vanishes as D(G(z)) -> 0."""

    def compute_generator_loss(self, fake_logits):
        return gen.saturating_generator_loss(fake_logits)


def _train(cls, splits, batch_norm=False):
    keras.utils.set_random_seed(0)
    gan = cls(gen.build_generator(64, gen.CONDITION_DIM, 32),
              gen.build_discriminator(gen.CONDITION_DIM, 32, batch_norm=batch_norm), seed=0)
    gan.compile()
    train = splits["train"]
    history = gan.fit(gen.to_tanh_range(train.features["image"]), gen.labels_to_condition(train), batch_size=64,
                      epochs=EPOCHS, shuffle=True, verbose=0)
    return gan, history.history


_cache = {}


def _setup():
    if not _cache:
        splits = load_scene_splits(TRAIN_SIZE, 100, mmkeras.config.by_mode(full=1000, smoke=64), seed=0)
        classifier = gen.train_attribute_classifier(splits["train"], epochs=mmkeras.config.by_mode(full=6, smoke=1))
        _cache.update(splits=splits, classifier=classifier, baseline=_train(gen.ConditionalGAN, splits))
    return _cache["splits"], _cache["classifier"], _cache["baseline"]


def exercise_3():
    """With the saturating loss the generator gets almost no gradient once D rejects its samples: d_fake stays
    lower and the images (and the conditional accuracy) improve more slowly than with -log D(G(z))."""
    splits, classifier, (baseline, baseline_history) = _setup()
    saturating, history = _train(SaturatingConditionalGAN, splits)
    labels = splits["test"].labels
    for name, gan, h in (("non-saturating", baseline, baseline_history), ("saturating", saturating, history)):
        accuracy = gen.conditional_accuracy(gan, classifier, labels)
        print(f"{name:<15} d_fake per epoch {np.round(h['d_fake'], 3).tolist()}, conditional accuracy "
              f"{accuracy['mean']:.3f}")
    assert np.all(np.isfinite(history["g_loss"])) and history["g_loss"][-1] <= 0  # log(1 - D) <= 0 always


def exercise_4():
    """DCGAN's batch-normalized discriminator: d_fake falls towards 0 within the first epochs (D wins, the
    generator's samples stop improving); without it the game stays balanced."""
    splits, _, (_, baseline_history) = _setup()
    _, history = _train(gen.ConditionalGAN, splits, batch_norm=True)
    print(f"d_fake, D without batch norm: {np.round(baseline_history['d_fake'], 3).tolist()}")
    print(f"d_fake, D with batch norm:    {np.round(history['d_fake'], 3).tolist()}")
    assert all(0 <= v <= 1 for v in history["d_fake"])
    if not SMOKE:
        assert history["d_fake"][-1] < baseline_history["d_fake"][-1]


if __name__ == "__main__":
    chosen = [int(a) for a in sys.argv[1:]] or [1, 2, 3, 4]
    for number in chosen:
        print(f"--- exercise {number}")
        globals()[f"exercise_{number}"]()
