"""Solutions to the exercises of notebook 08 (multi-task loss).

Run: `python notebooks/solutions/08_multitask_loss.py` (add `MMKERAS_SMOKE=1` for a quick run; the full run
trains three text + audio models on the notebook's splits: a few minutes on 2 CPU cores). Pass exercise numbers
to run only some of them, e.g. `python notebooks/solutions/08_multitask_loss.py 1 3`.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

import mmkeras
from mmkeras.data import SCHEMA
from mmkeras.losses import UncertaintyWeighting, WeightHistory, binary_cross_entropy
from mmkeras.training import as_dataset, fit_classifier

SMOKE = mmkeras.config.is_smoke()
SIZES = mmkeras.config.by_mode(full=(2000, 100, 1000), smoke=(128, 32, 64))  # the notebook's sizes
EPOCHS = mmkeras.config.by_mode(full=8, smoke=1)
MODALITIES = ["text", "audio"]

_splits = None


def splits() -> dict:
    """The train / val / test splits, generated once."""
    global _splits
    if _splits is None:
        _splits = mmkeras.load_splits(*SIZES)
    return _splits


def exercise_1():
    """s* = log L. f(s) = exp(-s) L / 2 + s / 2, f'(s) = -exp(-s) L / 2 + 1 / 2 = 0  <=>  exp(-s) = 1 / L
    <=>  s = log L; f''(s) = exp(-s) L / 2 > 0, so it is the minimum, and the weight there is exp(-s*) / 2 = 1 / (2L).
    Checked on a grid and by letting Adam train an UncertaintyWeighting layer fed with constant losses."""
    losses = {"direction": 0.03, "color": 0.16, "shape": 0.69, "label": 2.0}
    grid = np.linspace(-6, 3, 90_001)  # step 1e-4
    for task, loss in losses.items():
        f = 0.5 * np.exp(-grid) * loss + 0.5 * grid
        s_grid = grid[np.argmin(f)]
        assert abs(s_grid - np.log(loss)) < 1e-3, (task, s_grid, np.log(loss))
        derivative = -0.5 * np.exp(-np.log(loss)) * loss + 0.5
        assert abs(derivative) < 1e-12

    layer = UncertaintyWeighting(list(losses))
    constants = {t: tf.constant(v) for t, v in losses.items()}
    optimizer = keras.optimizers.Adam(0.05)
    for _ in range(600):
        with tf.GradientTape() as tape:
            total = layer(constants)
        gradients = tape.gradient(total, layer.trainable_variables)
        optimizer.apply_gradients(zip(gradients, layer.trainable_variables))
    s_learned = keras.ops.convert_to_numpy(layer.log_variances)
    weights = layer.effective_weights()
    lines = []
    for (task, loss), s in zip(losses.items(), s_learned):
        assert abs(s - np.log(loss)) < 0.02, (task, s, np.log(loss))
        assert abs(weights[task] - 1 / (2 * loss)) / (1 / (2 * loss)) < 0.03
        lines.append(f"L = {loss:<5} s* = log L = {np.log(loss):+.3f}, learned s = {s:+.3f}, "
                     f"weight {weights[task]:.2f} (1/(2L) = {1 / (2 * loss):.2f})")
    return "\n".join(lines)


def train_uncertainty(heads):
    """A text + audio FusionClassifier with uncertainty weighting, trained with the notebook's recipe."""
    mmkeras.seed_everything(0)
    encoders = mmkeras.encoders.build_encoders(SCHEMA, MODALITIES)
    model = mmkeras.models.FusionClassifier(encoders, heads=heads, loss_weighting="uncertainty")
    history = WeightHistory()
    result = fit_classifier(model, splits()["train"], epochs=EPOCHS, callbacks=[history])
    test = splits()["test"]
    outputs = model.predict(as_dataset(model, test, 256, label_keys=()), verbose=0)
    accuracy = {h: float(np.mean(np.asarray(outputs[h]).argmax(-1) == test.labels[h])) for h in heads}
    losses = {h: result.history[f"{h}_loss"][-1] for h in heads}
    return history.history[-1], accuracy, losses


