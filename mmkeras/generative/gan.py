r"""DCGAN and conditional GAN (text -> image) for the captioned scenes, and the two players' losses.

A GAN (生成对抗网络, generative adversarial network) is a two-player game. The generator (生成器) $G$ maps noise
$z \sim \mathcal{N}(0, I)$ to an image; the discriminator (判别器) $D$ returns the probability that an image is
real, $D(x) = \sigma(\ell(x))$ with $\ell$ a logit. Goodfellow et al. (2014) write the game as

    min_G max_D V(D, G),   V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))].

Each player minimises its *own* loss, computed here from logits with the numerically stable binary
cross-entropy (`from_logits=True`, i.e. `-log sigma(l) = softplus(-l)` and `-log(1 - sigma(l)) = softplus(l)`):

    discriminator:  L_D = mean_i[-log D(x_i) - log(1 - D(G(z_i)))]
    generator:      L_G = mean_i[-log D(G(z_i))]        (the non-saturating loss)

The generator does not minimise `log(1 - D(G(z)))` (the minimax form): its gradient vanishes exactly when
the generator is bad and `D(G(z))` is near 0. `-log D(G(z))` has the same fixed point and a large gradient
there. There is no "total loss" `L_G + L_D`: the two players pull in opposite directions, and nobody
minimises the sum.

The models follow the DCGAN guidelines (Radford, Metz and Chintala 2016): strided convolutions in D and
transposed convolutions in G instead of pooling, batch normalization in G (not on its output), ReLU in G
with a tanh output, LeakyReLU(0.2) in D, Adam with learning rate 2e-4 and beta_1 = 0.5. DCGAN also
normalizes D; on the scenes that D wins at once, so it is optional here (`build_discriminator(batch_norm=)`).
Images are in [-1, 1] for the tanh (`to_tanh_range`).

The conditional GAN (Mirza and Osindero 2014) gives both players the condition `c`: the four attributes a
caption names, as a multi-hot vector of the 22 attribute values (`caption_to_condition`). G reads
`[z; c]` (and `c` again, tiled, at 4x4 and 8x8); D is a projection discriminator (Miyato and Koyama 2018),
`l(x, c) = w^T h(x) + b + c^T V h(x)`: the image features `h(x)` are scored against an embedding of each named
attribute (the rows of `V`). With `build_discriminator(auxiliary=True)` it is also an AC-GAN (Odena, Olah and
Shlens 2017): D has a second head `u(x)` that classifies the attributes, and both players ADD the auxiliary
cross-entropy to their unchanged adversarial losses:

    L_aux(x, c) = mean_i sum_a -log softmax(u_a(x_i))[c_{i,a}]        (`auxiliary_loss`)
    L_D' = L_D + lambda * L_aux(x, c)          (real images)
    L_G' = L_G + lambda * L_aux(G(z, c), c)    (generated images), lambda = `auxiliary_weight`.

Backend: `GAN.train_step` uses `tf.GradientTape`, so *training* runs on the TensorFlow backend only (the
course's); the models, the losses and sampling are `keras.ops` code and run on any backend.
"""

from __future__ import annotations

import re

import keras
import numpy as np
from keras import layers, ops

from mmkeras._validation import check_int, check_shape
from mmkeras.data.scenes import SCENE_ATTRIBUTES, SCENE_VALUES, SCENE_VOCABULARY

CONDITION_SIZES = {name: len(values) for name, values in SCENE_VALUES.items()}
"""How many values each attribute has: shape 5, color 6, size 2, position 9."""
CONDITION_OFFSETS = dict(zip(SCENE_ATTRIBUTES, np.cumsum([0] + list(CONDITION_SIZES.values()))[:-1].tolist()))
"""Where each attribute's block starts in the multi-hot condition: shape 0, color 5, size 11, position 13."""
CONDITION_DIM = int(sum(CONDITION_SIZES.values()))
"""The length of a condition vector: 5 + 6 + 2 + 9 = 22 attribute values."""
CONDITION_BLOCKS = tuple(CONDITION_SIZES.values())
"""The scenes' condition as categorical blocks, in order: `(5, 6, 2, 9)` (`ConditionalGAN(condition_blocks=...)`)."""


# ----------------------------------------------------------------------------------------------- losses


def discriminator_loss(real_logits, fake_logits):
    """The discriminator's loss `L_D = mean[-log D(x)] + mean[-log(1 - D(G(z)))]`, from logits.

    With `D = sigmoid(logit)`: `-log D(x) = softplus(-l_real)` and `-log(1 - D(G(z))) = softplus(l_fake)`,
    computed by the stable binary cross-entropy with `from_logits=True` (targets 1 for real, 0 for fake).

    Args:
        real_logits: tensor `(batch, 1)` or `(batch,)`. D's logits on real images.
        fake_logits: tensor, same form. D's logits on generated images.

    Returns:
        A scalar tensor.

    Example:
    >>> round(float(discriminator_loss(np.zeros((4, 1)), np.zeros((4, 1)))), 4)  # D(x) = 1/2: 2 log 2
    1.3863
    """
    real_logits = ops.cast(real_logits, "float32")
    fake_logits = ops.cast(fake_logits, "float32")
    real = ops.binary_crossentropy(ops.ones_like(real_logits), real_logits, from_logits=True)  # -log D(x)
    fake = ops.binary_crossentropy(ops.zeros_like(fake_logits), fake_logits, from_logits=True)  # -log(1-D(G(z)))
    return ops.mean(real) + ops.mean(fake)


