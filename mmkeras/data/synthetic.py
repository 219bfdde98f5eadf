"""The embedded dataset: "moving toys", generated from a seed, small, and built so that fusion matters.

The generative story. Every sample is a toy with three attributes, each drawn uniformly:

    shape     in {circle, cross}
    color     in {red, blue}
    direction in {left, right}

and the class label is the combination of the three (8 classes, `label = 4 * shape + 2 * color + direction`).
Each modality observes only some of the attributes (complementary information, 互补信息):

    modality  sees                  how                                                    failure modes
    image     shape, color          a 32x32 RGB picture of the toy at a random place        8 % sensor failures
    video     shape, direction      8 grayscale 32x32 frames: the toy slides left/right     8 % sensor failures
    audio     direction             0.5 s at 8 kHz: a chirp that rises (right) or falls   15 % sensor failures
                                    (left), a convention of this dataset*
    text      color, direction      a caption, e.g. "a crimson toy slides to the left"     12 % omit a word,
                                                                                           4 % misleading word

So no single modality can name more than two of the three attributes: the best one alone is right about half
of the time (about 4 of 8 classes are ruled out), while the four together determine the label except when all
the modalities that carry an attribute fail at once (about 1 % of the samples).
A "sensor failure" replaces the modality's signal by noise: a learner can look at those samples in
`MultimodalData.meta`.

*Not a Doppler shift: the pitch of a real source that passes by falls whichever way it moves. "Rising means
right" is simply how this dataset encodes the direction in sound.

This module only generates; `mmkeras.data.schema` describes the data (`SCHEMA` below is the toys' schema) and
`mmkeras.data.story` turns the story into numbers (which modality sees what, the best reachable accuracy).

Everything is NumPy and deterministic: the same `seed` gives the same arrays on every machine.
"""

from __future__ import annotations

import numpy as np

from mmkeras._validation import check_int
from mmkeras.data.schema import DataSchema, LabelSpec, ModalitySpec, MultimodalData

MODALITIES = ("text", "image", "audio", "video")
SHAPES = ("circle", "cross")
COLORS = ("red", "blue")
DIRECTIONS = ("left", "right")
ATTRIBUTES = ("shape", "color", "direction")
VALUES = {"shape": SHAPES, "color": COLORS, "direction": DIRECTIONS}
CLASS_NAMES = tuple(f"{c} {s} {d}" for s in SHAPES for c in COLORS for d in DIRECTIONS)
"""Class `4 * shape + 2 * color + direction` is named `CLASS_NAMES[label]`, e.g. 5 is "red cross right"."""
LABEL_KEYS = ("label", "shape", "color", "direction")
NUM_CLASSES = {"label": 8, "shape": 2, "color": 2, "direction": 2}

IMAGE_SIZE = 32
NUM_FRAMES = 8
SAMPLE_RATE = 8000
AUDIO_SECONDS = 0.5
AUDIO_LENGTH = int(SAMPLE_RATE * AUDIO_SECONDS)
TEXT_LENGTH = 12


FAILURE_RATES = {"image": 0.08, "video": 0.08, "audio": 0.15}
TEXT_OMIT_RATE = 0.12
TEXT_MISLEAD_RATE = 0.04

_COLOR_WORDS = (("red", "crimson", "scarlet"), ("blue", "navy", "azure"))
_NEUTRAL_ADJECTIVES = ("small", "little", "plain", "shiny")
_DIRECTION_PHRASES = (
    ("to the left", "leftwards", "towards the west"),
    ("to the right", "rightwards", "towards the east"),
)
_NEUTRAL_PHRASES = ("around", "slowly", "somewhere", "across the table")
_NOUNS = ("toy", "object", "thing", "item")
_VERBS = ("moves", "slides", "drifts", "rolls", "glides")
_OPENERS = ("", "look", "we see", "in this clip")
_RGB = (np.array([0.85, 0.15, 0.15]), np.array([0.15, 0.30, 0.85]))


def _vocabulary() -> tuple[str, ...]:
    words = set()
    for group in (_COLOR_WORDS[0], _COLOR_WORDS[1], _NEUTRAL_ADJECTIVES, _NOUNS, _VERBS, ("a", "an")):
        words.update(group)
    for group in (_DIRECTION_PHRASES[0], _DIRECTION_PHRASES[1], _NEUTRAL_PHRASES, _OPENERS):
        for phrase in group:
            words.update(phrase.split())
    return tuple(sorted(words))


VOCABULARY = _vocabulary()
"""Every word a caption can contain (sorted): a fixed vocabulary for `keras.layers.TextVectorization`."""

