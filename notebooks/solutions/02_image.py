"""Solutions to the exercises of notebook 02_image (the CNN image encoder and transfer learning).

    python notebooks/solutions/02_image.py                    # full size
    MMKERAS_SMOKE=1 python notebooks/solutions/02_image.py    # a few seconds of work
"""

from __future__ import annotations

import os
import tempfile

import keras
import keras_hub
import numpy as np
from keras import layers, ops

import mmkeras

SMOKE = mmkeras.config.is_smoke()
SIZES = (128, 32, 256) if SMOKE else (2000, 500, 1000)
EPOCHS = 2 if SMOKE else 8


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
    model = mmkeras.build_fusion_classifier({"image": mmkeras.encoders.build_image_encoder()}, aux_heads=heads)
    mmkeras.fit_classifier(model, splits["train"], splits["val"], epochs=EPOCHS, label_keys=["label", *heads])
    test = splits["test"]
    outputs = model.predict({"image": test.features["image"]}, verbose=0)  # {head: (n, classes)}
    accuracy = {name: float(np.mean(outputs[name].argmax(-1) == test.labels[name])) for name in ["label", *heads]}
    assert set(outputs) == {"label", *heads}, sorted(outputs)
    # The image carries no direction: whatever the training, the head cannot beat a coin flip by much.
    assert accuracy["direction"] < 0.62, accuracy
    if not SMOKE:
        assert accuracy["color"] > 0.8 and accuracy["shape"] > 0.6, accuracy
    return ", ".join(f"{k} {v:.3f}" for k, v in accuracy.items())


def make_tiny_resnet_preset(folder: str) -> str:
    """Saves a tiny, randomly initialised ResNet and its image converter as a keras-hub preset folder."""
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3],
        stackwise_num_filters=[64, 16], stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2],
        block_type="basic_block", use_pre_activation=False, image_shape=(None, None, 3),
    )
    backbone.save_to_preset(folder)
    keras_hub.layers.ResNetImageConverter(image_size=(32, 32), scale=1 / 255.0).save_to_preset(folder)
    return folder


def count(weights) -> int:
    return sum(int(np.prod(w.shape)) for w in weights)


def exercise_3():
    """Fine-tune vs freeze: only the fine-tuned backbone has trainable weights, and only its weights move."""
    splits = mmkeras.load_splits(*SIZES)
    folder = make_tiny_resnet_preset(os.path.join(tempfile.mkdtemp(), "tiny_resnet"))
    summary = {}
    for name, trainable in (("frozen", False), ("fine-tuned", True)):
        mmkeras.seed_everything(0)
        encoder = mmkeras.encoders.build_pretrained_image_encoder(folder, trainable=trainable)
        model = mmkeras.build_fusion_classifier({"image": encoder})
        before = [ops.convert_to_numpy(w).copy() for w in encoder.trainable_weights + encoder.non_trainable_weights]
        mmkeras.fit_classifier(model, splits["train"], splits["val"], epochs=EPOCHS)
        after = [ops.convert_to_numpy(w) for w in encoder.trainable_weights + encoder.non_trainable_weights]
        changed = any(not np.array_equal(a, b) for a, b in zip(before, after))
        accuracy = mmkeras.evaluate_classifier(model, splits["test"])["accuracy"]
        summary[name] = (count(encoder.trainable_weights), changed, accuracy)
    assert summary["frozen"][0] == 0 and not summary["frozen"][1], f"a frozen backbone stays as it is: {summary}"
    assert summary["fine-tuned"][0] > 0 and summary["fine-tuned"][1], f"fine-tuning updates the backbone: {summary}"
    return "; ".join(f"{k}: {n} trainable backbone params, weights changed {c}, accuracy {a:.3f}"
                     for k, (n, c, a) in summary.items())


if __name__ == "__main__":
    for number, exercise in enumerate((exercise_1, exercise_2, exercise_3), start=1):
        print(f"exercise {number}: {exercise()}")
