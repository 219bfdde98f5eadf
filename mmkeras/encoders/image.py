"""Image feature extractors: a small CNN trained from scratch, or a pretrained keras-hub backbone.

Augmentation uses `keras.layers` (the successor of keras-cv's augmentation layers) inside `TrainingOnly`:
it runs in `fit` (`training=True`) and nowhere else, so `model(x)`, `model.predict(x)` and an exported
model give the same, deterministic answer.
"""

from __future__ import annotations

import keras
import keras_hub
from keras import layers

from mmkeras._validation import (
    check_bool,
    check_fraction,
    check_int,
    check_number,
    check_positive_ints,
    check_shape,
)

DEFAULT_IMAGE_SHAPE = (32, 32, 3)  # the moving toys' pictures


@keras.saving.register_keras_serializable(package="mmkeras")
class InferenceMode(layers.Wrapper):
    """Runs the wrapped layer with `training=False` always, even inside a model trained with `fit`.

    Why a layer and not `backbone(x, training=False)`: in a Keras 3 functional model, the `training` value
    the model is called with replaces the one written at construction, so `fit` would still put the
    backbone's BatchNormalization layers in training mode (they would forget their pretraining statistics).
    This wrapper takes the model's `training` and does not pass it on. The wrapped layer's weights still
    train when it is `trainable`.

    Args:
        layer: keras.layers.Layer. The layer (a pretrained backbone) to run in inference mode.
        **kwargs: passed on to `keras.layers.Wrapper`.

    Example:
    >>> frozen_bn = InferenceMode(layers.BatchNormalization())
    >>> tuple(frozen_bn(keras.ops.ones((2, 3)), training=True).shape)
    (2, 3)
    """

    def call(self, inputs, training=None):
        return self.layer(inputs, training=False)

    def compute_output_shape(self, input_shape):
        return self.layer.compute_output_shape(input_shape)

    def compute_output_spec(self, inputs, training=None):
        return self.layer.compute_output_spec(inputs)


@keras.saving.register_keras_serializable(package="mmkeras")
class TrainingOnly(layers.Wrapper):
    """Runs the wrapped layer only when called with `training=True`; otherwise passes the input through.

    Keras's random augmentation layers treat a missing `training` argument as `True`, so a model that holds
    them augments under a plain `model(x)` call although `predict` does not. This wrapper treats a missing
    `training` as `False`: `fit` augments, every other call sees the input unchanged.

    Args:
        layer: keras.layers.Layer. The augmentation (or other training-time) layer.
        **kwargs: passed on to `keras.layers.Wrapper`.

    Example:
    >>> shift = TrainingOnly(layers.RandomTranslation(0.5, 0.5, seed=0))
    >>> x = keras.ops.ones((1, 8, 8, 1))
    >>> bool(keras.ops.all(shift(x) == x))
    True
    """

    def call(self, inputs, training=None):
        return self.layer(inputs, training=True) if training else inputs

    def compute_output_shape(self, input_shape):
        return input_shape

    def compute_output_spec(self, inputs, training=None):
        return keras.KerasTensor(inputs.shape, dtype=inputs.dtype)


def as_channels_last(image, input_shape):
    """`(batch, h, w)` grayscale images get a channel axis, `(batch, h, w, 1)`; `(h, w, c)` images pass."""
    if len(input_shape) == 2:
        return layers.Reshape((*input_shape, 1), name="add_channel_axis")(image)
    return image


def build_conv_stack(
    filters=(16, 32), name: str = "conv_stack", input_shape=DEFAULT_IMAGE_SHAPE, output_dim: int | None = None
):
    """A stack of `Conv2D(3x3) -> ReLU -> MaxPool(2)` blocks, then one vector per image.

    Each block halves the height and width. With `output_dim=None` the last feature map
    `(batch, h, w, filters[-1])` is averaged over space into `(batch, filters[-1])`: *what* is in the
    picture, wherever it is. With an `output_dim` it is flattened and projected by a Dense layer instead,
    which keeps *where* things are (the video encoder needs that to see motion).

    Example:
    >>> build_conv_stack((8, 16)).output_shape
    (None, 16)
    """
    filters = check_positive_ints("filters", filters)
    input_shape = check_shape("input_shape", input_shape, rank=3)
    image = keras.Input(shape=input_shape, name="frame")
    x = image
    for i, f in enumerate(filters):
        x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"conv{i + 1}")(x)  # (batch, h, w, f)
        x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)  # (batch, h/2, w/2, f)
    if output_dim is None:
        features = layers.GlobalAveragePooling2D(name="global_pool")(x)  # (batch, filters[-1])
    else:
        x = layers.Flatten(name="flatten")(x)  # (batch, h * w * filters[-1]): keeps positions
        features = layers.Dense(check_int("output_dim", output_dim), activation="relu", name="frame_features")(x)
    return keras.Model(image, features, name=name)


