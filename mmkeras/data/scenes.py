"""The captioned scenes: pictures with a caption that says what they show, for retrieval, GANs and captioning.

The moving toys (`mmkeras.data.synthetic`) caption color and direction while the image shows shape and color,
on purpose: there, no modality alone is enough. Image-text retrieval, text-to-image generation and captioning
need the opposite, a caption that describes the picture. Every scene is one object with four attributes,
each drawn uniformly:

    shape     circle, square, triangle, cross, diamond                   5
    color     red, green, blue, yellow, purple, cyan                     6
    size      small, large                                               2
    position  a cell of a 3x3 grid: top left, top, top right, left,      9
              center, right, bottom left, bottom, bottom right

and the caption names all four: "a small red cross at the top left". That makes 5 * 6 * 2 * 9 = 540
descriptions, so a gallery of 100 scenes holds, on average, about 17 scenes that share their description with
another one (`retrieval_ceiling` gives the best recall@1 that any model can reach on a given gallery: a caption
cannot tell two scenes with the same description apart).

The images are 32x32 RGB in [0, 1] on a gray background with a little noise; nothing fails here. Everything
is NumPy and deterministic: the same `seed` gives the same arrays on every machine.

Example:
>>> scenes = make_scenes(4, seed=0)
>>> scenes.features["image"].shape, scenes.schema.modality_names
((4, 32, 32, 3), ('image', 'text'))
>>> str(scenes.features["text"][0]) == describe(*(int(scenes.labels[a][0]) for a in SCENE_ATTRIBUTES))
True
"""

from __future__ import annotations

import numpy as np

from mmkeras._validation import check_int
from mmkeras.data.schema import DataSchema, LabelSpec, ModalitySpec, MultimodalData

SCENE_SHAPES = ("circle", "square", "triangle", "cross", "diamond")
SCENE_COLORS = ("red", "green", "blue", "yellow", "purple", "cyan")
SCENE_SIZES = ("small", "large")
SCENE_POSITIONS = ("top left", "top", "top right", "left", "center", "right", "bottom left", "bottom",
                   "bottom right")
SCENE_ATTRIBUTES = ("shape", "color", "size", "position")
SCENE_VALUES = {"shape": SCENE_SHAPES, "color": SCENE_COLORS, "size": SCENE_SIZES, "position": SCENE_POSITIONS}
SCENE_IMAGE_SIZE = 32

_RGB = {
    "red": (0.90, 0.12, 0.12), "green": (0.10, 0.75, 0.20), "blue": (0.15, 0.25, 0.95),
    "yellow": (0.95, 0.90, 0.15), "purple": (0.60, 0.15, 0.75), "cyan": (0.10, 0.85, 0.90),
}
POSITION_PHRASES = {  # where the object is, as the caption says it
    "top left": "at the top left", "top": "at the top", "top right": "at the top right",
    "left": "on the left", "center": "in the center", "right": "on the right",
    "bottom left": "at the bottom left", "bottom": "at the bottom", "bottom right": "at the bottom right",
}
_RADIUS = {"small": (3.5, 4.5), "large": (6.0, 7.0)}  # pixels, drawn uniformly in the range


def describe(shape: int, color: int, size: int, position: int) -> str:
    """The caption of a scene from its attribute ids: `describe(3, 0, 0, 0)` is "a small red cross at the top left".

    Example:
    >>> describe(3, 0, 0, 0)
    'a small red cross at the top left'
    """
    return (f"a {SCENE_SIZES[size]} {SCENE_COLORS[color]} {SCENE_SHAPES[shape]} "
            f"{POSITION_PHRASES[SCENE_POSITIONS[position]]}")


def _scene_vocabulary() -> tuple[str, ...]:
    words = {"a"} | set(SCENE_SHAPES) | set(SCENE_COLORS) | set(SCENE_SIZES)
    for phrase in POSITION_PHRASES.values():
        words.update(phrase.split())
    return tuple(sorted(words))


SCENE_VOCABULARY = _scene_vocabulary()
"""Every word a scene caption can contain (sorted)."""
SCENE_CAPTION_LENGTH = max(len(describe(0, 0, 0, p).split()) for p in range(len(SCENE_POSITIONS)))
"""The longest caption, in words (8: "a small red circle at the bottom right")."""

SCENE_SCHEMA = DataSchema(
    modalities=(
        ModalitySpec("image", (SCENE_IMAGE_SIZE, SCENE_IMAGE_SIZE, 3)),
        ModalitySpec("text", (), "string", vocabulary=SCENE_VOCABULARY),
    ),
    labels=tuple(LabelSpec(name, len(values), values) for name, values in SCENE_VALUES.items()),
)
"""The schema of the captioned scenes: an image and its caption, and the four attributes as labels."""


def _shape_masks(shape_ids, cx, cy, radius, size):
    """Boolean masks `(n, size, size)`: each object's shape, centre and radius."""
    grid = np.arange(size, dtype=np.float32) + 0.5
    dx = grid[None, None, :] - cx[:, None, None]  # (n, 1, size)
    dy = grid[None, :, None] - cy[:, None, None]  # (n, size, 1)
    r = radius[:, None, None]
    ax, ay = np.abs(dx), np.abs(dy)
    masks = np.stack([
        dx**2 + dy**2 <= r**2,  # circle
        (ax <= 0.85 * r) & (ay <= 0.85 * r),  # square (same area as the circle, roughly)
        (dy >= -r) & (dy <= 0.8 * r) & (ax <= (dy + r) * 0.6),  # triangle, apex up
        ((ax <= r) & (ay <= 0.32 * r)) | ((ay <= r) & (ax <= 0.32 * r)),  # cross
        ax + ay <= 1.1 * r,  # diamond
    ])  # (5, n, size, size)
    return masks[shape_ids, np.arange(len(shape_ids))]


