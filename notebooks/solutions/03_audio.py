"""Solutions to the exercises of notebook 03_audio (waveform -> spectrogram -> RNN/CNN).

    python notebooks/solutions/03_audio.py                    # full size
    MMKERAS_SMOKE=1 python notebooks/solutions/03_audio.py    # a few seconds

Each function does the exercise for real and checks its result with an assertion.
"""

from __future__ import annotations

import keras
import numpy as np

import mmkeras
from mmkeras.data import SCHEMA, DataSchema, MultimodalData

SMOKE = mmkeras.config.is_smoke()
AUDIO = SCHEMA.modality("audio")  # the moving toys' audio: shape (4000,), 8000 Hz
AUDIO_LENGTH, SAMPLE_RATE = AUDIO.shape[0], AUDIO.sample_rate


def stft_power(waveforms, fft_length: int = 256, hop_length: int = 128) -> np.ndarray:
    """|X_t(f)|^2 of `(n, samples)` waveforms with a periodic Hann window: `(n, frames, fft_length // 2 + 1)`."""
    n = np.arange(fft_length)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / fft_length)  # (N,)
    frames = np.lib.stride_tricks.sliding_window_view(waveforms, fft_length, axis=-1)[:, ::hop_length]  # (n, T, N)
    return np.abs(np.fft.rfft(frames * hann, axis=-1)) ** 2  # (n, T, N/2 + 1)


def centroid_slope(waveforms, fft_length: int = 256, hop_length: int = 128) -> np.ndarray:
    """The trend (Hz per frame) of the spectral centroid of every waveform: > 0 for a rising chirp. `(n,)`."""
    power = stft_power(waveforms, fft_length, hop_length)  # (n, T, F)
    hertz = np.fft.rfftfreq(fft_length, d=1 / SAMPLE_RATE)  # (F,)
    centroid = (power * hertz).sum(-1) / power.sum(-1)  # (n, T): the "centre of mass" of each frame's spectrum
    steps = np.arange(centroid.shape[1])
    return np.polyfit(steps, centroid.T, 1)[0]  # (n,) slope of the least-squares line through each row


def exercise_1():
    """Time against frequency: the shapes and resolutions of three STFT settings."""
    waveforms = mmkeras.make_synthetic(4, seed=1).features["audio"]  # (4, 4000)
    rows = []
    for fft_length, hop in ((128, 64), (256, 128), (512, 256)):
        layer = keras.layers.MelSpectrogram(
            fft_length=fft_length, sequence_stride=hop, sequence_length=fft_length, window="hann",
            sampling_rate=SAMPLE_RATE, num_mel_bins=32, min_freq=20.0, max_freq=SAMPLE_RATE / 2,
        )
        mel = layer(waveforms)  # (batch, mel_bins, frames)
        frames = 1 + AUDIO_LENGTH // hop  # the centred STFT: one frame every `hop` samples, both ends included
        assert tuple(mel.shape) == (4, 32, frames), (mel.shape, frames)
        rows.append((fft_length, hop, frames, SAMPLE_RATE / fft_length, 1000 * fft_length / SAMPLE_RATE))
    for fft_length, hop, frames, hz, ms in rows:
        print(f"    fft_length={fft_length:3d} hop={hop:3d}: {frames:2d} frames, {hz:5.1f} Hz per bin, "
              f"{ms:4.0f} ms window")
    resolutions = [r[3] for r in rows]
    assert resolutions == sorted(resolutions, reverse=True)  # longer windows: finer frequency, fewer frames
    return rows


def exercise_2():
    """A rule with no learning: the sign of the spectral centroid's trend tells the direction."""
    data = mmkeras.make_synthetic(mmkeras.config.by_mode(full=1000, smoke=64), seed=2)
    predicted = (centroid_slope(data.features["audio"]) > 0).astype(int)  # 1 = rising = right
    correct = predicted == data.labels["direction"]
    failed = data.meta["audio_failed"]
    print(f"    rule accuracy: {correct.mean():.3f} (all), {correct[~failed].mean():.3f} (working microphone), "
          f"{correct[failed].mean() if failed.any() else float('nan'):.3f} (failed microphone)")
    assert correct[~failed].mean() > 0.95, "a working microphone's chirp should give its direction away"
    return float(correct.mean())


def exercise_3():
    """Time reversal as data augmentation for the direction model."""
    splits = mmkeras.load_splits(*mmkeras.config.by_mode(full=(2000, 500, 1000), smoke=(128, 32, 64)))
    train, test = splits["train"], splits["test"]
    reversed_audio = train.features["audio"][:, ::-1].copy()  # a rising chirp played backwards falls
    ok = ~train.meta["audio_failed"]
    flips = np.sign(centroid_slope(reversed_audio[ok])) != np.sign(centroid_slope(train.features["audio"][ok]))
    assert flips.mean() > 0.95, "reversing a chirp must reverse its pitch trend"

    schema = DataSchema((AUDIO,), (SCHEMA.label("label"), SCHEMA.label("direction")))  # audio and two labels
    augmented = MultimodalData(
        features={"audio": np.concatenate([train.features["audio"], reversed_audio])},
        labels={
            "label": np.concatenate([train.labels["label"], train.labels["label"] ^ 1]),  # flip the direction bit
            "direction": np.concatenate([train.labels["direction"], 1 - train.labels["direction"]]),
        },
        meta={"audio_failed": np.concatenate([train.meta["audio_failed"], train.meta["audio_failed"]])},
        schema=schema,
    )
    assert len(augmented) == 2 * len(train) and augmented.labels["direction"].mean() == 0.5  # exactly balanced

    mmkeras.seed_everything(0)
    model = mmkeras.build_fusion_classifier({"audio": mmkeras.encoders.build_encoder(AUDIO)}, num_classes=2)
    mmkeras.fit_classifier(model, augmented, epochs=mmkeras.config.by_mode(full=6, smoke=1), label_keys="direction")
    predicted = mmkeras.predict_classes(model, test)  # (n,) 0 = left, 1 = right
    accuracy = float(np.mean(predicted == test.labels["direction"]))
    print(f"    {len(train)} -> {len(augmented)} training waveforms; test direction accuracy {accuracy:.3f}")
    if not SMOKE:
        assert accuracy > 0.8, accuracy
    return accuracy


if __name__ == "__main__":
    mmkeras.seed_everything(0)
    for number, exercise in enumerate((exercise_1, exercise_2, exercise_3), start=1):
        exercise()
        print(f"exercise {number}: ok")