def build_image_encoder(
    input_shape=DEFAULT_IMAGE_SHAPE,
    filters=(16, 32, 64),
    output_dim: int = 64,
    dropout: float = 0.1,
    augment: bool = True,
    rescale: float | None = None,
    name: str = "image_encoder",
    input_name: str = "image",
    preprocessed: bool = False,
) -> keras.Model:
    """Builds a small CNN image encoder: augmentation -> conv blocks -> global pooling -> Dense.

    Each block computes `ReLU(W * x + b)` followed by 2x2 max pooling, so a 32x32 image shrinks to 4x4 after
    three blocks; global average pooling then gives one value per filter, and
    `features = ReLU(W_o pool(x) + b_o)`.

    Args:
        input_shape: tuple. `(height, width, channels)`, or `(height, width)` for grayscale; pixel values in
            [0, 1]. Defaults to `(32, 32, 3)`.
        filters: tuple of int. Filters of each conv block. Defaults to `(16, 32, 64)`.
        output_dim: int. Size of the feature vector. Defaults to `64`.
        dropout: float. Dropout before the last Dense, in [0, 1). Defaults to `0.1`.
        augment: bool. Random translation and zoom in `fit` only (`TrainingOnly`). Defaults to `True`.
        rescale: float or None. Multiplies the pixels right after the input (`layers.Rescaling`), e.g. `1 / 255`
            for 0-255 pixels, so that the model (and a saved or exported copy) takes the images as they come.
            `None` (default) takes values in [0, 1] as they are. `mmkeras.encoders.build_encoder` passes
            `1 / 255` for a modality declared `dtype="uint8"`.
        name: str. The model's name. Defaults to `"image_encoder"`.
        input_name: str. The name of the model's input. Defaults to `"image"`.
        preprocessed: bool. The pixels were rescaled in `tf.data` (`mmkeras.preprocessing.build_preprocessor`),
            so `rescale` must be `None`; the input is float32 in [0, 1]. Augmentation stays in the model either
            way (see `mmkeras.preprocessing`). Defaults to `False`.

    Returns:
        A functional `keras.Model` with input `input_name` and output `(batch, output_dim)`.

    Example:
    >>> encoder = build_image_encoder()
    >>> tuple(encoder(keras.ops.zeros((2, 32, 32, 3))).shape)
    (2, 64)
    """
    output_dim = check_int("output_dim", output_dim)
    check_fraction("dropout", dropout)
    check_bool("augment", augment)
    if rescale is not None:
        rescale = check_number("rescale", rescale, low=0, low_inclusive=False)
    check_bool("preprocessed", preprocessed)
    if preprocessed and rescale is not None:
        raise ValueError(f"With preprocessed=True the pixels are rescaled in the preprocessor, not in the model: "
                         f"leave `rescale` unset. Received: rescale={rescale}")
    input_shape = check_shape("input_shape", input_shape)
    if len(input_shape) not in (2, 3):
        raise ValueError(f"`input_shape` must be (height, width) or (height, width, channels). "
                         f"Received: input_shape={input_shape!r}")
    image = keras.Input(shape=input_shape, name=input_name)  # (batch, h, w[, c])
    x = image if rescale is None else layers.Rescaling(rescale, name="rescaling")(image)  # e.g. 0-255 -> [0, 1]
    x = as_channels_last(x, input_shape)  # (batch, h, w, c)
    if augment:  # only in fit (training=True); model(x) and predict see the image as it is
        x = TrainingOnly(layers.RandomTranslation(0.1, 0.1, fill_mode="nearest"), name="random_translation")(x)
        x = TrainingOnly(layers.RandomZoom(0.1, fill_mode="nearest"), name="random_zoom")(x)
    x = build_conv_stack(filters, name="conv_stack", input_shape=tuple(x.shape[1:]))(x)  # (batch, filters[-1])
    x = layers.Dropout(dropout, name="dropout")(x)
    features = layers.Dense(output_dim, activation="relu", name="image_features")(x)  # (batch, output_dim)
    return keras.Model(image, features, name=name)