def generator_loss(fake_logits):
    """The generator's non-saturating loss `L_G = mean[-log D(G(z))]`, from logits (`softplus(-l_fake)`).

    Its gradient with respect to the logit is `sigmoid(l) - 1`, about -1 when D rejects the samples
    (`D(G(z)) -> 0`): the generator learns fastest when it is worst.

    Example:
    >>> round(float(generator_loss(np.zeros((4, 1)))), 4)  # log 2
    0.6931
    """
    fake_logits = ops.cast(fake_logits, "float32")
    return ops.mean(ops.binary_crossentropy(ops.ones_like(fake_logits), fake_logits, from_logits=True))


def saturating_generator_loss(fake_logits):
    """The minimax generator loss `mean[log(1 - D(G(z)))] = -mean[softplus(l_fake)]`, for comparison only.

    Its gradient with respect to the logit is `-sigmoid(l)`, which goes to 0 as `D(G(z)) -> 0`: a generator
    trained on it stops learning when D wins, which is the usual state early in training.

    Example:
    >>> round(float(saturating_generator_loss(np.zeros((4, 1)))), 4)  # log(1/2)
    -0.6931
    """
    fake_logits = ops.cast(fake_logits, "float32")
    return -ops.mean(ops.binary_crossentropy(ops.zeros_like(fake_logits), fake_logits, from_logits=True))


def auxiliary_loss(attribute_logits, condition, blocks=CONDITION_BLOCKS):
    r"""AC-GAN's auxiliary classification loss: the cross-entropy of the discriminator's attribute logits
    against the attributes a multi-hot condition names, summed over the condition's categorical blocks,
    averaged over the batch:

        L_aux = mean_i sum_a [-log softmax(u_a(x_i))[c_{i,a}]]

    `u_a` is the block of the logits that belongs to attribute `a` and `c_{i,a}` the value the condition
    names there. For the scenes the blocks are shape 0:5, color 5:11, size 11:13, position 13:22
    (`CONDITION_BLOCKS`); a single class label one-hot over K classes is `blocks=(K,)`.

    Args:
        attribute_logits: tensor `(batch, sum(blocks))`. The discriminator's auxiliary head.
        condition: tensor `(batch, sum(blocks))`. One one-hot block per attribute (`attributes_to_condition`).
        blocks: tuple of int. The size of each categorical block, in order. Defaults to the scenes' `(5, 6, 2, 9)`.

    Returns:
        A scalar tensor.

    Example:
    >>> round(float(auxiliary_loss(np.zeros((2, 22)), attributes_to_condition([0, 1], 0, 0, 0))), 4)
    6.2916
    """
    blocks = check_blocks(blocks, int(attribute_logits.shape[-1]))
    attribute_logits = ops.cast(attribute_logits, "float32")
    condition = ops.cast(condition, "float32")
    total, start = 0.0, 0
    for size in blocks:
        log_p = ops.log_softmax(attribute_logits[:, start:start + size], axis=-1)  # (batch, size)
        total = total - ops.sum(condition[:, start:start + size] * log_p, axis=-1)  # (batch,): -log p(c_a | x)
        start += size
    return ops.mean(total)


def check_blocks(blocks, condition_dim: int) -> tuple:
    """`blocks` as a tuple of ints >= 2 that add up to `condition_dim`, or a ValueError naming what is wrong."""
    try:
        blocks = tuple(int(check_int("condition block", b, minimum=2)) for b in blocks)
    except (TypeError, ValueError) as error:
        raise ValueError(f"`condition_blocks` must be a list of block sizes (ints >= 2), e.g. (5, 6, 2, 9) for the "
                         f"scenes or (10,) for one 10-class label. Received: {blocks!r}") from error
    if not blocks or sum(blocks) != condition_dim:
        raise ValueError(f"`condition_blocks` must add up to the condition size {condition_dim}. "
                         f"Received: condition_blocks={blocks!r} (sum {sum(blocks)})")
    return blocks


# ------------------------------------------------------------------------------------- pixel ranges


def to_tanh_range(images):
    """Images in [0, 1] -> [-1, 1] (`2x - 1`), the range of the generator's tanh output."""
    return 2.0 * images - 1.0


def to_unit_range(images):
    """Images in [-1, 1] -> [0, 1] (`(x + 1) / 2`), clipped: for plotting and for the attribute classifier."""
    return ops.clip((images + 1.0) / 2.0, 0.0, 1.0)


# ------------------------------------------------------------------------------------------ conditions


def attributes_to_condition(shape, color, size, position) -> np.ndarray:
    """Multi-hot conditions `(n, 22)` float32 from attribute ids (scalars or arrays of equal length).

    Entry `CONDITION_OFFSETS[a] + id` is 1 for each of the four attributes, the rest 0.

    Example:
    >>> np.flatnonzero(attributes_to_condition(3, 0, 1, 4)[0]).tolist()  # large red cross, center
    [3, 5, 12, 17]
    """
    ids = [np.asarray(a).reshape(-1) for a in (shape, color, size, position)]
    n = max(len(a) for a in ids)
    condition = np.zeros((n, CONDITION_DIM), dtype="float32")
    for name, a in zip(SCENE_ATTRIBUTES, ids):
        if len(a) not in (1, n) or not np.issubdtype(a.dtype, np.integer) or (
                len(a) and (a.min() < 0 or a.max() >= CONDITION_SIZES[name])):
            raise ValueError(f"`{name}` must hold integer ids in [0, {CONDITION_SIZES[name]}), one per scene "
                             f"(or one for all). Received: {name}={a.tolist()[:8]}")
        condition[np.arange(n), CONDITION_OFFSETS[name] + np.broadcast_to(a, (n,))] = 1.0
    return condition