def render_scenes(shape, color, size, position, rng=None, noise: float = 0.03) -> np.ndarray:
    """Draws scenes from attribute ids (arrays of equal length) into float32 images `(n, 32, 32, 3)` in [0, 1].

    The object sits at the centre of its grid cell, moved by up to 1.5 pixels; the gray background and the
    noise vary from image to image. `rng` is a `np.random.Generator` (a fixed seed when `None`).
    """
    rng = rng if rng is not None else np.random.default_rng(0)
    ids = [np.asarray(a, dtype=np.int64).reshape(-1) for a in (shape, color, size, position)]
    n = len(ids[0])
    for name, values, a in zip(SCENE_ATTRIBUTES, SCENE_VALUES.values(), ids):
        if len(a) != n or (n and (a.min() < 0 or a.max() >= len(values))):
            raise ValueError(f"`{name}` must hold {n} ids in [0, {len(values)}). Received: {a.tolist()[:8]}")
    shape_ids, color_ids, size_ids, position_ids = ids
    s = SCENE_IMAGE_SIZE
    cell = s / 3
    cx = (position_ids % 3 + 0.5) * cell + rng.uniform(-1.5, 1.5, size=n)  # column: left, center, right
    cy = (position_ids // 3 + 0.5) * cell + rng.uniform(-1.5, 1.5, size=n)  # row: top, middle, bottom
    low = np.array([_RADIUS[SCENE_SIZES[k]][0] for k in size_ids])
    high = np.array([_RADIUS[SCENE_SIZES[k]][1] for k in size_ids])
    radius = rng.uniform(low, high) if n else low
    mask = _shape_masks(shape_ids, cx.astype(np.float32), cy.astype(np.float32), radius.astype(np.float32), s)
    rgb = np.array([_RGB[c] for c in SCENE_COLORS], dtype=np.float32)[color_ids]  # (n, 3)
    rgb = rgb + rng.normal(0, 0.03, size=(n, 3)).astype(np.float32)
    background = rng.uniform(0.35, 0.55, size=(n, 1, 1, 1)).astype(np.float32)
    images = np.where(mask[..., None], rgb[:, None, None, :], background)  # (n, 32, 32, 3)
    images = images + rng.standard_normal(size=images.shape, dtype=np.float32) * np.float32(noise)
    return np.clip(images, 0, 1).astype(np.float32)


def make_scenes(num_samples: int = 1000, seed: int = 0) -> MultimodalData:
    """Generates `num_samples` captioned scenes.

    Args:
        num_samples: int. How many scenes. Defaults to `1000`.
        seed: int. The same seed gives the same arrays. Defaults to `0`.

    Returns:
        A `MultimodalData` with features `{"image": (n, 32, 32, 3), "text": (n,) captions}` and labels
        `{"shape", "color", "size", "position"}`, described by `SCENE_SCHEMA`.

    Example:
    >>> sorted(make_scenes(8, seed=1).labels)
    ['color', 'position', 'shape', 'size']
    """
    n = check_int("num_samples", num_samples)
    seed = check_int("seed", seed, minimum=0)
    rng = np.random.default_rng(int(seed))
    labels = {name: rng.integers(0, len(values), size=n).astype(np.int32) for name, values in SCENE_VALUES.items()}
    images = render_scenes(*(labels[a] for a in SCENE_ATTRIBUTES), rng=rng)
    captions = np.array([describe(*(int(labels[a][i]) for a in SCENE_ATTRIBUTES)) for i in range(n)], dtype=object)
    return MultimodalData({"image": images, "text": captions}, labels, {}, SCENE_SCHEMA)


def load_scene_splits(train_size: int = 4000, val_size: int = 500, test_size: int = 500, seed: int = 0) -> dict:
    """Train / validation / test splits of the captioned scenes, each from its own seed stream.

    Example:
    >>> [len(s) for s in load_scene_splits(16, 4, 4).values()]
    [16, 4, 4]
    """
    sizes = {"train": train_size, "val": val_size, "test": test_size}
    for name, value in sizes.items():
        check_int(f"{name}_size", value)
    seed = check_int("seed", seed, minimum=0)
    children = np.random.SeedSequence([int(seed), 7]).spawn(3)  # 7: streams apart from the moving toys'
    return {name: make_scenes(size, seed=int(child.generate_state(1)[0]))
            for (name, size), child in zip(sizes.items(), children)}


def description_ids(data) -> np.ndarray:
    """One integer per scene that is equal exactly when two scenes have the same description (all 4 attributes)."""
    labels = data.labels if isinstance(data, MultimodalData) else data
    code = np.zeros(len(labels["shape"]), dtype=np.int64)
    for name in SCENE_ATTRIBUTES:
        code = code * len(SCENE_VALUES[name]) + np.asarray(labels[name], dtype=np.int64)
    return code


def retrieval_ceiling(data) -> float:
    """The best expected recall@1 on this gallery: `mean_i 1 / #{j : description_j = description_i}`.

    A caption names the attributes and nothing else, so a perfect model can only guess among the scenes that
    share the caption's description (and an image among the equal captions, the other way).

    Example:
    >>> round(retrieval_ceiling({"shape": [0, 0, 1], "color": [0, 0, 0], "size": [0, 0, 0], "position": [0, 0, 0]}), 3)
    0.667
    """
    codes = description_ids(data)
    _, inverse, counts = np.unique(codes, return_inverse=True, return_counts=True)
    return float(np.mean(1.0 / counts[inverse]))