def build_pretrained_image_encoder(
    preset: str,
    input_shape=DEFAULT_IMAGE_SHAPE,
    trainable: bool = False,
    name: str = "pretrained_image_encoder",
    input_name: str = "image",
) -> keras.Model:
    """Builds an image encoder on a pretrained keras-hub backbone (transfer learning, 迁移学习).

    The preset's `ImageConverter` resizes the image to the backbone's size and normalises it exactly as in
    pretraining; grayscale images are repeated over 3 channels. The backbone always runs in inference mode
    (`InferenceMode`): its BatchNormalization layers keep the statistics they learned in pretraining even
    when `trainable=True` (fine-tuning), the trap the Keras transfer-learning guide warns about. The backbone's
    output is pooled to one vector: the mean over space for a CNN
    (`(batch, h, w, c) -> (batch, c)`), the mean over tokens for a ViT (`(batch, tokens, c) -> (batch, c)`).

    Args:
        preset: str. A keras-hub preset name such as `"resnet_18_imagenet"`, `"vgg_16_imagenet"` or
            `"vit_base_patch16_224_imagenet"` (downloaded once, then cached), or a local preset folder.
        input_shape: tuple. `(h, w, 3)`, `(h, w, 1)` or `(h, w)`, values in [0, 1]. Defaults to `(32, 32, 3)`.
        trainable: bool. `False` (default) freezes the backbone: only what comes after it learns. `True`
            fine-tunes its weights (use a small learning rate).
        name: str. The model's name.
        input_name: str. The name of the model's input. Defaults to `"image"`.

    Returns:
        A functional `keras.Model` with input `input_name` and output `(batch, channels)`.

    Example:
    >>> # needs internet once (the preset is downloaded and cached); a local preset folder works offline
    >>> encoder = build_pretrained_image_encoder("resnet_18_imagenet")  # doctest: +SKIP
    """
    if not isinstance(preset, str) or not preset:
        raise ValueError(f"`preset` must be a keras-hub preset name or folder. Received: preset={preset!r}")
    check_bool("trainable", trainable)
    input_shape = check_shape("input_shape", input_shape)
    if len(input_shape) not in (2, 3) or (len(input_shape) == 3 and input_shape[-1] not in (1, 3)):
        raise ValueError(f"`input_shape` must be (h, w), (h, w, 1) or (h, w, 3). Received: input_shape={input_shape!r}")
    backbone = keras_hub.models.Backbone.from_preset(preset)
    converter = keras_hub.layers.ImageConverter.from_preset(preset)
    backbone.trainable = trainable
    image = keras.Input(shape=input_shape, name=input_name)  # (batch, h, w[, c]) in [0, 1]
    x = as_channels_last(image, input_shape)  # (batch, h, w, c)
    if x.shape[-1] == 1:
        x = layers.Concatenate(name="gray_to_rgb")([x, x, x])  # (batch, h, w, 3)
    pixels = layers.Rescaling(255.0, name="to_pixels")(x)  # the converter expects 0..255 pixel values
    x = converter(pixels)  # (batch, H, W, 3): resized and normalised as the backbone was trained
    x = InferenceMode(backbone, name="backbone")(x)  # (batch, h', w', c) for a CNN, (batch, tokens, c) for a ViT
    if len(x.shape) == 4:
        features = layers.GlobalAveragePooling2D(name="global_pool")(x)
    elif len(x.shape) == 3:
        features = layers.GlobalAveragePooling1D(name="token_pool")(x)
    else:
        raise ValueError(f"The backbone of {preset!r} returns an unsupported shape. Received: shape={x.shape}")
    return keras.Model(image, features, name=name)
