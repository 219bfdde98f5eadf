"""Solutions to the exercises of notebook 05 (concatenation fusion).

Run: `python notebooks/solutions/05_concatenation_fusion.py` (add `MMKERAS_SMOKE=1` for a quick run; the full
run trains four models on the notebook's splits: about 3 minutes on 2 CPU cores).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

import mmkeras
from mmkeras.data import CLASS_NAMES, MODALITIES, MultimodalData, story_ceiling
from mmkeras.training import predict_classes

tf.get_logger().setLevel("ERROR")  # hide TensorFlow's notes about re-tracing when several models train
SMOKE = mmkeras.config.is_smoke()
SIZES = (128, 32, 64) if SMOKE else (3000, 500, 1000)  # the notebook's sizes
EPOCHS = 1 if SMOKE else 8

_splits = None


def splits() -> dict:
    """The train / val / test splits, generated once."""
    global _splits
    if _splits is None:
        _splits = mmkeras.load_splits(*SIZES)
    return _splits


def train(modalities, watch_validation=False, **kwargs):
    """The notebook's recipe: same seed, `fit_classifier`, test accuracy."""
    mmkeras.seed_everything(0)
    model = mmkeras.build_fusion_classifier(list(modalities), **kwargs)
    val = splits()["val"] if watch_validation else None  # only watched: it does not change the training
    trained = mmkeras.fit_classifier(model, splits()["train"], val, epochs=EPOCHS)
    accuracy = mmkeras.evaluate_classifier(model, splits()["test"])["accuracy"]
    return model, trained, accuracy


def exercise_1():
    """Drop one modality: predict the accuracy from the story, then train and compare."""
    meta = splits()["test"].meta
    predicted = {dropped: story_ceiling([m for m in MODALITIES if m != dropped], meta)
                 for dropped in ("audio", "image")}
    # Without audio every attribute keeps a witness (direction: video and text); without the image the shape
    # relies on the video alone and the color on the caption alone, so more samples lose an attribute.
    assert predicted["audio"] > predicted["image"], predicted
    kept = [m for m in MODALITIES if m != "audio"]
    _, _, accuracy = train(kept)
    assert 0.0 <= accuracy <= 1.0
    if not SMOKE:
        assert abs(accuracy - predicted["audio"]) < 0.1, (accuracy, predicted)
    return (f"story ceiling without audio {predicted['audio']:.3f}, without image {predicted['image']:.3f}; "
            f"trained without audio: test accuracy {accuracy:.3f}")


def exercise_2():
    """Width and dropout of the fusion: parameters follow (D + 1) h + (h + 1) 8, accuracy barely moves."""
    results = {}
    for hidden_dim, dropout in ((16, 0.5), (128, 0.0)):
        model, trained, accuracy = train(MODALITIES, watch_validation=True, hidden_dim=hidden_dim, dropout=dropout)
        gap = trained.history["accuracy"][-1] - trained.history["val_accuracy"][-1]
        results[hidden_dim] = (model.count_params(), accuracy, gap)
    feature_size = 64 + 64 + 32 + 32  # D: text, image, audio and video features
    per_unit = feature_size + 1 + 8  # one fusion unit: D weights + a bias; and one weight per class in the head
    assert results[128][0] - results[16][0] == per_unit * (128 - 16), results
    lines = [f"hidden_dim={h}: {p:,} params, test acc {a:.3f}, train-val gap {g:+.3f}" for h, (p, a, g) in
             results.items()]
    return f"each hidden unit adds {per_unit} parameters; " + "; ".join(lines)


def as_inputs(data, image=None) -> dict:
    """Model inputs as tensors, optionally with the images replaced."""
    features = dict(data.features) | ({"image": image} if image is not None else {})
    return {m: tf.constant(features[m].astype(str) if m == "text" else features[m]) for m in MODALITIES}


def exercise_3():
    """Blind the camera: zero images change the prediction; how much accuracy does it cost?"""
    model, _, accuracy = train(MODALITIES)
    test = splits()["test"]
    fine = ~(test.meta["image_failed"] | test.meta["video_failed"] | test.meta["audio_failed"]
             | test.meta["text_omitted_color"] | test.meta["text_omitted_direction"] | test.meta["text_misleading"])
    sample = test.select(np.flatnonzero(fine)[:1])
    before = np.asarray(model(as_inputs(sample)))[0]
    after = np.asarray(model(as_inputs(sample, image=np.zeros_like(sample.features["image"]))))[0]
    assert not np.allclose(before, after), "zeroing the image must change the probabilities"
    blind = MultimodalData(test.features | {"image": np.zeros_like(test.features["image"])}, test.labels, test.meta)
    blind_accuracy = (predict_classes(model, blind).argmax(-1) == test.labels["label"]).mean()
    if not SMOKE:
        assert blind_accuracy < accuracy, (blind_accuracy, accuracy)
    true_class = sample.labels["label"][0]
    return (f"one sample: P(true class) {before[true_class]:.3f} -> {after[true_class]:.3f} with a zero image "
            f"(predicted {CLASS_NAMES[before.argmax()]!r} -> {CLASS_NAMES[after.argmax()]!r}); "
            f"whole test split: {accuracy:.3f} -> {blind_accuracy:.3f}")


if __name__ == "__main__":
    for number, exercise in enumerate((exercise_1, exercise_2, exercise_3), start=1):
        print(f"exercise {number}: {exercise()}")
