"""The audio encoder's mel spectrogram, written in forms the converters handle: `PortableMelSpectrogram`.

The audio encoder computes a log-mel spectrogram inside the model (`keras.layers.MelSpectrogram`: framing, Hann
window, `tf.signal.rfft`, a mel matrix, `log10`), followed by `DecibelFloor` (a per-example floor, plain
`max`/`maximum` ops that every converter handles). Measured with TensorFlow 2.21 and tf2onnx 1.17:

* TFLite's converter lowers `RFFT` to its builtin `RFFT2D`, so no `SELECT_TF_OPS` (Flex) is needed for it.
* tf2onnx converts `RFFT` only when a `ComplexAbs` reads it, while Keras takes `tf.math.real` / `tf.math.imag`:
  for ONNX the DFT is written as two matrix products with constant cosine and sine matrices (`stft_magnitude`:
  same numbers, no complex op).
* Int8 quantization would round the mel filter bank (a constant matrix) to int8 and cost up to 13 dB on quiet
  bands (measured), so for int8 the mel matrix is applied in blocks too small for the quantizer
  (`mel_in_float_blocks`): the front end stays float32.

How the exporters use it: `with_portable_spectrograms(model, ...)` clones the model's graph with
`keras.models.clone_model(..., clone_function=...)`, putting a `PortableMelSpectrogram` built from each
`MelSpectrogram`'s config in its place and reusing every other layer as it is (no weight is copied), and the
converter traces the clone. The trained model itself is never changed.

This module is TensorFlow-specific on purpose: it exists for TensorFlow's converters.

Example:
>>> import numpy as np
>>> reference = keras.layers.MelSpectrogram(fft_length=64, sequence_stride=32, num_mel_bins=8, sampling_rate=8000)
>>> portable = PortableMelSpectrogram.from_layer(reference, dft_as_matmul=True, float_mel_blocks=True)
>>> waves = np.random.default_rng(0).normal(size=(2, 400)).astype("float32")
>>> bool(np.abs(np.asarray(portable(waves)) - np.asarray(reference(waves))).max() < 1e-3)  # dB
True
"""

from __future__ import annotations

import keras
import numpy as np

from mmkeras._validation import check_bool
from mmkeras.export.graph import all_layers

QUANTIZATION_MIN_ELEMENTS = 1024
"""TFLite's dynamic-range quantizer leaves constant weights with fewer elements than this in float32."""
WINDOWS = ("hann", "hamming", None)
"""The `MelSpectrogram` windows `stft_magnitude` reproduces (all that Keras 3.15 accepts)."""


