"""Audio feature extractor: waveform -> log-mel spectrogram (a Keras layer) -> normalisation -> GRU or CNN.

`keras.layers.MelSpectrogram` computes the spectrogram inside the model, on any backend, so a saved model
takes raw waveforms; it replaces tensorflow-io's audio ops (see docs/design.md).
"""

from __future__ import annotations

import keras
from keras import layers, ops

from mmkeras._validation import check_bool, check_choice, check_fraction, check_int, check_number
from mmkeras.encoders.masking import PaddingMask, sequence_outputs

DEFAULT_SAMPLE_RATE = 8000  # the moving toys' audio: 0.5 s at 8 kHz
DEFAULT_NUM_SAMPLES = 4000
NO_BATCH_FLOOR_DB = 1000.0  # Keras's own floor is relative to the whole batch: set it out of reach


def spectrogram_frames(num_samples: int, hop_length: int) -> int:
    """Frames of a centred STFT (`MelSpectrogram`'s): `1 + num_samples // hop_length`.

    Example:
    >>> spectrogram_frames(4000, 128)
    32
    """
    return 1 + check_int("num_samples", num_samples) // check_int("hop_length", hop_length)


@keras.saving.register_keras_serializable(package="mmkeras")
class DecibelFloor(layers.Layer):
    """Clips each example's dB values at `top_db` below that example's own loudest value.

    `S_db <- max(S_db, max_{f,t} S_db - top_db)`, the max taken over one example's mel bands and frames. Keras's
    `MelSpectrogram(power_to_db=True)` takes that max over the whole batch, so a quiet clip's features would
    change with the loudest clip it is batched with; this layer makes every example's features its own.

    Args:
        top_db: float > 0. Dynamic range kept, in dB. Defaults to `80.0` (Keras's and librosa's default).
        **kwargs: passed on to `keras.layers.Layer`.

    Example:
    >>> floor = DecibelFloor(top_db=10.0)
    >>> keras.ops.convert_to_numpy(floor(keras.ops.array([[0.0, -30.0], [-50.0, -55.0]]))).tolist()
    [[0.0, -10.0], [-50.0, -55.0]]
    """

    def __init__(self, top_db=80.0, **kwargs):
        super().__init__(**kwargs)
        self.top_db = check_number("top_db", top_db, low=0, low_inclusive=False)

    def call(self, inputs):
        axes = tuple(range(1, len(inputs.shape)))
        loudest = ops.max(inputs, axis=axes, keepdims=True)  # (batch, 1, ...): per example
        return ops.maximum(inputs, loudest - self.top_db)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return super().get_config() | {"top_db": self.top_db}


def mel_spectrogram_layer(
    sample_rate: int = DEFAULT_SAMPLE_RATE, fft_length: int = 256, hop_length: int = 128, num_mel_bins: int = 32
) -> layers.MelSpectrogram:
    """The mel front end of the audio encoder: Hann-windowed STFT, mel filter bank, power in dB.

    Output: `(batch, num_mel_bins, frames)` in dB, not yet floored: the encoder follows it with
    `DecibelFloor`, which clips each example at 80 dB below its own peak (Keras's `top_db` would clip at 80 dB
    below the loudest clip of the batch, so it is set out of reach here). `mmkeras.viz.mel_spectrogram` draws
    with this same layer and the floor, so the pictures show exactly what the encoder sees.
    """
    return layers.MelSpectrogram(
        fft_length=fft_length, sequence_stride=hop_length, sequence_length=fft_length, window="hann",
        sampling_rate=sample_rate, num_mel_bins=num_mel_bins, min_freq=20.0, max_freq=sample_rate / 2,
        power_to_db=True, top_db=NO_BATCH_FLOOR_DB, name="mel_spectrogram",
    )


