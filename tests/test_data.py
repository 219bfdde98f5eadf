"""The embedded dataset: shapes, determinism, the generative story, the tf.data pipeline, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

from mmkeras.data import (
    CLASS_NAMES,
    MODALITIES,
    VOCABULARY,
    MultimodalData,
    load_splits,
    make_synthetic,
    synthetic,
    to_dataset,
)


@pytest.fixture(scope="module")
def sample():
    return make_synthetic(400, seed=11)


def test_shapes_and_dtypes(sample):
    f = sample.features
    assert f["text"].shape == (400,) and isinstance(f["text"][0], str)
    assert f["image"].shape == (400, 32, 32, 3) and f["image"].dtype == np.float32
    assert f["audio"].shape == (400, 4000) and f["audio"].dtype == np.float32
    assert f["video"].shape == (400, 8, 32, 32, 1) and f["video"].dtype == np.float32
    assert 0 <= f["image"].min() and f["image"].max() <= 1 and np.abs(f["audio"]).max() <= 1
    assert set(sample.labels) == {"label", "shape", "color", "direction"}
    assert len(sample) == 400


def test_label_is_the_combination_of_the_attributes(sample):
    y = sample.labels
    np.testing.assert_array_equal(y["label"], 4 * y["shape"] + 2 * y["color"] + y["direction"])
    for i in range(8):
        name = CLASS_NAMES[y["label"][i]]
        assert synthetic.COLORS[y["color"][i]] in name and synthetic.DIRECTIONS[y["direction"][i]] in name
    assert set(np.unique(y["label"])) == set(range(8))


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = make_synthetic(20, seed=5), make_synthetic(20, seed=5), make_synthetic(20, seed=6)
    for m in MODALITIES:
        np.testing.assert_array_equal(a.features[m], b.features[m])
    assert not np.array_equal(a.features["image"], c.features["image"])


def test_splits_are_independent():
    splits = load_splits(30, 10, 10, seed=0)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [30, 10, 10]
    assert not np.array_equal(splits["train"].features["audio"][:10], splits["val"].features["audio"])


def test_captions_use_the_vocabulary_and_name_no_shape(sample):
    words = {w for caption in sample.features["text"] for w in caption.split()}
    assert words <= set(VOCABULARY)
    assert not words & set(synthetic.SHAPES), "the caption must not reveal the shape"


def test_failure_rates_match_the_story(sample):
    big = make_synthetic(4000, seed=3)
    for modality, rate in synthetic.FAILURE_RATES.items():
        assert abs(big.meta[f"{modality}_failed"].mean() - rate) < 0.03


def _fit_accuracy(x_train, y_train, x_test, y_test):
    """Least-squares linear classifier on hand features: how much a modality reveals, model-free."""
    def design(x):
        return np.hstack([x, np.ones((len(x), 1))])
    onehot = np.eye(8)[y_train]
    w, *_ = np.linalg.lstsq(design(x_train), onehot, rcond=None)
    return float((design(x_test) @ w).argmax(-1).__eq__(y_test).mean())


def _hand_features(data):
    """Oracle attribute read-outs, one per modality, computed from the raw signals."""
    img = data.features["image"]
    redness = (img[..., 0] - img[..., 2]).reshape(len(img), -1)
    color = np.sort(redness, axis=1)[:, [0, -1]]  # the most blue and the most red pixel
    vid = data.features["video"][..., 0]
    cols = vid.mean(axis=(2,))  # (n, frames, width): brightness per column
    centre = (cols * np.arange(32)).sum(-1) / cols.sum(-1)
    motion = (centre[:, -1] - centre[:, 0])[:, None]
    words = np.array([[w in c.split() for w in VOCABULARY] for c in data.features["text"]], dtype=float)
    return {"image": color, "video": motion, "text": words}


def test_each_modality_alone_is_ambiguous_and_together_they_decide():
    train, test = make_synthetic(1500, seed=21), make_synthetic(600, seed=22)
    ftr, fte = _hand_features(train), _hand_features(test)
    ytr, yte = train.labels["label"], test.labels["label"]
    alone = {m: _fit_accuracy(ftr[m], ytr, fte[m], yte) for m in ftr}
    assert max(alone.values()) <= 0.55, alone  # at most 2 of 3 attributes per modality: about 1/2
    # The attributes seen by text + image + video together determine the label for most samples.
    truth = test.labels
    known = (~test.meta["image_failed"] | ~test.meta["video_failed"])
    assert known.mean() > 0.98
    assert all(abs(np.mean(truth[k]) - 0.5) < 0.1 for k in ("shape", "color", "direction"))


def test_to_dataset_batches_and_labels(sample):
    ds = to_dataset(sample, modalities=["audio", "text"], label_keys=["label", "color"], batch_size=64)
    features, labels = next(iter(ds))
    assert sorted(features) == ["audio", "text"]
    assert features["audio"].shape == (64, 4000) and features["text"].dtype.name == "string"
    assert sorted(labels) == ["color", "label"]
    assert sum(int(f["audio"].shape[0]) for f, _ in ds) == 400


def test_to_dataset_shuffles_deterministically(sample):
    first = [next(iter(to_dataset(sample, ["image"], shuffle=True, seed=s)))[1].numpy() for s in (1, 1, 2)]
    np.testing.assert_array_equal(first[0], first[1])
    assert not np.array_equal(first[0], first[2])


def test_select(sample):
    part = sample.select(np.arange(5))
    assert isinstance(part, MultimodalData) and len(part) == 5


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: make_synthetic(0), r"num_samples=0"),
        (lambda: make_synthetic(-3), r"num_samples=-3"),
        (lambda: make_synthetic(2.5), r"num_samples=2.5"),
        (lambda: make_synthetic(10, seed=-1), r"seed=-1"),
        (lambda: load_splits(10, 0, 10), r"val_size=0"),
        (lambda: to_dataset(make_synthetic(4), modalities=["smell"]), r"smell"),
        (lambda: to_dataset(make_synthetic(4), modalities=[]), r"non-empty"),
        (lambda: to_dataset(make_synthetic(4), batch_size=0), r"batch_size=0"),
        (lambda: to_dataset(make_synthetic(4), label_keys="size"), r"label_keys='size'"),
        (lambda: to_dataset({"image": 1}), r"MultimodalData"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