def stft_magnitude(inputs, fft_length: int, sequence_length: int, sequence_stride: int, window, mag_exp: float):
    """`|STFT(x)|^p` without complex numbers: the DFT as two matrix products.

    For a windowed frame `x_t[n]` (n < N = `fft_length`), `Re X_t(f) = sum_n x_t[n] cos(2 pi f n / N)` and
    `Im X_t(f) = -sum_n x_t[n] sin(2 pi f n / N)` for f = 0..N/2, and the result is `|X_t(f)|^p`
    (`p = mag_exp`), `(batch, frames, N/2 + 1)`. Keras computes it from `tf.signal.rfft`, which tf2onnx converts
    only in narrow cases (its `RFFT` handler needs a `ComplexAbs` consumer and static shapes); two `MatMul`s
    with constant `(N, N/2 + 1)` matrices convert everywhere. Same padding (`center=True`, reflect), framing
    and periodic window as `keras.src.backend.tensorflow.math.stft`.
    """
    import tensorflow as tf

    x = tf.convert_to_tensor(inputs)  # (batch, samples)
    n_fft = fft_length
    x = tf.pad(x, [[0, 0]] * (len(x.shape) - 1) + [[n_fft // 2, n_fft // 2]], mode="reflect")  # center=True
    frames = tf.signal.frame(x, n_fft, sequence_stride)  # (batch, frames, N)
    if window is not None:
        make = {"hann": tf.signal.hann_window, "hamming": tf.signal.hamming_window}[window]
        left = (n_fft - sequence_length) // 2
        frames = frames * tf.pad(make(sequence_length, periodic=True, dtype=x.dtype),
                                 [[left, n_fft - sequence_length - left]])
    angle = 2.0 * np.pi * np.outer(np.arange(n_fft), np.arange(n_fft // 2 + 1)) / n_fft  # (N, N/2 + 1)
    real = tf.matmul(frames, tf.constant(np.cos(angle), x.dtype))  # (batch, frames, N/2 + 1)
    imag = tf.matmul(frames, tf.constant(-np.sin(angle), x.dtype))
    return tf.pow(tf.sqrt(real * real + imag * imag), mag_exp)


def mel_in_float_blocks(inputs, matrix):
    """`inputs @ matrix` with the mel matrix cut into column blocks of < 1,024 weights each.

    The result is the same product `S M` (`M`: `(N/2 + 1, mel_bins)`), computed block by block and
    concatenated: `(batch, frames, mel_bins)`. Why: dynamic-range int8 quantization rounds every constant
    matrix of 1,024 weights or more to int8 with one scale per column, and the mel filters' small edge weights
    round to 0; after `log10` that costs up to ~13 dB on quiet bands (measured) and flips predictions. Blocks
    under the quantizer's size threshold stay float32: the audio front end is exact, only the learned layers
    are quantized.
    """
    import tensorflow as tf

    matrix = tf.convert_to_tensor(matrix, inputs.dtype)  # (N/2 + 1, mel_bins)
    width = max(1, (QUANTIZATION_MIN_ELEMENTS - 1) // int(matrix.shape[0]))  # columns per float block
    blocks = [tf.tensordot(inputs, matrix[:, i:i + width], axes=1) for i in range(0, int(matrix.shape[1]), width)]
    return tf.concat(blocks, axis=-1)  # (batch, frames, mel_bins)


@keras.saving.register_keras_serializable(package="mmkeras")
class PortableMelSpectrogram(keras.layers.MelSpectrogram):
    """`keras.layers.MelSpectrogram` with the same output, computed in a form TFLite and ONNX converters handle.

    `MelSpectrogram.call` computes `|STFT|^p` (`_spectrogram`), applies the mel matrix (`_melscale`), converts
    to dB and swaps the last two axes. This subclass overrides the first two steps, which Keras 3 defines as
    methods for that purpose, and keeps the rest:

    * `dft_as_matmul`: the STFT's DFT as two matrix products with constant cosine and sine matrices
      (`stft_magnitude`) instead of `tf.signal.rfft`, for tf2onnx;
    * `float_mel_blocks`: the mel matrix applied in column blocks under the size TFLite's int8 quantizer
      rounds (`mel_in_float_blocks`), so the filter bank stays float32.

    Args:
        dft_as_matmul: bool. Compute the DFT with matrix products. Defaults to `True`.
        float_mel_blocks: bool. Apply the mel matrix in float blocks. Defaults to `False`.
        **kwargs: every argument of `keras.layers.MelSpectrogram` (`fft_length`, `window`, `top_db`, ...).

    Example:
    >>> layer = PortableMelSpectrogram(fft_length=64, sequence_stride=32, num_mel_bins=8, sampling_rate=8000)
    >>> tuple(layer(np.zeros((2, 400), "float32")).shape)  # (batch, mel bins, frames)
    (2, 8, 13)
    """

    def __init__(self, dft_as_matmul=True, float_mel_blocks=False, **kwargs):
        super().__init__(**kwargs)
        self.dft_as_matmul = check_bool("dft_as_matmul", dft_as_matmul)
        self.float_mel_blocks = check_bool("float_mel_blocks", float_mel_blocks)
        if self.dft_as_matmul and self.window not in WINDOWS:
            raise ValueError(f"`dft_as_matmul=True` reproduces the windows {WINDOWS}. "
                             f"Received: window={self.window!r} in layer {self.name!r}")

    @classmethod
    def from_layer(cls, layer, **options):
        """The portable twin of a `MelSpectrogram` layer: its config (name included) plus `options`."""
        return cls(**(layer.get_config() | options))

    def _spectrogram(self, inputs):
        if not self.dft_as_matmul:
            return super()._spectrogram(inputs)
        return stft_magnitude(inputs, self.fft_length, self.sequence_length, self.sequence_stride, self.window,
                              self.mag_exp)

    def _melscale(self, inputs):
        if not self.float_mel_blocks:
            return super()._melscale(inputs)
        matrix = self.linear_to_mel_weight_matrix(
            num_mel_bins=self.num_mel_bins, num_spectrogram_bins=int(inputs.shape[-1]),
            sampling_rate=self.sampling_rate, lower_edge_hertz=self.min_freq, upper_edge_hertz=self.max_freq)
        return mel_in_float_blocks(inputs, matrix)

    def get_config(self):
        return super().get_config() | {"dft_as_matmul": self.dft_as_matmul,
                                       "float_mel_blocks": self.float_mel_blocks}


def with_portable_spectrograms(model, dft_as_matmul: bool = False, float_mel_blocks: bool = False):
    """`model` with every `MelSpectrogram` replaced by a `PortableMelSpectrogram`: what a converter traces.

    The model's graph is cloned (`keras.models.clone_model`, recursing into nested models such as the audio
    encoder) with a `clone_function` that builds the portable twin of each `MelSpectrogram` and returns every
    other layer itself, so the clone shares the model's weights and computes the same numbers. A model without
    `MelSpectrogram`, or a call with both options off, is returned as it is. The clone is a plain functional
    model: take head names from the original (`head_names(model)`).

    Raises:
        ValueError: a `MelSpectrogram` sits where cloning cannot reach it (inside a subclassed layer).
    """
    dft_as_matmul = check_bool("dft_as_matmul", dft_as_matmul)
    float_mel_blocks = check_bool("float_mel_blocks", float_mel_blocks)

    def is_plain_mel(layer):
        return isinstance(layer, keras.layers.MelSpectrogram) and not isinstance(layer, PortableMelSpectrogram)

    if not (dft_as_matmul or float_mel_blocks) or not any(is_plain_mel(layer) for layer in all_layers(model)):
        return model

    def swap(layer):
        if is_plain_mel(layer):
            return PortableMelSpectrogram.from_layer(layer, dft_as_matmul=dft_as_matmul,
                                                     float_mel_blocks=float_mel_blocks)
        return layer  # shared, weights and all

    clone = keras.models.clone_model(model, clone_function=swap, recursive=True)
    left = [layer.name for layer in all_layers(clone) if is_plain_mel(layer)]
    if left:
        raise ValueError(f"MelSpectrogram layers {left} sit inside layers that keras.models.clone_model cannot "
                         f"rebuild (subclassed layers); build them inside a functional model to export them.")
    return clone
