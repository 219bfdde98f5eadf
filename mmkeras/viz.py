"""The plots the course shows: samples of each modality, training curves, confusion matrices, comparisons.

Every function draws on a new (or given) matplotlib figure and returns the figure, so a notebook shows it and
a script can `fig.savefig(path)`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np


def plot_image_grid(images, titles=None, columns: int = 8, cmap=None, figsize_per_image: float = 1.4):
    """A grid of images `(n, h, w, c)` with optional titles.

    Example:
    >>> fig = plot_image_grid(np.zeros((4, 32, 32, 3)), titles=["a", "b", "c", "d"])
    """
    images = np.asarray(images)
    if images.ndim not in (3, 4) or len(images) == 0:
        raise ValueError(f"`images` must be (n, h, w) or (n, h, w, c) with n > 0. Received: shape={images.shape}")
    n = len(images)
    columns = max(1, min(columns, n))
    rows = int(np.ceil(n / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(columns * figsize_per_image, rows * figsize_per_image * 1.15),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        image = images[i]
        if image.ndim == 3 and image.shape[-1] == 1:
            image = image[..., 0]
        ax.imshow(np.clip(image, 0, 1), cmap=cmap or ("gray" if image.ndim == 2 else None), vmin=0, vmax=1,
                  interpolation="nearest")  # crisp pixels, and a small PNG
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=7)
    fig.tight_layout()
    return fig


def plot_video_strip(video, title: str | None = None):
    """The frames of one video `(frames, h, w, c)` side by side, in time order.

    Example:
    >>> fig = plot_video_strip(np.zeros((8, 32, 32, 1)))
    """
    video = np.asarray(video)
    if video.ndim != 4:
        raise ValueError(f"`video` must be (frames, h, w, c). Received: shape={video.shape}")
    fig = plot_image_grid(video, titles=[f"t={t}" for t in range(len(video))], columns=len(video))
    if title:
        fig.suptitle(title, fontsize=9)
        fig.tight_layout()
    return fig


def mel_spectrogram(waveform, sample_rate: int, fft_length: int = 256, hop_length: int = 128, num_mel_bins: int = 32):
    """The log-mel spectrogram `(mel_bins, frames)` in dB that the audio encoder computes, as NumPy.

    It runs the same layers as `build_audio_encoder` (`mmkeras.encoders.audio.mel_spectrogram_layer`, then
    `DecibelFloor`), so the picture is exactly what the model sees.
    """
    from mmkeras.encoders.audio import DecibelFloor, mel_spectrogram_layer

    layer = mel_spectrogram_layer(sample_rate, fft_length, hop_length, num_mel_bins)
    return np.asarray(DecibelFloor()(layer(np.asarray(waveform, dtype="float32")[None])))[0]


def plot_waveform_and_mel(waveform, sample_rate: int, title: str | None = None, **mel_kwargs):
    """The waveform over time, and below it its log-mel spectrogram.

    Example:
    >>> fig = plot_waveform_and_mel(np.zeros(4000), 8000)
    """
    waveform = np.asarray(waveform)
    if waveform.ndim != 1:
        raise ValueError(f"`waveform` must be 1-D (samples,). Received: shape={waveform.shape}")
    mel = mel_spectrogram(waveform, sample_rate, **mel_kwargs)  # (mel_bins, frames)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 4.2))
    seconds = np.arange(len(waveform)) / sample_rate
    top.plot(seconds, waveform, linewidth=0.5)
    top.set(xlabel="time (s)", ylabel="amplitude", xlim=(0, seconds[-1]), title=title or "waveform")
    image = bottom.imshow(mel, origin="lower", aspect="auto", extent=(0, seconds[-1], 0, mel.shape[0]))
    bottom.set(xlabel="time (s)", ylabel="mel band", title="log-mel spectrogram (dB)")
    fig.colorbar(image, ax=bottom, pad=0.01)
    fig.tight_layout()
    return fig


def plot_history(history: dict, metrics=("loss", "accuracy"), title: str | None = None):
    """Training and validation curves, one panel per metric, from a Keras `history.history` dict.

    Example:
    >>> fig = plot_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "accuracy": [0.4, 0.8]})
    """
    present = [m for m in metrics if m in history]
    if not present:
        raise ValueError(f"`history` has none of the metrics {tuple(metrics)}. Received keys: {sorted(history)}")
    fig, axes = plt.subplots(1, len(present), figsize=(4.5 * len(present), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], present):
        epochs = np.arange(1, len(history[metric]) + 1)
        ax.plot(epochs, history[metric], marker="o", label="train")
        if f"val_{metric}" in history:
            ax.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        ax.set(xlabel="epoch", ylabel=metric, title=metric)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_confusion_matrix(matrix, class_names=None, title: str = "confusion matrix", normalize: bool = True):
    """A heat map of a confusion matrix (rows: true class, columns: predicted class).

    Example:
    >>> fig = plot_confusion_matrix(np.eye(3, dtype=int))
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"`matrix` must be square. Received: shape={matrix.shape}")
    shown = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1) if normalize else matrix
    k = matrix.shape[0]
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    fig, ax = plt.subplots(figsize=(1.0 + 0.62 * k, 0.8 + 0.55 * k))
    image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    ax.set_xticks(range(k), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    for t in range(k):
        for p in range(k):
            value = f"{shown[t, p]:.2f}" if normalize else str(matrix[t, p])
            ax.text(p, t, value, ha="center", va="center", fontsize=7,
                    color="white" if shown[t, p] > 0.6 * shown.max() else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


def plot_accuracy_bars(accuracies: dict, chance: float | None = None, title: str = "test accuracy"):
    """A bar chart of accuracies `{name: value}`, with the value on each bar and an optional chance line.

    Example:
    >>> fig = plot_accuracy_bars({"text": 0.4, "concat": 0.97}, chance=0.125)
    """
    if not accuracies:
        raise ValueError("`accuracies` must be a non-empty dict {name: accuracy}. Received: {}")
    names, values = list(accuracies), [float(v) for v in accuracies.values()]
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 3.4))
    colors = ["#4C72B0" if i < len(names) - 1 else "#DD8452" for i in range(len(names))]
    bars = ax.bar(names, values, color=colors)
    for bar, value in zip(bars, values):
        ax.text(bar.get_x() + bar.get_width() / 2, value + 0.01, f"{value:.3f}", ha="center", va="bottom")
    if chance is not None:
        ax.axhline(chance, color="gray", linestyle="--", linewidth=1, label=f"chance ({chance:.3f})")
        ax.legend(loc="upper left")
    ax.set(ylim=(0, 1.08), ylabel="accuracy", title=title)
    fig.tight_layout()
    return fig