def labels_to_condition(labels) -> np.ndarray:
    """Conditions `(n, 22)` from a labels dict `{"shape": ..., "color": ..., "size": ..., "position": ...}`
    (e.g. `scenes.labels`) or a `MultimodalData`.

    Example:
    >>> labels_to_condition({"shape": [0, 1], "color": [0, 0], "size": [0, 0], "position": [0, 8]}).shape
    (2, 22)
    """
    labels = getattr(labels, "labels", labels)
    missing = [a for a in SCENE_ATTRIBUTES if a not in labels]
    if missing:
        raise ValueError(f"`labels` must have the keys {SCENE_ATTRIBUTES}. Missing: {missing}; "
                         f"received keys: {sorted(labels)}")
    return attributes_to_condition(*(labels[a] for a in SCENE_ATTRIBUTES))


def condition_to_attributes(condition) -> dict:
    """The attribute ids `{name: (n,) int}` a condition `(n, 22)` (or `(22,)`) encodes: argmax per block.

    Example:
    >>> condition_to_attributes(attributes_to_condition(3, 0, 1, 4))["position"].tolist()
    [4]
    """
    condition = np.asarray(condition, dtype="float32")
    condition = condition[None] if condition.ndim == 1 else condition
    if condition.ndim != 2 or condition.shape[-1] != CONDITION_DIM:
        raise ValueError(f"`condition` must be (n, {CONDITION_DIM}). Received: shape={condition.shape}")
    return {name: condition[:, CONDITION_OFFSETS[name]:CONDITION_OFFSETS[name] + size].argmax(-1).astype("int32")
            for name, size in CONDITION_SIZES.items()}


def _parse_caption(caption: str) -> list:
    """The four attribute ids a caption names, `[shape, color, size, position]`."""
    if not isinstance(caption, str):
        raise ValueError(f"A caption must be a str. Received: caption={caption!r}")
    words = re.findall(r"[a-z]+", caption.lower())
    unknown = [w for w in words if w not in SCENE_VOCABULARY]
    if unknown:
        raise ValueError(f"The caption has words outside the scenes vocabulary: {unknown}. "
                         f"Known words: {list(SCENE_VOCABULARY)}. Received: caption={caption!r}")
    ids = []
    for name in ("shape", "color", "size"):
        named = sorted({SCENE_VALUES[name].index(w) for w in words if w in SCENE_VALUES[name]})
        if len(named) != 1:
            raise ValueError(f"A caption must name exactly one {name} out of {SCENE_VALUES[name]}. "
                             f"Received: caption={caption!r} (names {[SCENE_VALUES[name][i] for i in named]})")
        ids.append(named[0])
    rows, columns = {"top", "bottom"} & set(words), {"left", "right"} & set(words)
    if not (rows or columns or "center" in words):
        raise ValueError(f"A caption must name a position (top / bottom / left / right / center, e.g. "
                         f"'at the top left', 'in the center'). Received: caption={caption!r}")
    if len(rows) > 1 or len(columns) > 1 or ("center" in words and (rows or columns)):
        raise ValueError(f"The caption names contradicting positions. Received: caption={caption!r}")
    row = {"top": 0, "bottom": 2}[rows.pop()] if rows else 1
    column = {"left": 0, "right": 2}[columns.pop()] if columns else 1
    ids.append(row * 3 + column)  # SCENE_POSITIONS is the 3x3 grid, row by row
    return ids


def caption_to_condition(caption) -> np.ndarray:
    """The condition a caption names: `(22,)` for one caption, `(n, 22)` for a list of them.

    The caption must use the scenes' vocabulary (`SCENE_VOCABULARY`) and name one shape, one color, one
    size and a position; word order does not matter: "a large blue circle in the center".

    Raises:
        ValueError: on a word outside the vocabulary (the message names it and lists the vocabulary), or a
            caption that names no shape, color, size or position, or two of them.

    Example:
    >>> condition_to_attributes(caption_to_condition("a large blue circle in the center"))
    {'shape': array([0], dtype=int32), 'color': array([2], dtype=int32), 'size': array([1], dtype=int32), \
'position': array([4], dtype=int32)}
    """
    if isinstance(caption, str):
        return attributes_to_condition(*_parse_caption(caption))[0]
    ids = np.array([_parse_caption(c) for c in caption], dtype="int64").reshape(-1, 4)
    return attributes_to_condition(*ids.T)


# ------------------------------------------------------------------------------------------ the models


