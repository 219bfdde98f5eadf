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
                                    (left), like a Doppler shift
    text      color, direction      a caption, e.g. "a crimson toy slides to the left"     12 % omit a word,
                                                                                           4 % misleading word

So no single modality can name more than two of the three attributes: the best one alone is right about half
of the time (about 4 of 8 classes are ruled out), while the four together determine the label except when all
the modalities that carry an attribute fail at once (about 1 % of the samples).
A "sensor failure" replaces the modality's signal by noise: a learner can look at those samples in
`MultimodalData.meta`.

Everything is NumPy and deterministic: the same `seed` gives the same arrays on every machine.
"""

from __future__ import annotations

import dataclasses

import numpy as np

MODALITIES = ("text", "image", "audio", "video")
SHAPES = ("circle", "cross")
COLORS = ("red", "blue")
DIRECTIONS = ("left", "right")
CLASS_NAMES = tuple(f"{c} {s} {d}" for s in SHAPES for c in COLORS for d in DIRECTIONS)
ATTRIBUTES = ("shape", "color", "direction")
OBSERVES = {
    "image": ("shape", "color"),
    "video": ("shape", "direction"),
    "audio": ("direction",),
    "text": ("color", "direction"),
}
"""The generative story in one table: which attributes each modality observes."""
LABEL_KEYS = ("label", "shape", "color", "direction")
NUM_CLASSES = {"label": 8, "shape": 2, "color": 2, "direction": 2}

IMAGE_SIZE = 32
NUM_FRAMES = 8
SAMPLE_RATE = 8000
AUDIO_SECONDS = 0.5
AUDIO_LENGTH = int(SAMPLE_RATE * AUDIO_SECONDS)
TEXT_LENGTH = 12
INPUT_SPECS = {
    "text": ((), "string"),
    "image": ((IMAGE_SIZE, IMAGE_SIZE, 3), "float32"),
    "audio": ((AUDIO_LENGTH,), "float32"),
    "video": ((NUM_FRAMES, IMAGE_SIZE, IMAGE_SIZE, 1), "float32"),
}
"""Per-sample shape and dtype of each modality, as a model input (`keras.Input(shape=..., dtype=...)`)."""

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


@dataclasses.dataclass(frozen=True)
class MultimodalData:
    """A split of the embedded dataset as NumPy arrays.

    Attributes:
        features: dict. `"text"` (n,) str captions; `"image"` (n, 32, 32, 3) float32 in [0, 1];
            `"audio"` (n, 4000) float32 waveform at 8 kHz; `"video"` (n, 8, 32, 32, 1) float32 in [0, 1].
        labels: dict of int32 arrays of shape (n,): `"label"` (8 classes, names in `CLASS_NAMES`),
            and the auxiliary labels `"shape"`, `"color"`, `"direction"` (2 classes each).
        meta: dict of bool arrays of shape (n,): `"image_failed"`, `"video_failed"`, `"audio_failed"`,
            `"text_omitted_color"`, `"text_omitted_direction"`, `"text_misleading"`.
    """

    features: dict
    labels: dict
    meta: dict

    def __len__(self) -> int:
        return int(self.labels["label"].shape[0])

    def select(self, index) -> MultimodalData:
        """Returns the samples at `index` (an int array, a bool mask or a slice) as a new `MultimodalData`."""
        pick = {k: v[index] for k, v in self.features.items()}
        return MultimodalData(pick, {k: v[index] for k, v in self.labels.items()},
                              {k: v[index] for k, v in self.meta.items()})


def _check_count(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"`{name}` must be a positive int. Received: {name}={value!r}")
    return int(value)


def check_modalities(modalities) -> tuple[str, ...]:
    """Validates a list of modality names and returns it as a tuple in the canonical order.

    Raises:
        ValueError: for an empty list, a repeated name or a name outside `MODALITIES`.
    """
    if isinstance(modalities, str):
        modalities = (modalities,)
    modalities = tuple(modalities)
    unknown = [m for m in modalities if m not in MODALITIES]
    if unknown or not modalities or len(set(modalities)) != len(modalities):
        raise ValueError(
            f"`modalities` must be a non-empty list of distinct names from {MODALITIES}. "
            f"Received: modalities={modalities!r}"
        )
    return tuple(m for m in MODALITIES if m in modalities)


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
    n = _check_count("num_samples", num_samples)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative int. Received: seed={seed!r}")
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
    return MultimodalData(features, labels, meta)


def delivered(attribute: str, modalities, meta: dict) -> np.ndarray:
    """Per sample, whether at least one of `modalities` observes `attribute` and worked on that sample.

    A camera or microphone that failed delivers nothing; a caption that omitted the word delivers nothing
    (a misleading word still counts as delivered: the model cannot tell it is wrong).

    Returns:
        A bool array `(n,)`.
    """
    if attribute not in ATTRIBUTES:
        raise ValueError(f"`attribute` must be one of {ATTRIBUTES}. Received: attribute={attribute!r}")
    n = len(meta["image_failed"])
    ok = np.zeros(n, dtype=bool)
    for modality in check_modalities(modalities):
        if attribute in OBSERVES[modality]:
            ok |= ~meta[f"text_omitted_{attribute}"] if modality == "text" else ~meta[f"{modality}_failed"]
    return ok


def story_ceiling(modalities, meta: dict) -> float:
    """The best accuracy any model can expect from `modalities` on a split, from the generative story alone.

    An attribute that no working modality delivers must be guessed (right half of the time), so a sample's
    chance of being classified right is `prod_a (1 if delivered(a) else 1/2)`; the ceiling is its mean.

    Example:
    >>> data = make_synthetic(2000, seed=0)
    >>> round(story_ceiling(["audio"], data.meta), 2)  # direction only: 2 of 8 classes told apart
    0.23
    """
    chance_right = np.ones(len(meta["image_failed"]))
    for attribute in ATTRIBUTES:
        chance_right *= np.where(delivered(attribute, modalities, meta), 1.0, 0.5)
    return float(chance_right.mean())


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
        _check_count(f"{name}_size", value)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"`seed` must be a non-negative int. Received: seed={seed!r}")
    children = np.random.SeedSequence(int(seed)).spawn(3)
    return {
        name: make_synthetic(size, seed=int(child.generate_state(1)[0]))
        for (name, size), child in zip(sizes.items(), children)
    }
