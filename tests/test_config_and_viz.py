"""Smoke switch, seeding, and every plot the notebooks show (drawn on tiny inputs, bad inputs rejected)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from mmkeras import viz  # noqa: E402
from mmkeras.config import is_smoke, seed_everything  # noqa: E402


@pytest.mark.parametrize("value,expected", [("1", True), ("true", True), ("0", False), ("", False), ("off", False)])
def test_is_smoke(monkeypatch, value, expected):
    monkeypatch.setenv("MMKERAS_SMOKE", value)
    assert is_smoke() is expected


def test_is_smoke_rejects_other_values(monkeypatch):
    monkeypatch.setenv("MMKERAS_SMOKE", "perhaps")
    with pytest.raises(ValueError, match="MMKERAS_SMOKE='perhaps'"):
        is_smoke()


def test_seed_everything_repeats_draws():
    seed_everything(5)
    a = keras.ops.convert_to_numpy(keras.random.normal((3,)))
    seed_everything(5)
    b = keras.ops.convert_to_numpy(keras.random.normal((3,)))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="seed=-1"):
        seed_everything(-1)


def test_every_plot_draws(tiny_data):
    figures = [
        viz.plot_image_grid(tiny_data.features["image"], titles=list(range(8))),
        viz.plot_video_strip(tiny_data.features["video"][0], title="a toy"),
        viz.plot_waveform_and_mel(tiny_data.features["audio"][0], 8000),
        viz.plot_history({"loss": [2.0, 1.0], "val_loss": [2.1, 1.5], "accuracy": [0.2, 0.5]}),
        viz.plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["a", "b"]),
        viz.plot_accuracy_bars({"text": 0.4, "concat": 0.97}, chance=0.125),
    ]
    for fig in figures:
        assert fig.axes
        matplotlib.pyplot.close(fig)


def test_mel_spectrogram_shows_a_rising_chirp(tiny_data):
    """The spectrogram the notebooks plot: for a "right" toy the loudest band rises over time."""
    index = int(np.flatnonzero((tiny_data.labels["direction"] == 1) & ~tiny_data.meta["audio_failed"])[0])
    mel = viz.mel_spectrogram(tiny_data.features["audio"][index], 8000)  # (mel_bins, frames)
    peak = mel.argmax(axis=0)
    assert peak[-8] > peak[8]


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: viz.plot_image_grid(np.zeros((32, 32))), r"shape=\(32, 32\)"),
        (lambda: viz.plot_video_strip(np.zeros((32, 32, 1))), r"shape=\(32, 32, 1\)"),
        (lambda: viz.plot_waveform_and_mel(np.zeros((2, 100)), 8000), r"shape=\(2, 100\)"),
        (lambda: viz.plot_history({"lr": [1]}), r"Received keys: \['lr'\]"),
        (lambda: viz.plot_confusion_matrix(np.zeros((2, 3))), r"shape=\(2, 3\)"),
        (lambda: viz.plot_accuracy_bars({}), r"non-empty"),
    ],
)
def test_plots_reject_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