def build_audio_encoder(
    kind: str = "rnn",
    num_samples: int | None = None,
    sample_rate: int | None = None,
    fft_length: int = 256,
    hop_length: int = 128,
    num_mel_bins: int = 32,
    hidden_dim: int = 32,
    dropout: float = 0.1,
    sequence_output: bool = False,
    name: str = "audio_encoder",
    input_name: str = "audio",
    preprocessed: bool = False,
) -> keras.Model:
    """Builds an audio encoder: waveform -> log-mel spectrogram -> per-frame normalisation -> GRU/CNN.

    The short-time Fourier transform of frame t is `X_t(f) = sum_n x[n + tH] w[n] e^{-2 pi i f n / N}`
    (window length N = `fft_length`, hop H = `hop_length`); the mel filter bank M projects its power to
    `num_mel_bins` bands and `S_t = 10 log10(M |X_t|^2)` (decibels). Each frame is standardised
    (LayerNormalization over the mel bands), then a GRU reads the frames in time order
    (`kind="rnn"`) or two conv blocks read the spectrogram as an image (`kind="cnn"`).

    Each example's dB values are clipped at 80 dB below its own peak (`DecibelFloor`), so a clip's features
    never depend on the other clips of its batch.

    Args:
        kind: str. `"rnn"` or `"cnn"`. Defaults to `"rnn"`.
        num_samples: int or None. Waveform length. Pass it together with `sample_rate`; both `None` means the
            moving toys' `4000` samples at `8000` Hz (0.5 s).
        sample_rate: int or None. Samples per second: the mel filter bank depends on it, so it is never
            guessed when `num_samples` is given.
        fft_length: int. STFT window length. Defaults to `256` (32 ms).
        hop_length: int. Samples between frames. Defaults to `128`.
        num_mel_bins: int. Mel bands. Defaults to `32`.
        hidden_dim: int. GRU units, or filters of the last conv block. Defaults to `32`.
        dropout: float. Dropout rate in [0, 1). Defaults to `0.1`.
        sequence_output: bool. With `kind="rnn"`, return every frame's features as
            `{"sequence": (batch, frames, hidden_dim), "padding_mask": (batch, frames)}`. Defaults to `False`.
        name: str. The model's name; the input is named `input_name`.
        input_name: str. The name of the model's input. Defaults to `"audio"`.
        preprocessed: bool. Take log-mel spectrograms `(batch, frames, num_mel_bins)`, what
            `mmkeras.preprocessing.LogMelSpectrogram` computes in `tf.data`, instead of waveforms: the model is
            then the network alone. Defaults to `False` (waveforms, the front end inside the model).

    Returns:
        A functional `keras.Model` with input `input_name`: waveforms `(batch, num_samples)`, or spectrograms.

    Example:
    >>> encoder = build_audio_encoder()
    >>> tuple(encoder(keras.ops.zeros((2, 4000))).shape)
    (2, 32)
    """
    check_choice("kind", kind, ("rnn", "cnn"))
    if (num_samples is None) != (sample_rate is None):
        raise ValueError(
            "Pass `num_samples` and `sample_rate` together (the mel filters depend on the sample rate), or "
            f"neither for the moving toys' 4000 samples at 8000 Hz. Received: num_samples={num_samples!r}, "
            f"sample_rate={sample_rate!r}"
        )
    if num_samples is None:
        num_samples, sample_rate = DEFAULT_NUM_SAMPLES, DEFAULT_SAMPLE_RATE
    num_samples, sample_rate = check_int("num_samples", num_samples), check_int("sample_rate", sample_rate)
    fft_length, hop_length = check_int("fft_length", fft_length), check_int("hop_length", hop_length)
    num_mel_bins, hidden_dim = check_int("num_mel_bins", num_mel_bins), check_int("hidden_dim", hidden_dim)
    check_fraction("dropout", dropout)
    if fft_length > num_samples:
        raise ValueError(
            f"`fft_length` must not exceed `num_samples`. Received: fft_length={fft_length}, num_samples={num_samples}"
        )
    if sequence_output and kind != "rnn":
        raise ValueError(f"`sequence_output=True` needs kind='rnn'. Received: kind={kind!r}")
    check_bool("preprocessed", preprocessed)
    if preprocessed:  # the front end ran in tf.data (mmkeras.preprocessing.LogMelSpectrogram)
        waveform = frames = keras.Input(shape=(spectrogram_frames(num_samples, hop_length), num_mel_bins),
                                        name=input_name)  # (batch, frames, mel_bins) in dB
    else:
        waveform = keras.Input(shape=(num_samples,), name=input_name)  # (batch, samples)
        mel = mel_spectrogram_layer(sample_rate, fft_length, hop_length, num_mel_bins)(waveform)  # (b, mel, frames)
        mel = DecibelFloor(name="decibel_floor")(mel)  # S_db >= its own peak - 80 dB, per example
        frames = layers.Permute((2, 1), name="time_major")(mel)  # (batch, frames, mel_bins)
    frames = layers.LayerNormalization(name="frame_norm")(frames)  # each frame: zero mean, unit variance
    if kind == "rnn":
        frames = layers.Dropout(dropout, name="dropout")(frames)
        features = layers.GRU(hidden_dim, return_sequences=sequence_output, name="gru")(frames)
        if sequence_output:  # (batch, frames, hidden_dim) and every frame is valid
            features = sequence_outputs(features, PaddingMask(None, name="padding_mask")(features))
    else:
        x = layers.Reshape((-1, num_mel_bins, 1), name="as_image")(frames)  # (batch, frames, mel_bins, 1)
        for i, f in enumerate((hidden_dim // 2 or 1, hidden_dim)):
            x = layers.Conv2D(f, 3, padding="same", activation="relu", name=f"conv{i + 1}")(x)
            x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)  # halves time and frequency
        x = layers.GlobalAveragePooling2D(name="global_pool")(x)  # (batch, hidden_dim)
        features = layers.Dropout(dropout, name="dropout")(x)
    return keras.Model(waveform, features, name=name)