def build_generator(latent_dim: int = 64, condition_dim: int = 0, filters: int = 32, image_shape=(32, 32, 3),
                    name: str = "generator") -> keras.Model:
    """The DCGAN generator: `[z; c]` -> Dense -> 4x4 -> three stride-2 transposed convolutions -> tanh.

    Dense to `(4, 4, 4 * filters)`, then `Conv2DTranspose(4x4, stride 2)` to 8x8 (`2 * filters`), 16x16
    (`filters`) and 32x32 (channels), each but the last followed by BatchNormalization and ReLU; the last
    has a tanh, so the images are in [-1, 1]. A conditional generator also concatenates `c`, tiled over the
    map, to the 4x4 and 8x8 features before their upsampling: the condition reaches every resolution.

    Args:
        latent_dim: int. The size of the noise `z`. Defaults to `64`.
        condition_dim: int. The size of the condition `c` (22 for the scenes' attributes); `0` builds an
            unconditional generator with the single input `noise`. Defaults to `0`.
        filters: int. The filters of the last hidden layer; the 4x4 and 8x8 layers have 4x and 2x as many.
            Defaults to `32`.
        image_shape: tuple. `(height, width, channels)`, height and width divisible by 8. Defaults to
            `(32, 32, 3)`.
        name: str. Defaults to `"generator"`.

    Returns:
        A functional `keras.Model`: `noise (batch, latent_dim)` [and `condition (batch, condition_dim)`] ->
        images `(batch, *image_shape)` in [-1, 1].

    Example:
    >>> build_generator(8, condition_dim=22, filters=4).output_shape
    (None, 32, 32, 3)
    """
    latent_dim = check_int("latent_dim", latent_dim)
    condition_dim = check_int("condition_dim", condition_dim, minimum=0)
    filters = check_int("filters", filters)
    height, width, channels = check_shape("image_shape", image_shape, rank=3)
    if height % 8 or width % 8:
        raise ValueError(f"`image_shape` must have height and width divisible by 8 (three 2x upsamplings). "
                         f"Received: image_shape={tuple(image_shape)}")
    noise = keras.Input((latent_dim,), name="noise")
    inputs = [noise]
    x = noise
    if condition_dim:
        condition = keras.Input((condition_dim,), name="condition")
        inputs.append(condition)
        x = layers.Concatenate(name="noise_and_condition")([noise, condition])  # (batch, latent + condition)
    x = layers.Dense(height // 8 * width // 8 * 4 * filters, use_bias=False, name="project")(x)
    x = layers.Reshape((height // 8, width // 8, 4 * filters), name="to_4x4")(x)  # (batch, 4, 4, 4f)
    x = layers.BatchNormalization(name="project_bn")(x)
    x = layers.ReLU(name="project_relu")(x)
    for i, f in enumerate((2 * filters, filters)):
        if condition_dim:  # the condition again at 4x4 and 8x8, tiled over the map: (batch, h, w, f + condition)
            tiled = layers.UpSampling2D(x.shape[1], name=f"tile_condition{i + 1}")(
                layers.Reshape((1, 1, condition_dim), name=f"condition_map{i + 1}")(condition))
            x = layers.Concatenate(name=f"with_condition{i + 1}")([x, tiled])
        x = layers.Conv2DTranspose(f, 4, strides=2, padding="same", use_bias=False, name=f"up{i + 1}")(x)
        x = layers.BatchNormalization(name=f"up{i + 1}_bn")(x)  # (batch, 8 or 16, 8 or 16, f)
        x = layers.ReLU(name=f"up{i + 1}_relu")(x)
    images = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", activation="tanh",
                                    name="to_image")(x)  # (batch, 32, 32, 3) in [-1, 1]
    return keras.Model(inputs if condition_dim else noise, images, name=name)


def build_discriminator(condition_dim: int = 0, filters: int = 32, image_shape=(32, 32, 3), batch_norm: bool = False,
                        auxiliary: bool = False, name: str = "discriminator") -> keras.Model:
    """The DCGAN discriminator: three stride-2 convolutions with LeakyReLU(0.2) -> one logit.

    `Conv2D(4x4, stride 2)` to 16x16 (`filters`), 8x8 (`2 * filters`) and 4x4 (`4 * filters`); the features
    `h(x)` (flattened) give the logit `l(x) = w^T h(x) + b`. With a condition it is a projection
    discriminator: `l(x, c) = w^T h(x) + b + (V^T c)^T h(x)`, `V^T c` the sum of one learned embedding per
    named attribute.

    DCGAN puts batch normalization in D too (not on its input layer): `batch_norm=True`. On the scenes that
    discriminator wins at once (D(G(z)) -> 0 within a few epochs and the generator never recovers, whether
    real and fake images are normalised in separate or in shared batches), so the default leaves it out:
    the one place where this chapter departs from the DCGAN guidelines.

    Args:
        condition_dim: int. The size of the condition (22 for the scenes); `0`: unconditional, one input
            `image`. Defaults to `0`.
        filters: int. Filters of the first convolution. Defaults to `32`.
        image_shape: tuple. `(height, width, channels)`. Defaults to `(32, 32, 3)`.
        batch_norm: bool. BatchNormalization after the 2nd and 3rd convolutions (DCGAN). Defaults to `False`.
        auxiliary: bool. AC-GAN: a second output, `attribute_logits` `(batch, condition_dim)`, computed from
            `[h(x); GlobalMaxPool(4x4 map)]` (what is there, wherever it is); trained with `auxiliary_loss`.
            Needs a condition. Defaults to `False`.
        name: str. Defaults to `"discriminator"`.

    Returns:
        A functional `keras.Model`: `image` [and `condition`] -> logits `(batch, 1)` (no sigmoid); with
        `auxiliary=True`, `[logits (batch, 1), attribute_logits (batch, condition_dim)]`.

    Example:
    >>> build_discriminator(22, filters=4).output_shape
    (None, 1)
    """
    condition_dim = check_int("condition_dim", condition_dim, minimum=0)
    filters = check_int("filters", filters)
    image_shape = check_shape("image_shape", image_shape, rank=3)
    if not isinstance(batch_norm, bool):
        raise ValueError(f"`batch_norm` must be a bool. Received: batch_norm={batch_norm!r}")
    if not isinstance(auxiliary, bool) or (auxiliary and not condition_dim):
        raise ValueError(f"`auxiliary` must be a bool, and needs a condition (condition_dim > 0). Received: "
                         f"auxiliary={auxiliary!r}, condition_dim={condition_dim}")
    image = keras.Input(image_shape, name="image")
    x = image
    for i, f in enumerate((filters, 2 * filters, 4 * filters)):
        normalize = batch_norm and i > 0  # DCGAN: never on the discriminator's input layer
        x = layers.Conv2D(f, 4, strides=2, padding="same", use_bias=not normalize, name=f"down{i + 1}")(x)
        if normalize:
            x = layers.BatchNormalization(name=f"down{i + 1}_bn")(x)
        x = layers.LeakyReLU(0.2, name=f"down{i + 1}_lrelu")(x)  # (batch, 16 / 8 / 4, ..., f)
    features = layers.Flatten(name="features")(x)  # (batch, 4 * 4 * 4f): keeps where things are
    logits = layers.Dense(1, name="logit")(features)  # (batch, 1): w^T h + b
    if not condition_dim:
        return keras.Model(image, logits, name=name)
    condition = keras.Input((condition_dim,), name="condition")
    embedded = layers.Dense(features.shape[-1], use_bias=False, name="condition_embedding")(condition)  # V^T c
    projection = layers.Dot(axes=1, name="projection")([embedded, features])  # (batch, 1): (V^T c)^T h
    logits = layers.Add(name="conditional_logit")([logits, projection])
    if not auxiliary:
        return keras.Model([image, condition], logits, name=name)
    what = layers.GlobalMaxPooling2D(name="what")(x)  # (batch, 4f): what is there, wherever it is (shape)
    both = layers.Concatenate(name="where_and_what")([features, what])
    attributes = layers.Dense(condition_dim, name="attribute_logits")(both)  # (batch, 22): AC-GAN's head u(x)
    return keras.Model([image, condition], [logits, attributes], name=name)


@keras.saving.register_keras_serializable(package="mmkeras")
class GAN(keras.Model):
    """An (unconditional) GAN: a generator and a discriminator trained against each other by `fit`.

    Each `train_step` on a batch of real images `x` (in [-1, 1]) does one step for each player:

    1. discriminator: `z ~ N(0, I)` from the model's own `SeedGenerator`;
       `L_D = mean[-log D(x)] + mean[-log(1 - D(G(z)))]` (`discriminator_loss`), a step on D's weights;
    2. generator: fresh `z`; `L_G = mean[-log D(G(z))]` (`generator_loss`, non-saturating), a step on G's
       weights only (D is not updated by L_G).

    The two losses are never added: G minimises L_G, D minimises L_D (that is, maximises V(D, G)).
    `fit` reports `d_loss`, `g_loss` and the mean probabilities `d_real = D(x)` and `d_fake = D(G(z))`.
    Calling the model generates: `gan(noise)` -> images in [-1, 1].

    Training uses `tf.GradientTape`: TensorFlow backend only. Saving (`.keras`) keeps both networks' weights
    and the optimizers' settings, so the loaded model samples the same images.

    Args:
        generator: keras.Model. `noise (batch, latent_dim)` -> images in [-1, 1] (`build_generator`).
        discriminator: keras.Model. images -> logits `(batch, 1)` (`build_discriminator`).
        seed: int. Seeds the noise drawn in `train_step` and by `sample`. Defaults to `0`.
        **kwargs: passed on to `keras.Model` (`name`, ...).

    Example:
    >>> gan = GAN(build_generator(8, filters=4), build_discriminator(filters=4))
    >>> gan.compile()  # DCGAN's Adam(2e-4, beta_1=0.5) for both players
    >>> gan.sample(2).shape
    (2, 32, 32, 3)
    """

    conditional = False

    def __init__(self, generator, discriminator, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(generator, keras.Model) or not isinstance(discriminator, keras.Model):
            raise ValueError(f"`generator` and `discriminator` must be keras.Model instances. Received: "
                             f"generator={type(generator).__name__}, discriminator={type(discriminator).__name__}")
        expected_inputs = 2 if self.conditional else 1
        for role, model in (("generator", generator), ("discriminator", discriminator)):
            if len(model.inputs) != expected_inputs:
                raise ValueError(f"A {type(self).__name__} needs a {role} with {expected_inputs} input(s) "
                                 f"({'image or noise, and condition' if self.conditional else 'no condition'}). "
                                 f"Received: {role} with inputs {[i.name for i in model.inputs]}")
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = int(generator.inputs[0].shape[-1])
        self.seed = check_int("seed", seed, minimum=0)
        self.seed_generator = keras.random.SeedGenerator(self.seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")
        self.d_optimizer = None
        self.g_optimizer = None
        self.built = True  # both players are built functional models

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker, self.d_fake_tracker]

    def compile(self, d_optimizer=None, g_optimizer=None, **kwargs):
        """Sets one optimizer per player (DCGAN's `Adam(2e-4, beta_1=0.5)` for each when `None`).

        Other keyword arguments (`jit_compile`, `run_eagerly`, ...) go to `keras.Model.compile`.
        """
        for key in ("optimizer", "loss"):
            if kwargs.get(key) is not None:
                raise ValueError(f"A GAN has one optimizer per player and its own losses: pass `d_optimizer` and "
                                 f"`g_optimizer`. Received: {key}={kwargs[key]!r}")
            kwargs.pop(key, None)
        super().compile(optimizer=None, **kwargs)
        self.d_optimizer = keras.optimizers.get(d_optimizer) if d_optimizer is not None else \
            keras.optimizers.Adam(2e-4, beta_1=0.5)
        self.g_optimizer = keras.optimizers.get(g_optimizer) if g_optimizer is not None else \
            keras.optimizers.Adam(2e-4, beta_1=0.5)

    def get_compile_config(self):
        if self.d_optimizer is None:
            return None
        return {"d_optimizer": keras.saving.serialize_keras_object(self.d_optimizer),
                "g_optimizer": keras.saving.serialize_keras_object(self.g_optimizer)}

    def compile_from_config(self, config):
        """Restores the two optimizers when a `.keras` file is loaded, built so that their state loads too."""
        self.compile(d_optimizer=keras.saving.deserialize_keras_object(config["d_optimizer"]),
                     g_optimizer=keras.saving.deserialize_keras_object(config["g_optimizer"]))
        self.d_optimizer.build(self.discriminator.trainable_variables)
        self.g_optimizer.build(self.generator.trainable_variables)

    # The two hooks a conditional GAN overrides: how a batch is unpacked and how the players are called.
    def _unpack(self, data):
        images, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return images, None

    def _generate(self, noise, condition, training):
        return self.generator(noise, training=training)

    def _discriminate(self, images, condition, training):
        return self.discriminator(images, training=training)

    def _discriminate_all(self, images, condition, training):
        """D's logits `(batch, 1)` and its auxiliary attribute logits (`None` without an auxiliary head)."""
        return self._discriminate(images, condition, training), None

    def _auxiliary_term(self, attribute_logits, condition):
        return 0.0

    def _track_auxiliary(self, d_aux, g_aux):
        pass

    def compute_generator_loss(self, fake_logits):
        """The generator's objective on D's logits for its samples: `generator_loss` (non-saturating).

        Override it to try another objective, e.g. `saturating_generator_loss` (the exercises do).
        """
        return generator_loss(fake_logits)

    def call(self, inputs, training=False):
        """`gan(noise)` -> generated images `(batch, h, w, c)` in [-1, 1]."""
        return self._generate(inputs, None, training)

    def noise(self, batch_size):
        """`z ~ N(0, I)`, `(batch_size, latent_dim)`, from the model's own seed generator."""
        return keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`, on the TensorFlow backend only (the train step uses `tf.GradientTape`)."""
        if keras.backend.backend() != "tensorflow":
            raise NotImplementedError(f"GAN.train_step uses tf.GradientTape: train on the TensorFlow backend "
                                      f"(sampling works on any). Received: backend={keras.backend.backend()!r}")
        return super().fit(*args, **kwargs)

    def train_step(self, data):
        import tensorflow as tf  # GradientTape: the TensorFlow backend's train step

        real, condition = self._unpack(data)  # (batch, 32, 32, 3) in [-1, 1]; (batch, 22) or None
        batch_size = ops.shape(real)[0]

        # 1. The discriminator's step: minimise L_D = -log D(x) - log(1 - D(G(z))) over D's weights.
        #    (An AC-GAN adds lambda * L_aux on the real images: `_auxiliary_terms`, 0 for a plain GAN.)
        fake = self._generate(self.noise(batch_size), condition, training=True)  # (batch, 32, 32, 3)
        with tf.GradientTape() as tape:
            real_logits, real_attributes = self._discriminate_all(real, condition, training=True)  # (batch, 1)
            fake_logits, _ = self._discriminate_all(fake, condition, training=True)  # (batch, 1)
            d_loss = discriminator_loss(real_logits, fake_logits)
            d_aux = self._auxiliary_term(real_attributes, condition)  # lambda * L_aux(x, c), or 0
            d_total = d_loss + d_aux
        gradients = tape.gradient(d_total, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(gradients, self.discriminator.trainable_weights))

        # 2. The generator's step: minimise L_G = -log D(G(z)) over G's weights (D is fixed here).
        #    (An AC-GAN adds lambda * L_aux on the generated images: draw what the condition names.)
        with tf.GradientTape() as tape:
            fake = self._generate(self.noise(batch_size), condition, training=True)
            fake_logits_g, fake_attributes = self._discriminate_all(fake, condition, training=True)
            g_loss = self.compute_generator_loss(fake_logits_g)
            g_aux = self._auxiliary_term(fake_attributes, condition)  # lambda * L_aux(G(z, c), c), or 0
            g_total = g_loss + g_aux
        gradients = tape.gradient(g_total, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(gradients, self.generator.trainable_weights))

        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self._track_auxiliary(d_aux, g_aux)
        self.d_real_tracker.update_state(ops.mean(ops.sigmoid(real_logits)))
        self.d_fake_tracker.update_state(ops.mean(ops.sigmoid(fake_logits)))
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        """The two losses on a batch, without any update (for `evaluate` and `validation_data`)."""
        real, condition = self._unpack(data)
        fake = self._generate(self.noise(ops.shape(real)[0]), condition, training=False)
        real_logits = self._discriminate(real, condition, training=False)
        fake_logits = self._discriminate(fake, condition, training=False)
        self.d_loss_tracker.update_state(discriminator_loss(real_logits, fake_logits))
        self.g_loss_tracker.update_state(self.compute_generator_loss(fake_logits))
        self.d_real_tracker.update_state(ops.mean(ops.sigmoid(real_logits)))
        self.d_fake_tracker.update_state(ops.mean(ops.sigmoid(fake_logits)))
        return {m.name: m.result() for m in self.metrics}

    def generate(self, noise, condition=None, batch_size: int = 256) -> np.ndarray:
        """Images in [0, 1] (NumPy, `(n, h, w, c)`) for given noise `(n, latent_dim)` [and conditions]."""
        noise = np.asarray(noise, dtype="float32")
        if noise.ndim != 2 or noise.shape[1] != self.latent_dim:
            raise ValueError(f"`noise` must be (n, {self.latent_dim}). Received: shape={noise.shape}")
        condition = self._check_condition(condition, len(noise))
        batches = []
        for start in range(0, len(noise), batch_size):
            c = None if condition is None else condition[start:start + batch_size]
            images = self._generate(noise[start:start + batch_size], c, training=False)
            batches.append(ops.convert_to_numpy(to_unit_range(images)))
        return np.concatenate(batches) if batches else np.zeros((0, *self.generator.output_shape[1:]), "float32")

    def sample(self, num_samples: int, condition=None) -> np.ndarray:
        """`num_samples` images in [0, 1], noise from the model's seed generator (the same seed gives the same
        images). For a conditional GAN, `condition` is `(22,)` (one for all) or `(num_samples, 22)`."""
        num_samples = check_int("num_samples", num_samples)
        return self.generate(ops.convert_to_numpy(self.noise(num_samples)), condition)

    def _check_condition(self, condition, n):
        if condition is not None:
            raise ValueError(f"An unconditional GAN takes no condition. Received: condition of shape "
                             f"{np.shape(condition)}")
        return None

    def get_config(self):
        config = super().get_config()
        config.update({
            "generator": keras.saving.serialize_keras_object(self.generator),
            "discriminator": keras.saving.serialize_keras_object(self.discriminator),
            "seed": self.seed,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"])
        config["discriminator"] = keras.saving.deserialize_keras_object(config["discriminator"])
        return cls(**config)


@keras.saving.register_keras_serializable(package="mmkeras")
class ConditionalGAN(GAN):
    """A conditional GAN: both players see the condition `c` (the caption's attributes, `(batch, 22)`).

    `fit(images, conditions)` (or a dataset of `(images, conditions)`): the discriminator learns to tell
    real `(x, c)` pairs from generated `(G(z, c), c)` pairs, with the same losses as `GAN`:
    `L_D = mean[-log D(x, c) - log(1 - D(G(z, c), c))]`, `L_G = mean[-log D(G(z, c), c)]`.
    Calling it generates: `gan({"noise": z, "condition": c})` -> images in [-1, 1].

    With a discriminator that has two outputs (`build_discriminator(22, auxiliary=True)`) it is an AC-GAN:
    D's step minimises `L_D + lambda * L_aux(x, c)` and G's `L_G + lambda * L_aux(G(z, c), c)`
    (`auxiliary_loss`); `fit` then also reports the unweighted `aux_real` and `aux_fake`.

    Args:
        generator: keras.Model with inputs `noise` and `condition` (`build_generator(condition_dim=22)`).
        discriminator: keras.Model with inputs `image` and `condition` (`build_discriminator(22)`), one
            output (logits) or two (logits and attribute logits, AC-GAN).
        seed: int. Seeds the noise. Defaults to `0`.
        auxiliary_weight: float >= 0. `lambda`, the weight of the auxiliary loss (used only with an
            auxiliary head). Defaults to `1.0`.
        condition_blocks: tuple of int or None. With an auxiliary head: how the condition splits into one-hot
            blocks, one per attribute (`CONDITION_BLOCKS = (5, 6, 2, 9)` for the scenes, `(10,)` for one
            10-class label); the auxiliary loss is a cross-entropy per block. Required with an auxiliary head.

    Example:
    >>> gan = ConditionalGAN(build_generator(8, 22, filters=4), build_discriminator(22, filters=4))
    >>> gan.sample(3, caption_to_condition("a small red cross at the top left")).shape
    (3, 32, 32, 3)
    """

    conditional = True

    def __init__(self, generator, discriminator, seed: int = 0, auxiliary_weight: float = 1.0,
                 condition_blocks=None, **kwargs):
        super().__init__(generator, discriminator, seed=seed, **kwargs)
        self.condition_dim = int(generator.inputs[1].shape[-1])
        if int(discriminator.inputs[1].shape[-1]) != self.condition_dim:
            raise ValueError(f"The generator and the discriminator must take the same condition size. Received: "
                             f"{self.condition_dim} and {int(discriminator.inputs[1].shape[-1])}")
        self.auxiliary = len(discriminator.outputs) == 2  # AC-GAN: D also returns attribute logits
        if self.auxiliary and int(discriminator.outputs[1].shape[-1]) != self.condition_dim:
            raise ValueError(f"An auxiliary head must return one logit per attribute value ({self.condition_dim}). "
                             f"Received: {int(discriminator.outputs[1].shape[-1])}")
        if not isinstance(auxiliary_weight, (int, float)) or auxiliary_weight < 0:
            raise ValueError(f"`auxiliary_weight` must be a number >= 0. "
                             f"Received: auxiliary_weight={auxiliary_weight!r}")
        self.auxiliary_weight = float(auxiliary_weight)
        if self.auxiliary and condition_blocks is None:
            raise ValueError(f"An AC-GAN's auxiliary loss needs to know the condition's one-hot blocks: pass "
                             f"condition_blocks, e.g. CONDITION_BLOCKS {CONDITION_BLOCKS} for the scenes or "
                             f"({self.condition_dim},) for one {self.condition_dim}-class label. "
                             f"Received: condition_blocks=None")
        self.condition_blocks = None if condition_blocks is None else check_blocks(condition_blocks,
                                                                                    self.condition_dim)
        self.d_aux_tracker = keras.metrics.Mean(name="aux_real")
        self.g_aux_tracker = keras.metrics.Mean(name="aux_fake")

    @property
    def metrics(self):
        return super().metrics + ([self.d_aux_tracker, self.g_aux_tracker] if self.auxiliary else [])

    def _discriminate_all(self, images, condition, training):
        outputs = self.discriminator([images, condition], training=training)
        return (outputs[0], outputs[1]) if self.auxiliary else (outputs, None)

    def _auxiliary_term(self, attribute_logits, condition):
        """`lambda * L_aux` (`auxiliary_loss`, `lambda = auxiliary_weight`), 0 without an auxiliary head."""
        if attribute_logits is None:
            return 0.0
        return self.auxiliary_weight * auxiliary_loss(attribute_logits, condition, self.condition_blocks)

    def _track_auxiliary(self, d_aux, g_aux):
        if self.auxiliary:  # the unweighted L_aux on real and on generated images
            self.d_aux_tracker.update_state(d_aux / max(self.auxiliary_weight, 1e-12))
            self.g_aux_tracker.update_state(g_aux / max(self.auxiliary_weight, 1e-12))

    def _unpack(self, data):
        images, condition, _ = keras.utils.unpack_x_y_sample_weight(data)
        if condition is None:
            raise ValueError("A ConditionalGAN trains on (images, conditions) pairs: `fit(images, conditions)`.")
        return images, ops.cast(condition, "float32")

    def _generate(self, noise, condition, training):
        return self.generator([noise, condition], training=training)

    def _discriminate(self, images, condition, training):
        return self._discriminate_all(images, condition, training)[0]

    def call(self, inputs, training=False):
        """`gan({"noise": z, "condition": c})` or `gan([z, c])` -> images in [-1, 1]."""
        if isinstance(inputs, dict):
            inputs = [inputs["noise"], inputs["condition"]]
        noise, condition = inputs
        return self._generate(noise, condition, training)

    def get_config(self):
        config = super().get_config()
        config["auxiliary_weight"] = self.auxiliary_weight
        config["condition_blocks"] = None if self.condition_blocks is None else list(self.condition_blocks)
        return config

    def _check_condition(self, condition, n):
        if condition is None:
            raise ValueError(f"A ConditionalGAN needs a condition: (n, {self.condition_dim}), e.g. "
                             f"caption_to_condition('a large blue circle in the center').")
        condition = np.asarray(condition, dtype="float32")
        if condition.ndim == 1:
            condition = np.broadcast_to(condition, (n, condition.shape[0]))
        if condition.shape != (n, self.condition_dim):
            raise ValueError(f"`condition` must be ({self.condition_dim},) or ({n}, {self.condition_dim}). "
                             f"Received: shape={condition.shape}")
        return condition


def build_conditional_gan(latent_dim: int = 64, filters: int = 32, seed: int = 0, auxiliary: bool = True,
                          auxiliary_weight: float = 10.0) -> ConditionalGAN:
    """The chapter's conditional DCGAN for the scenes: `build_generator(latent_dim, 22, filters)` against
    `build_discriminator(22, filters, auxiliary=auxiliary)` (AC-GAN: D also classifies the attributes, and
    both players add `auxiliary_weight * auxiliary_loss`), compiled with DCGAN's two `Adam(2e-4, beta_1=0.5)`.

    Example:
    >>> build_conditional_gan(8, filters=4).condition_dim
    22
    """
    gan = ConditionalGAN(build_generator(latent_dim, CONDITION_DIM, filters),
                         build_discriminator(CONDITION_DIM, filters, auxiliary=auxiliary), seed=seed,
                         auxiliary_weight=auxiliary_weight, condition_blocks=CONDITION_BLOCKS if auxiliary else None,
                         name="conditional_gan")
    gan.compile()
    return gan
