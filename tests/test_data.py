"""The embedded dataset: shapes, determinism, the generative story, the tf.data pipeline, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

from mmkeras.data import (
    CLASS_NAMES,
    MODALITIES,
    OBSERVES,
    VOCABULARY,
    MultimodalData,
    attribute_accuracy,
    attributes_of,
    caption_reader_accuracy,
    delivered,
    load_splits,
    make_synthetic,
    story_ceiling,
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


def _ridge_accuracy(x_train, y_train, x_test, y_test, ridge=1.0):
    """A linear read-out (ridge regression on +-1 targets): how much of a binary attribute a signal reveals."""
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    a, b = (x_train - mean) / std, (x_test - mean) / std
    a, b = np.hstack([a, np.ones((len(a), 1))]), np.hstack([b, np.ones((len(b), 1))])
    w = np.linalg.solve(a.T @ a + ridge * np.eye(a.shape[1]), a.T @ (2.0 * y_train - 1))
    return float(((b @ w > 0) == y_test).mean())


def _summaries(data):
    """Small, generic summaries of each modality's raw signal (no knowledge of the story)."""
    n = len(data)
    image = data.features["image"].reshape(n, 8, 4, 8, 4, 3).mean(axis=(2, 4)).reshape(n, -1)  # 8x8x3 means
    video = data.features["video"].reshape(n, 8, 8, 4, 8, 4).mean(axis=(3, 5)).reshape(n, -1)  # 8 frames of 8x8
    frames = data.features["audio"].reshape(n, 16, 250)  # 16 frames of 31 ms
    spectrum = np.abs(np.fft.rfft(frames, axis=-1))[:, :, 5:125].reshape(n, 16, 8, 15).mean(-1)  # 8 bands
    audio = np.log(spectrum + 1e-3).reshape(n, -1)
    text = np.array([[w in caption.split() for w in VOCABULARY] for caption in data.features["text"]], float)
    return {"image": image, "video": video, "audio": audio, "text": text}


SEES = {m: set(attributes) for m, attributes in OBSERVES.items()}


def test_each_modality_reveals_only_its_own_attributes():
    """The heart of the dataset: a read-out of each modality finds the attributes it sees and nothing else.

    A linear read-out of a modality's raw summaries predicts an attribute that modality does not observe at
    chance (about 0.5), and the attributes it does observe well above chance. So no modality alone can name
    the class, while together they observe all three attributes.
    """
    train, test = make_synthetic(1500, seed=21), make_synthetic(600, seed=22)
    s_train, s_test = _summaries(train), _summaries(test)
    found = {}
    for modality, seen in SEES.items():
        for attribute in ("shape", "color", "direction"):
            accuracy = _ridge_accuracy(s_train[modality], train.labels[attribute], s_test[modality],
                                       test.labels[attribute], ridge=10.0)
            found[(modality, attribute)] = round(accuracy, 3)
            if attribute not in seen:
                assert accuracy < 0.6, (modality, attribute, found)
    # What a modality sees, even this crude linear read-out finds (shape, a non-linear property, less well).
    for modality, seen in SEES.items():
        for attribute in seen:
            assert found[(modality, attribute)] > (0.6 if attribute == "shape" else 0.8), (modality, attribute, found)
    assert set().union(*SEES.values()) == {"shape", "color", "direction"}


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


def test_reading_one_batch_prints_no_tensorflow_warning(tmp_path):
    """`next(iter(to_dataset(...)))`, the course's way to look at a batch, leaves TensorFlow's log silent.

    A fresh process with TensorFlow's C++ log fully on: first the course's pattern, then a partial read of a
    cached dataset, which must warn: if it did not, the log would not be captured and the check could not fail.
    """
    import os
    import subprocess
    import sys

    script = tmp_path / "one_batch.py"
    script.write_text(
        "import gc, sys, warnings\n"
        "warnings.simplefilter('always')\n"
        "import tensorflow as tf\n"
        "from mmkeras.data import make_synthetic, to_dataset\n"
        "for shuffle in (False, True):\n"
        "    features, labels = next(iter(to_dataset(make_synthetic(40, seed=0), batch_size=8, shuffle=shuffle)))\n"
        "gc.collect()\n"
        "sys.stderr.write('--- control ---\\n'); sys.stderr.flush()\n"
        "next(iter(tf.data.Dataset.range(10).cache()))\n"
        "gc.collect()\n"
    )
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="0", MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    course, _, control = done.stderr.partition("--- control ---")
    assert "did not fully read the dataset being cached" in control, control[-2000:]
    noise = [line for line in course.splitlines() if "cache" in line.lower() or "Warning" in line]
    assert not noise, noise


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
        (lambda: to_dataset({"image": 1}), r"MultimodalData or a pair"),
        (lambda: to_dataset(({"a": np.ones((3, 2))}, {"y": np.array([0, 1])})), r"same number of samples"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_story_ceiling():
    data = make_synthetic(3000, seed=9)
    single = {m: story_ceiling([m], data.meta) for m in MODALITIES}
    assert 0.40 < single["image"] < 0.5 and 0.2 < single["audio"] < 0.26, single
    assert max(single.values()) <= 0.5
    assert story_ceiling(MODALITIES, data.meta) > 0.98
    # text + audio never see the shape: at most 1/2.
    assert story_ceiling(["text", "audio"], data.meta) <= 0.5
    with pytest.raises(ValueError, match="attribute='size'"):
        delivered("size", ["image"], data.meta)


def test_captions_read_well():
    captions = make_synthetic(300, seed=2).features["text"]
    assert not any(" a azure" in c or c.startswith("a azure") for c in captions)
    assert any("an azure" in c for c in captions)


def test_story_helpers():
    data = make_synthetic(2000, seed=3)
    assert story_ceiling(["text"], data.meta) > caption_reader_accuracy(data.meta) > 0.4
    attributes = attributes_of(data.labels["label"])
    for name in ("shape", "color", "direction"):
        np.testing.assert_array_equal(attributes[name], data.labels[name])
    assert attribute_accuracy(data.labels["label"], data.labels["label"]) == dict.fromkeys(attributes, 1.0)
    flipped = data.labels["label"] ^ 4  # the other shape, same color and direction
    assert attribute_accuracy(data.labels["label"], flipped) == {"shape": 0.0, "color": 1.0, "direction": 1.0}


def test_data_inputs_are_model_ready(sample):
    inputs = sample.select(slice(0, 3)).inputs(["text", "audio"])
    assert inputs["text"].dtype.name == "string" and tuple(inputs["audio"].shape) == (3, 4000)
