"""The audio front end as a preprocessing step: waveform -> log-mel spectrogram, per example, in TensorFlow.

It computes what the audio encoder's in-graph front end computes (`keras.layers.MelSpectrogram` followed by
`mmkeras.encoders.DecibelFloor`), with `tf.signal` ops, so that it runs in a `tf.data` pipeline whatever the
Keras backend is: the model that reads its output is then numeric and runs on TensorFlow or JAX alike.
"""

from __future__ import annotations

import keras

from mmkeras._validation import check_int, check_number
from mmkeras.encoders.audio import spectrogram_frames
from mmkeras.preprocessing.tensors import to_backend

DEFAULT_TOP_DB = 80.0


@keras.saving.register_keras_serializable(package="mmkeras")
class LogMelSpectrogram(keras.layers.Layer):
    """Waveforms `(batch, samples)` -> log-mel spectrograms `(batch, frames, num_mel_bins)` in dB, per example.

    Frame t of the centred (reflect-padded by `fft_length // 2`), Hann-windowed STFT is
    `X_t(f) = sum_n x[n + tH] w[n] e^{-2 pi i f n / N}` (N = `fft_length`, H = `hop_length`); the mel filter bank
    M (HTK mel scale, 20 Hz to `sample_rate / 2`) gives `S_t = 10 log10(max(M |X_t|^2, 1e-10))`, and every
    example is floored at its own peak minus `top_db`: `S <- max(S, max_{t,f} S - top_db)`. A clip's features
    therefore never depend on the clips batched with it. This is the same computation as the course's in-graph
    front end (`keras.layers.MelSpectrogram` + `DecibelFloor`), frames first, with one addition: an all-zero
    waveform (a missing clip, by the course's convention) gives all-zero features, so that
    `mmkeras.fusion.ModalityPresence` still reads it as missing. Downstream nothing else changes: the encoder's
    per-frame normalisation maps a constant frame (silence in dB is one constant) and a zero frame alike.

    Runs in TensorFlow (`tf.signal`) on any Keras backend: use it in `tf.data` (a `MultimodalPreprocessor` does).

    Args:
        sample_rate: int. Samples per second of the waveforms.
        fft_length: int. STFT window length N. Defaults to `256`.
        hop_length: int. Samples between frames H. Defaults to `128`.
        num_mel_bins: int. Mel bands. Defaults to `32`.
        top_db: float > 0. Dynamic range kept below each example's peak. Defaults to `80.0`.
        **kwargs: passed on to `keras.layers.Layer`.

    Example:
    >>> import numpy as np
    >>> mel = LogMelSpectrogram(sample_rate=8000)
    >>> tuple(mel(np.zeros((2, 4000), "float32")).shape)
    (2, 32, 32)
    """

    def __init__(self, sample_rate, fft_length=256, hop_length=128, num_mel_bins=32, top_db=DEFAULT_TOP_DB,
                 **kwargs):
        super().__init__(**kwargs)
        self.sample_rate = check_int("sample_rate", sample_rate)
        self.fft_length = check_int("fft_length", fft_length)
        self.hop_length = check_int("hop_length", hop_length)
        self.num_mel_bins = check_int("num_mel_bins", num_mel_bins)
        self.top_db = check_number("top_db", top_db, low=0, low_inclusive=False)
        self._convert_input_args = False  # TensorFlow tensors in and out, as keras-hub's preprocessing layers do
        self._allow_non_tensor_positional_args = True
        self.built = True

    def call(self, waveforms):
        import tensorflow as tf

        x = waveforms = tf.convert_to_tensor(waveforms, tf.float32)
        if x.shape.rank != 2:
            raise ValueError(f"LogMelSpectrogram expects waveforms (batch, samples). Received shape: {x.shape}")
        half = self.fft_length // 2
        x = tf.pad(x, [[0, 0], [half, half]], mode="REFLECT")  # centred frames, as MelSpectrogram's STFT
        window = tf.signal.hann_window(self.fft_length, periodic=True)
        frames = tf.signal.frame(x, self.fft_length, self.hop_length)  # (batch, frames, N)
        spectrum = tf.signal.rfft(frames * window)  # (batch, frames, N / 2 + 1)
        power = tf.math.real(spectrum) ** 2 + tf.math.imag(spectrum) ** 2  # |X_t(f)|^2
        filters = tf.signal.linear_to_mel_weight_matrix(
            self.num_mel_bins, self.fft_length // 2 + 1, self.sample_rate, 20.0, self.sample_rate / 2)
        mel = tf.matmul(power, filters)  # (batch, frames, mel bins)
        db = 10.0 * tf.math.log(tf.maximum(mel, 1e-10)) / tf.math.log(10.0)
        peak = tf.reduce_max(db, axis=[1, 2], keepdims=True)  # each example's own loudest value
        db = tf.maximum(db, peak - self.top_db)
        silent = tf.reduce_all(tf.equal(waveforms, 0.0), axis=1)  # a missing clip (`without_modality`'s convention)
        return to_backend(tf.where(silent[:, None, None], tf.zeros_like(db), db))

    def compute_output_shape(self, input_shape):
        frames = None if input_shape[1] is None else spectrogram_frames(input_shape[1], self.hop_length)
        return (input_shape[0], frames, self.num_mel_bins)

    def get_config(self):
        return super().get_config() | {"sample_rate": self.sample_rate, "fft_length": self.fft_length,
                                       "hop_length": self.hop_length, "num_mel_bins": self.num_mel_bins,
                                       "top_db": self.top_db}
