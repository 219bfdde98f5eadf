"""The captioned scenes: seeded, described by their schema, and each caption says what its image shows."""

from __future__ import annotations

import numpy as np
import pytest

from mmkeras.data import MultimodalData
from mmkeras.data.scenes import (
    SCENE_ATTRIBUTES,
    SCENE_CAPTION_LENGTH,
    SCENE_SCHEMA,
    SCENE_VALUES,
    SCENE_VOCABULARY,
    describe,
    description_ids,
    load_scene_splits,
    make_scenes,
    render_scenes,
    retrieval_ceiling,
)


def test_same_seed_same_scenes_and_another_seed_others():
    a, b, c = make_scenes(50, seed=3), make_scenes(50, seed=3), make_scenes(50, seed=4)
    np.testing.assert_array_equal(a.features["image"], b.features["image"])
    assert list(a.features["text"]) == list(b.features["text"])
    assert not np.array_equal(a.features["image"], c.features["image"])


def test_schema_shapes_and_ranges():
    data = make_scenes(64, seed=0)
    assert isinstance(data, MultimodalData) and data.schema == SCENE_SCHEMA
    assert data.features["image"].shape == (64, 32, 32, 3) and data.features["image"].dtype == np.float32
    assert 0.0 <= data.features["image"].min() and data.features["image"].max() <= 1.0
    for name in SCENE_ATTRIBUTES:
        assert data.schema.label(name).num_classes == len(SCENE_VALUES[name])


def test_every_caption_names_its_attributes_in_the_vocabulary():
    data = make_scenes(200, seed=1)
    for i, caption in enumerate(data.features["text"]):
        ids = [int(data.labels[a][i]) for a in SCENE_ATTRIBUTES]
        assert caption == describe(*ids)
        words = caption.split()
        assert set(words) <= set(SCENE_VOCABULARY) and len(words) <= SCENE_CAPTION_LENGTH
        assert SCENE_VALUES["shape"][ids[0]] in words and SCENE_VALUES["color"][ids[1]] in words


def test_the_image_shows_the_color_and_the_position():
    """The pixels most unlike the background carry the caption's color, in the caption's grid cell."""
    data = make_scenes(120, seed=2)
    images = data.features["image"]
    background = np.median(images, axis=(1, 2), keepdims=True)  # (n, 1, 1, 3)
    distance = np.abs(images - background).sum(-1)  # (n, 32, 32)
    for i in range(len(data)):
        ys, xs = np.nonzero(distance[i] > 0.5)
        assert len(ys) > 10
        row, column = int(ys.mean() // (32 / 3)), int(xs.mean() // (32 / 3))
        assert 3 * row + column == data.labels["position"][i]
    area = (distance > 0.5).sum(axis=(1, 2))
    for shape in range(len(SCENE_VALUES["shape"])):  # a large object covers more pixels than a small one
        same = data.labels["shape"] == shape
        small, large = area[same & (data.labels["size"] == 0)], area[same & (data.labels["size"] == 1)]
        assert small.max() < large.min(), SCENE_VALUES["shape"][shape]


def test_galleries_of_100_rarely_repeat_a_description():
    ceilings = [retrieval_ceiling(make_scenes(100, seed=s)) for s in range(5)]
    assert all(0.8 < c < 1.0 for c in ceilings), ceilings
    codes = description_ids(make_scenes(2000, seed=0))
    assert len(np.unique(codes)) > 500  # nearly all 540 descriptions occur


def test_retrieval_ceiling_by_hand():
    labels = {"shape": [0, 0, 1, 1], "color": [0, 0, 0, 1], "size": [0, 0, 0, 0], "position": [0, 0, 0, 0]}
    assert retrieval_ceiling(labels) == pytest.approx((0.5 + 0.5 + 1 + 1) / 4)


def test_splits_are_independent():
    splits = load_scene_splits(20, 5, 10, seed=0)
    assert [len(s) for s in splits.values()] == [20, 5, 10]
    assert not np.array_equal(splits["train"].features["image"][:5], splits["val"].features["image"])


@pytest.mark.parametrize("bad", [dict(num_samples=0), dict(num_samples=2.5), dict(seed=-1)])
def test_bad_arguments_raise(bad):
    with pytest.raises(ValueError, match="Received"):
        make_scenes(**({"num_samples": 4} | bad))


def test_render_refuses_out_of_range_ids():
    with pytest.raises(ValueError, match="`color` must hold 1 ids in \\[0, 6\\)"):
        render_scenes([0], [6], [0], [0])
