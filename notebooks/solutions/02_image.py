"""Solutions to the exercises of notebook 02_image (the CNN image encoder and transfer learning).

    python notebooks/solutions/02_image.py                    # full size
    MMKERAS_SMOKE=1 python notebooks/solutions/02_image.py    # a few seconds of work
"""

from __future__ import annotations

import os
import tempfile

import keras
import numpy as np
from keras import layers, ops

import mmkeras

SMOKE = mmkeras.config.is_smoke()
SIZES = mmkeras.config.by_mode(full=(2000, 500, 1000), smoke=(128, 32, 256))
EPOCHS = mmkeras.config.by_mode(full=20, smoke=2)  # the CNN from scratch needs about 20 epochs (notebook 02)
HEAD_EPOCHS = mmkeras.config.by_mode(full=8, smoke=1)


def redness(images) -> np.ndarray:
    """Mean of R - B over the clearly colored pixels of each image `(n, h, w, 3)`: > 0 red toy, < 0 blue toy."""
    images = np.asarray(images)
    difference = images[..., 0] - images[..., 2]  # (n, h, w)
    colored = np.abs(difference) > 0.3  # the toy's pixels; the gray background has R close to B
    return np.array([d[c].mean() if c.any() else 0.0 for d, c in zip(difference, colored)])  # (n,)


def exercise_1():
    """Label-preserving augmentation: translation/zoom/flip keep a red toy red, a channel swap makes it blue."""
    data = mmkeras.make_synthetic(64, seed=7)
    red = (data.labels["color"] == 0) & ~data.meta["image_failed"]
    images = data.features["image"][red]  # (n_red, 32, 32, 3)
    keras.utils.set_random_seed(0)
    augment = keras.Sequential([
        layers.RandomTranslation(0.1, 0.1, fill_mode="nearest"),
        layers.RandomZoom(0.1, fill_mode="nearest"),
    ])
    shifted = ops.convert_to_numpy(augment(images, training=True))
    flipped = ops.convert_to_numpy(layers.RandomFlip("horizontal")(images, training=True))  # some flipped
    swapped = images[..., ::-1]  # RGB -> BGR: a "color augmentation" that exchanges red and blue
    assert np.allclose(ops.convert_to_numpy(augment(images, training=False)), images), "no-op at inference"
    assert not np.allclose(shifted, images), "training mode changes the pixels"
    assert (redness(images) > 0).all(), "the selected toys are red"
    assert (redness(shifted) > 0).all(), "translation and zoom keep the color (the label)"
    assert np.allclose(redness(flipped), redness(images)), "a horizontal flip keeps color (and shape)"
    assert (redness(swapped) < 0).all(), "swapping channels turns every red toy blue: a wrong label"
    return (f"{len(images)} red toys: redness {redness(images).mean():.2f}, after translation/zoom "
            f"{redness(shifted).mean():.2f}, after a channel swap {redness(swapped).mean():.2f}")


def exercise_2():
    """Auxiliary heads: shape and color are learned from the image, direction stays at chance."""
    splits = mmkeras.load_splits(*SIZES)
    heads = {"shape": 2, "color": 2, "direction": 2}
    mmkeras.seed_everything(0)
    model = mmkeras.build_fusion_classifier({"image": mmkeras.encoders.build_image_encoder()}, num_classes=8,
                                            aux_heads=heads)
    mmkeras.fit_classifier(model, splits["train"], splits["val"], epochs=EPOCHS, label_keys=["label", *heads])
    test = splits["test"]
    assert set(model.output) == {"label", *heads}, sorted(model.output)
    accuracy = {name: float(np.mean(mmkeras.predict_classes(model, test, head=name) == test.labels[name]))
                for name in ["label", *heads]}
    # The image carries no direction: whatever the training, the head cannot beat a coin flip by much.
    assert accuracy["direction"] < 0.62, accuracy
    if not SMOKE:
        assert accuracy["color"] > 0.8 and accuracy["shape"] > 0.6, accuracy
    return ", ".join(f"{k} {v:.3f}" for k, v in accuracy.items()) + " (the direction head stays at chance)"


def count(weights) -> int:
    return sum(int(np.prod(w.shape)) for w in weights)


def is_batch_norm_statistic(weight) -> bool:
    return "moving_mean" in weight.path or "moving_variance" in weight.path


def exercise_3():
    """Fine-tune vs freeze: only the fine-tuned backbone has trainable weights, and only its weights move.

    In both cases the BatchNormalization moving averages stay as they were: the backbone runs inside
    `InferenceMode`, so `fit`'s `training=True` never reaches it.
    """
    splits = mmkeras.load_splits(*SIZES)
    folder = os.path.join(tempfile.mkdtemp(), "tiny_resnet")
    mmkeras.testing.save_tiny_preset("resnet", folder)
    summary = {}
    for name, trainable in (("frozen", False), ("fine-tuned", True)):
        mmkeras.seed_everything(0)
        encoder = mmkeras.encoders.build_pretrained_image_encoder(folder, trainable=trainable)
        model = mmkeras.build_fusion_classifier({"image": encoder}, num_classes=8)
        before = {w.path: ops.convert_to_numpy(w).copy() for w in encoder.weights}
        mmkeras.fit_classifier(model, splits["train"], splits["val"], epochs=HEAD_EPOCHS)
        moved = {w.path for w in encoder.weights if not np.array_equal(before[w.path], ops.convert_to_numpy(w))}
        statistics = [w.path for w in encoder.weights if is_batch_norm_statistic(w)]
        assert statistics, "the tiny ResNet has BatchNormalization layers"
        accuracy = mmkeras.evaluate_classifier(model, splits["test"])["accuracy"]
        summary[name] = (count(encoder.trainable_weights), len(moved), moved & set(statistics), accuracy)
    frozen, tuned = summary["frozen"], summary["fine-tuned"]
    assert frozen[0] == 0 and frozen[1] == 0, f"a frozen backbone stays as it is: {summary}"
    assert tuned[0] > 0 and tuned[1] > 0, f"fine-tuning updates the backbone: {summary}"
    assert not frozen[2] and not tuned[2], f"InferenceMode keeps the BatchNormalization statistics: {summary}"
    return "; ".join(f"{k}: {n} trainable backbone params, {m} weight arrays changed, BatchNormalization "
                     f"statistics changed: {len(bn)}, accuracy {a:.3f}" for k, (n, m, bn, a) in summary.items())


if __name__ == "__main__":
    for number, exercise in enumerate((exercise_1, exercise_2, exercise_3), start=1):
        print(f"exercise {number}: {exercise()}")
