"""The moving toys' generative story as numbers: which modality sees which attribute, which attributes reached
the model on each sample, and the best accuracy any model can expect.

Two ceilings, named apart because they answer different questions:

* `story_ceiling(modalities, meta)`: an **upper bound**. A misleading caption word counts as delivered (a model
  cannot know it is wrong, but nothing in the story stops a lucky guess either), so only omitted words and
  failed sensors cost accuracy. For text alone on a 1000-sample test split this is about 0.44.
* `caption_reader_accuracy(meta)`: what a perfect reader **that believes every caption** expects with text
  alone: a misleading word makes it wrong for sure. About 0.43 on the same split. The gap is the 4 % of
  misleading captions.

Example:
>>> from mmkeras.data.synthetic import make_synthetic
>>> meta = make_synthetic(2000, seed=0).meta
>>> story_ceiling(["text"], meta) > caption_reader_accuracy(meta)
True
"""

from __future__ import annotations

import numpy as np

from mmkeras.data.synthetic import ATTRIBUTES, SCHEMA

OBSERVES = {
    "image": ("shape", "color"),
    "video": ("shape", "direction"),
    "audio": ("direction",),
    "text": ("color", "direction"),
}
"""The generative story in one table: which attributes each modality observes."""


def attributes_of(labels) -> dict:
    """The attributes encoded in class ids, inverting `label = 4 * shape + 2 * color + direction`.

    Example:
    >>> {k: v.tolist() for k, v in attributes_of([5]).items()}
    {'shape': [1], 'color': [0], 'direction': [1]}
    """
    labels = np.asarray(labels).astype(int)
    if labels.size and (labels.min() < 0 or labels.max() > 7):
        raise ValueError(f"Class ids of the moving toys are in [0, 8). Received values in [{labels.min()}, "
                         f"{labels.max()}]")
    return {"shape": labels // 4, "color": (labels // 2) % 2, "direction": labels % 2}


def attribute_accuracy(y_true, y_pred) -> dict:
    """Per attribute, how often the predicted class has the true class's value of it.

    A model that sees only color and direction is right on those and at chance (about 0.5) on the shape.

    Example:
    >>> attribute_accuracy([0, 5], [4, 5])
    {'shape': 0.5, 'color': 1.0, 'direction': 1.0}
    """
    true, pred = attributes_of(y_true), attributes_of(y_pred)
    if true["shape"].shape != pred["shape"].shape:
        raise ValueError(f"y_true and y_pred must have the same length. Received: {len(true['shape'])} and "
                         f"{len(pred['shape'])}")
    return {a: float(np.mean(true[a] == pred[a])) for a in ATTRIBUTES}


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
    for modality in SCHEMA.select_modalities(modalities):
        if attribute in OBSERVES[modality]:
            ok |= ~meta[f"text_omitted_{attribute}"] if modality == "text" else ~meta[f"{modality}_failed"]
    return ok


def story_ceiling(modalities, meta: dict) -> float:
    """The best accuracy any model can expect from `modalities` on a split, from the generative story alone.

    An attribute that no working modality delivers must be guessed (right half of the time), so a sample's
    chance of being classified right is `prod_a (1 if delivered(a) else 1/2)`; the ceiling is its mean.
    Misleading caption words count as delivered, so this is an upper bound (see `caption_reader_accuracy`).

    Example:
    >>> from mmkeras.data.synthetic import make_synthetic
    >>> data = make_synthetic(2000, seed=0)
    >>> round(story_ceiling(["audio"], data.meta), 2)  # direction only: 2 of 8 classes told apart
    0.23
    """
    chance_right = np.ones(len(meta["image_failed"]))
    for attribute in ATTRIBUTES:
        chance_right *= np.where(delivered(attribute, modalities, meta), 1.0, 0.5)
    return float(chance_right.mean())


def caption_reader_accuracy(meta: dict) -> float:
    """Expected accuracy of a perfect caption reader that believes every word, with text alone.

    It guesses the shape (1/2), and the color or direction when the caption omits it (1/2 each); a misleading
    word makes it wrong: `mean(1/2 * p_color * p_direction * [not misleading])`.
    """
    p_color = np.where(meta["text_omitted_color"], 0.5, 1.0)
    p_direction = np.where(meta["text_omitted_direction"], 0.5, 1.0)
    return float(np.mean(0.5 * p_color * p_direction * ~meta["text_misleading"]))
