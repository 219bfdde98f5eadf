"""Solutions to the exercises of notebook 05 (concatenation fusion).

Run: `python notebooks/solutions/05_concatenation_fusion.py` (add `MMKERAS_SMOKE=1` for a quick run; the full
run trains five models on the notebook's splits: several minutes on 2 CPU cores).
"""

from __future__ import annotations

import keras
import numpy as np

import mmkeras
from mmkeras.data import CLASS_NAMES, MODALITIES, MultimodalData, story_ceiling
from mmkeras.training import predict_classes, train_and_evaluate

SMOKE = mmkeras.config.is_smoke()
SIZES = mmkeras.config.by_mode(full=(3000, 500, 1000), smoke=(128, 32, 64))  # the notebook's sizes
EPOCHS = mmkeras.config.by_mode(full=8, smoke=1)

_splits = None


def splits() -> dict:
    """The train / val / test splits, generated once."""
    global _splits
    if _splits is None:
        _splits = mmkeras.load_splits(*SIZES)
    return _splits


def train(modalities, watch_validation=False, **kwargs):
    """The notebook's recipe (`train_and_evaluate`: seed 0, build, `fit_classifier`, test): an `Experiment`."""
    val = splits()["val"] if watch_validation else None  # only watched: it does not change the training
    return train_and_evaluate(lambda: mmkeras.build_fusion_classifier(list(modalities), **kwargs),
                              splits()["train"], splits()["test"], val=val, epochs=EPOCHS)


def exercise_1():
    """Drop one modality (audio, then image): predict the accuracy from the story, then train and compare."""
    meta = splits()["test"].meta
    lines, results = [], {}
    for dropped in ("audio", "image"):
        kept = [m for m in MODALITIES if m != dropped]
        predicted = story_ceiling(kept, meta)  # written down before training
        accuracy = train(kept).report["accuracy"]
        results[dropped] = (predicted, accuracy)
        lines.append(f"without {dropped}: story ceiling {predicted:.3f}, trained {accuracy:.3f}")
    # Without audio every attribute keeps a witness (direction: video and text), so almost nothing changes.
    # Without the image the shape relies on the video alone and the color on the caption alone: every failed
    # camera and every caption that omits the color now costs a guess, and the ceiling drops by about 8 points.
    assert results["audio"][0] > results["image"][0], results
    if not SMOKE:
        for dropped, (predicted, accuracy) in results.items():
            assert accuracy <= predicted + 0.03, (dropped, predicted, accuracy)  # nobody beats the story
            assert accuracy > predicted - 0.1, (dropped, predicted, accuracy)  # and the recipe gets close to it
        assert results["audio"][1] > results["image"][1], results
    return "; ".join(lines)


def exercise_2():
    """Width and dropout of the fusion: parameters follow (D + 1) h + (h + 1) 8, accuracy barely moves."""
    results = {}
    for hidden_dim, dropout in ((16, 0.5), (128, 0.0)):
        run = train(MODALITIES, watch_validation=True, hidden_dim=hidden_dim, dropout=dropout)
        gap = run.history["accuracy"][-1] - run.history["val_accuracy"][-1]
        results[hidden_dim] = (run.model.count_params(), run.report["accuracy"], gap)
    feature_size = 64 + 64 + 32 + 32  # D: text, image, audio and video features
    per_unit = feature_size + 1 + 8  # one fusion unit: D weights + a bias; and one weight per class in the head
    assert results[128][0] - results[16][0] == per_unit * (128 - 16), results
    lines = [f"hidden_dim={h}: {p:,} params, test acc {a:.3f}, train-val gap {g:+.3f}" for h, (p, a, g) in
             results.items()]
    return f"each hidden unit adds {per_unit} parameters; " + "; ".join(lines)


def exercise_3():
    """Blind the camera: zero images change the prediction; how much accuracy does it cost?"""
    run = train(MODALITIES)
    model, accuracy = run.model, run.report["accuracy"]
    test = splits()["test"]
    fine = ~(test.meta["image_failed"] | test.meta["video_failed"] | test.meta["audio_failed"]
             | test.meta["text_omitted_color"] | test.meta["text_omitted_direction"] | test.meta["text_misleading"])
    sample = test.select(np.flatnonzero(fine)[:1])
    x = dict(sample.features)  # {modality: NumPy array}, raw: predict runs the model's preprocessor first
    before = keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(x, verbose=0)))[0]  # logits -> probabilities
    x["image"] = np.zeros_like(x["image"])
    after = keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(x, verbose=0)))[0]
    assert not np.allclose(before, after), "zeroing the image must change the probabilities"
    blind = MultimodalData(test.features | {"image": np.zeros_like(test.features["image"])}, test.labels, test.meta,
                           test.schema)
    blind_accuracy = float(np.mean(predict_classes(model, blind) == test.labels["label"]))
    if not SMOKE:
        assert blind_accuracy < accuracy, (blind_accuracy, accuracy)
    true_class = sample.labels["label"][0]
    return (f"one sample: P(true class) {before[true_class]:.3f} -> {after[true_class]:.3f} with a zero image "
            f"(predicted {CLASS_NAMES[before.argmax()]!r} -> {CLASS_NAMES[after.argmax()]!r}); "
            f"whole test split: {accuracy:.3f} -> {blind_accuracy:.3f}")


if __name__ == "__main__":
    for number, exercise in enumerate((exercise_1, exercise_2, exercise_3), start=1):
        print(f"exercise {number}: {exercise()}")