SCHEMA = DataSchema(
    modalities=(
        ModalitySpec("text", (), "string", vocabulary=VOCABULARY),
        ModalitySpec("image", (IMAGE_SIZE, IMAGE_SIZE, 3)),
        ModalitySpec("audio", (AUDIO_LENGTH,), kind="audio", sample_rate=SAMPLE_RATE),
        ModalitySpec("video", (NUM_FRAMES, IMAGE_SIZE, IMAGE_SIZE, 1)),
    ),
    labels=(
        LabelSpec("label", 8, CLASS_NAMES),
        LabelSpec("shape", 2, SHAPES),
        LabelSpec("color", 2, COLORS),
        LabelSpec("direction", 2, DIRECTIONS),
    ),
)
"""The schema of the moving toys: four modalities, the 8-class label and its three binary attributes."""


def _noise(rng, shape, scale):
    """Gaussian noise in float32 (half the memory and time of float64)."""
    return rng.standard_normal(size=shape, dtype=np.float32) * np.float32(scale)


def _draw_masks(size, shape_ids, radius, centres_x, centres_y):
    """Boolean masks (n, size, size) of circles (shape 0) or crosses (shape 1) of the given radius and centre."""
    radius = radius[:, None, None]  # (n, 1, 1)
    grid = np.arange(size, dtype=np.float32)
    dy = grid[None, :, None] - centres_y[:, None, None]  # (n, size, 1)
    dx = grid[None, None, :] - centres_x[:, None, None]  # (n, 1, size)
    circle = dx**2 + dy**2 <= radius**2
    arm = radius * 0.3  # half the width of a cross's arms
    inside = (np.abs(dx) <= radius) & (np.abs(dy) <= radius)
    cross = inside & ((np.abs(dx) <= arm) | (np.abs(dy) <= arm))
    return np.where(shape_ids[:, None, None] == 0, circle, cross)  # (n, size, size)


def _make_images(rng, shape_ids, color_ids, failed):
    n, s = len(shape_ids), IMAGE_SIZE
    cx, cy = rng.uniform(9, s - 9, size=n), rng.uniform(9, s - 9, size=n)
    radius = rng.uniform(5.0, 8.0, size=n)
    mask = _draw_masks(s, shape_ids, radius, cx, cy)[..., None]  # (n, 32, 32, 1)
    rgb = np.stack(_RGB)[color_ids] + rng.normal(0, 0.05, size=(n, 3))  # (n, 3)
    background = rng.uniform(0.25, 0.55, size=(n, 1, 1, 1))  # a gray level per image
    images = np.where(mask & ~failed[:, None, None, None], rgb[:, None, None, :], background).astype(np.float32)
    images += _noise(rng, images.shape, 0.08)
    images[failed] += _noise(rng, images[failed].shape, 0.25)  # a failing camera: noise only
    return np.clip(images, 0, 1, out=images)  # (n, 32, 32, 3)


def _make_videos(rng, shape_ids, direction_ids, failed):
    n, s, t = len(shape_ids), IMAGE_SIZE, NUM_FRAMES
    speed = rng.uniform(1.5, 2.5, size=n) * np.where(direction_ids == 1, 1.0, -1.0)  # px per frame
    start = np.where(direction_ids == 1, rng.uniform(6, 12, size=n), rng.uniform(s - 12, s - 6, size=n))
    cy = rng.uniform(8, s - 8, size=n)
    radius = rng.uniform(4.0, 6.0, size=n)
    brightness = rng.uniform(0.6, 1.0, size=n)[:, None, None]
    frames = []
    for f in range(t):
        mask = _draw_masks(s, shape_ids, radius, start + speed * f, cy)  # (n, 32, 32)
        frames.append(np.where(mask, brightness, 0.1).astype(np.float32))
    videos = np.stack(frames, axis=1)[..., None]  # (n, 8, 32, 32, 1)
    videos[failed] = 0.3
    videos += _noise(rng, videos.shape, 0.08)
    videos[failed] += _noise(rng, videos[failed].shape, 0.25)  # a failing camera: noise only
    return np.clip(videos, 0, 1, out=videos)


def _make_audio(rng, direction_ids, failed):
    n = len(direction_ids)
    t = (np.arange(AUDIO_LENGTH) / SAMPLE_RATE).astype(np.float32)  # (4000,) seconds
    centre = rng.uniform(500, 1500, size=(n, 1)).astype(np.float32)  # Hz
    log_ratio = np.where(direction_ids == 1, np.log(1.8), -np.log(1.8)).astype(np.float32)[:, None]
    f_start = centre * np.exp(-0.5 * log_ratio)  # rising (right) or falling (left) around the centre
    # Exponential chirp f(t) = f0 * r^(t/T); its phase is 2*pi * f0 * T * (r^(t/T) - 1) / ln r.
    growth = np.exp(log_ratio * (t / np.float32(AUDIO_SECONDS)))  # (n, 4000): r^(t/T)
    phase = (2 * np.pi * AUDIO_SECONDS) * f_start * (growth - 1) / log_ratio
    envelope = np.minimum(1.0, np.minimum(t, AUDIO_SECONDS - t) / 0.05)  # 50 ms fade in and out
    amplitude = rng.uniform(0.3, 0.7, size=(n, 1)).astype(np.float32)
    waves = amplitude * envelope * np.sin(phase + rng.uniform(0, 2 * np.pi, size=(n, 1)).astype(np.float32))
    waves[failed] = 0.0  # a failing microphone: noise only
    waves += _noise(rng, waves.shape, 0.05)
    waves[failed] += _noise(rng, waves[failed].shape, 0.3)
    return np.clip(waves, -1, 1, out=waves).astype(np.float32)  # (n, 4000)