def exercise_2():
    """Add the hopeless shape head: it learns a small weight (its loss stays near ln 2), and the others
    barely change."""
    without = {"label": 8, "color": 2, "direction": 2}
    with_shape = without | {"shape": 2}
    lines = []
    results = {}
    for name, heads in (("without shape", without), ("with shape", with_shape)):
        weights, accuracy, losses = train_uncertainty(heads)
        results[name] = weights, accuracy, losses
        assert set(weights) == set(heads) and all(np.isfinite(w) and w > 0 for w in weights.values())
        lines.append(f"{name:<14} weights " + " ".join(f"{h} {weights[h]:.3f}" for h in heads)
                     + " | test acc " + " ".join(f"{h} {accuracy[h]:.3f}" for h in heads)
                     + " | final loss " + " ".join(f"{h} {losses[h]:.3f}" for h in heads))
    weights, accuracy, losses = results["with shape"]
    if not SMOKE:  # one epoch on 128 samples moves every s_i by only about 0.01: nothing to compare yet
        assert losses["shape"] > 0.6  # nothing tells the shape: its loss stays near ln 2
        assert weights["shape"] < weights["color"] and weights["shape"] < weights["direction"]
        assert abs(accuracy["shape"] - 0.5) < 0.06  # a coin flip
        for head in without:  # the other weights hardly move when the shape head is added
            assert abs(weights[head] - results["without shape"][0][head]) < 0.1
    return "\n".join(lines)


def exercise_3():
    """A direction head with one sigmoid unit, trained with the binary cross-entropy on its logit."""
    # FusionClassifier asks for >= 2 classes per head, so the model is built by hand, as in notebook 05.
    mmkeras.seed_everything(0)
    encoders = mmkeras.encoders.build_encoders(SCHEMA, MODALITIES)
    inputs = {m: keras.Input(shape=SCHEMA.modality(m).shape, dtype=SCHEMA.modality(m).dtype, name=m)
              for m in MODALITIES}
    fused = mmkeras.ConcatenationFusion(64, dropout=0.2, name="fusion")([encoders[m](x) for m, x in inputs.items()])
    outputs = {"label": keras.layers.Dense(8, name="label")(fused),  # 8 logits
               "direction": keras.layers.Dense(1, name="direction")(fused)}  # one logit: p(right) = sigmoid
    model = keras.Model(inputs, outputs, name="sigmoid_direction")
    model.compile(optimizer=keras.optimizers.Adam(5e-3),
                  loss={"label": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                        "direction": keras.losses.BinaryCrossentropy(from_logits=True)},
                  metrics={"label": ["accuracy"], "direction": [keras.metrics.BinaryAccuracy(threshold=0.0)]})
    fit_classifier(model, splits()["train"], epochs=EPOCHS, label_keys=("label", "direction"))  # constant step
    test = splits()["test"]
    predictions = model.predict(as_dataset(model, test, 256, label_keys=()), verbose=0)
    logit = np.asarray(predictions["direction"])[:, 0]  # (n,)
    y = test.labels["direction"]
    p = 1 / (1 + np.exp(-logit))  # sigmoid
    by_formula = float(binary_cross_entropy(y, p).mean())
    by_keras = float(keras.losses.BinaryCrossentropy(from_logits=True)(y.astype("float32")[:, None], logit[:, None]))
    assert abs(by_formula - by_keras) < 1e-3, (by_formula, by_keras)
    accuracy = float(np.mean((logit > 0).astype(int) == y))
    if not SMOKE:
        assert accuracy > 0.95  # the 2-class softmax head of the notebook reached 0.99
    seed_loss = float(np.mean(-y * np.log(np.clip(p, 1e-7, 1))))
    return (f"BCE by formula {by_formula:.4f}, Keras {by_keras:.4f}; seed's -y log p {seed_loss:.4f} (too small); "
            f"direction test accuracy with one sigmoid unit {accuracy:.3f}")


if __name__ == "__main__":
    import sys

    chosen = [int(a) for a in sys.argv[1:]] or [1, 2, 3]  # e.g. `python 08_multitask_loss.py 3`
    tf.get_logger().setLevel("ERROR")
    print(f"SMOKE = {SMOKE}")
    for number, exercise in enumerate((exercise_1, exercise_2, exercise_3), start=1):
        if number not in chosen:
            continue
        print(f"--- exercise {number}\n{exercise()}")
    print("all checks passed")
