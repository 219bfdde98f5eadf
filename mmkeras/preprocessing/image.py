"""The image step of a preprocessor: integer pixels -> float32 in [0, 1], in TensorFlow."""

from __future__ import annotations

import keras

from mmkeras._validation import check_number
from mmkeras.preprocessing.tensors import to_backend


@keras.saving.register_keras_serializable(package="mmkeras")
class PixelRescaling(keras.layers.Layer):
    """`x -> float32(x) * scale`, e.g. `scale = 1 / 255` for 0-255 pixels, in TensorFlow on any backend.

    Args:
        scale: float > 0. Defaults to `1 / 255`.
        **kwargs: passed on to `keras.layers.Layer`.

    Example:
    >>> import numpy as np
    >>> keras.ops.convert_to_numpy(PixelRescaling()(np.array([[0, 51, 255]], "uint8"))).astype(float).round(3).tolist()
    [[0.0, 0.2, 1.0]]
    """

    def __init__(self, scale=1 / 255, **kwargs):
        super().__init__(**kwargs)
        self.scale = check_number("scale", scale, low=0, low_inclusive=False)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    def call(self, images):
        import tensorflow as tf

        return to_backend(tf.cast(images, tf.float32) * self.scale)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return super().get_config() | {"scale": self.scale}