def _pick(rng, options):
    return options[rng.integers(len(options))]


def _make_captions(rng, color_ids, direction_ids):
    n = len(color_ids)
    omit_color = rng.random(n) < TEXT_OMIT_RATE
    omit_direction = rng.random(n) < TEXT_OMIT_RATE
    misleading = rng.random(n) < TEXT_MISLEAD_RATE
    mislead_color = misleading & (rng.random(n) < 0.5)
    captions = []
    for i in range(n):
        color, direction = color_ids[i], direction_ids[i]
        if misleading[i]:  # one wrong word: the other color, or the other direction
            color, direction = (1 - color, direction) if mislead_color[i] else (color, 1 - direction)
        adjective = _pick(rng, _NEUTRAL_ADJECTIVES) if omit_color[i] else _pick(rng, _COLOR_WORDS[color])
        where = _pick(rng, _NEUTRAL_PHRASES) if omit_direction[i] else _pick(rng, _DIRECTION_PHRASES[direction])
        article = "an" if adjective[0] in "aeiou" else "a"
        words = [_pick(rng, _OPENERS), article, adjective, _pick(rng, _NOUNS), _pick(rng, _VERBS), where]
        captions.append(" ".join(w for w in words if w))
    meta = {"text_omitted_color": omit_color, "text_omitted_direction": omit_direction, "text_misleading": misleading}
    return np.array(captions, dtype=object), meta


def make_synthetic(num_samples: int = 1000, seed: int = 0) -> MultimodalData:
    """Generates `num_samples` moving-toy samples with all four modalities and all labels.

    Args:
        num_samples: int. How many samples. Defaults to `1000`.
        seed: int. The seed: the same seed gives the same arrays. Defaults to `0`.

    Returns:
        A `MultimodalData` with `features`, `labels` and `meta` dicts of NumPy arrays.

    Raises:
        ValueError: when `num_samples` is not a positive int or `seed` is negative.

    Example:
    >>> data = make_synthetic(16, seed=1)
    >>> data.features["video"].shape
    (16, 8, 32, 32, 1)
    >>> sorted(data.labels)
    ['color', 'direction', 'label', 'shape']
    """
    n = check_int("num_samples", num_samples)
    seed = check_int("seed", seed, minimum=0)
    rng = np.random.default_rng(int(seed))
    shape_ids, color_ids, direction_ids = (rng.integers(0, 2, size=n) for _ in range(3))
    failed = {m: rng.random(n) < rate for m, rate in FAILURE_RATES.items()}
    captions, text_meta = _make_captions(rng, color_ids, direction_ids)
    features = {
        "text": captions,
        "image": _make_images(rng, shape_ids, color_ids, failed["image"]),
        "audio": _make_audio(rng, direction_ids, failed["audio"]),
        "video": _make_videos(rng, shape_ids, direction_ids, failed["video"]),
    }
    labels = {
        "label": (4 * shape_ids + 2 * color_ids + direction_ids).astype(np.int32),
        "shape": shape_ids.astype(np.int32),
        "color": color_ids.astype(np.int32),
        "direction": direction_ids.astype(np.int32),
    }
    meta = {f"{m}_failed": f for m, f in failed.items()} | text_meta
    return MultimodalData(features, labels, meta, SCHEMA)


def load_splits(train_size: int = 2000, val_size: int = 500, test_size: int = 1000, seed: int = 0) -> dict:
    """The train / validation / test splits of the embedded dataset, each generated from its own seed.

    Args:
        train_size, val_size, test_size: int. The number of samples in each split.
        seed: int. The base seed; the three splits use independent streams derived from it.

    Returns:
        `{"train": MultimodalData, "val": MultimodalData, "test": MultimodalData}`.

    Example:
    >>> splits = load_splits(32, 8, 8, seed=0)
    >>> [len(splits[k]) for k in ("train", "val", "test")]
    [32, 8, 8]
    """
    sizes = {"train": train_size, "val": val_size, "test": test_size}
    for name, value in sizes.items():
        check_int(f"{name}_size", value)
    seed = check_int("seed", seed, minimum=0)
    children = np.random.SeedSequence(int(seed)).spawn(3)
    return {
        name: make_synthetic(size, seed=int(child.generate_state(1)[0]))
        for (name, size), child in zip(sizes.items(), children)
    }
