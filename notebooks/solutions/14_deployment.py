"""Solutions to the exercises of notebook 14 (deploying a multimodal model).

Run: `python notebooks/solutions/14_deployment.py` (add `MMKERAS_SMOKE=1` for a quick run, under a minute; the
full run trains on 4,000 AV-MNIST pairs like the notebook: a few minutes on 2 CPU cores). Offline, AV-MNIST is
the course's stand-in (`prepare_avmnist(fallback="fixture")` says so), so accuracies say nothing about the real
benchmark.
"""

from __future__ import annotations

import json
import pathlib
import tempfile
import warnings

import keras
import numpy as np
import tensorflow as tf  # event files, TFLite

import mmkeras
from mmkeras import export
from mmkeras.data.avmnist import AVMNIST_SCHEMA, load_avmnist, prepare_avmnist
from mmkeras.models import build_fusion_classifier
from mmkeras.training import fit_classifier

tf.get_logger().setLevel("ERROR")
STAND_IN = mmkeras.config.by_mode(full=(12000, 2000), smoke=(240, 60))  # the notebook's sizes
TRAIN, VAL, TEST = mmkeras.config.by_mode(full=(4000, 500, 500), smoke=(160, 20, 40))
EPOCHS = mmkeras.config.by_mode(full=8, smoke=1)
REPEATS = mmkeras.config.by_mode(full=50, smoke=3)


def exercise_1_histograms(train, val, log_dir: pathlib.Path):
    """TensorBoard(histogram_freq=1) adds one histogram tag per weight; each value is (buckets, 3)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    keras.utils.set_random_seed(0)
    model = build_fusion_classifier(train, preprocessor=None)  # as in the notebook: the log-mel inside
    fit_classifier(model, train, val, epochs=max(2, EPOCHS), batch_size=64,
                   callbacks=[keras.callbacks.TensorBoard(log_dir=str(log_dir), histogram_freq=1)])
    events = EventAccumulator(str(log_dir / "train"), size_guidance={"tensors": 0})
    events.Reload()
    tags = events.Tags()["tensors"]
    histograms = [t for t in tags if not t.startswith("epoch_")]
    print(f"1. {len(tags)} tensor tags; {len(histograms)} are weight histograms, e.g. {histograms[:3]}")
    assert len(histograms) == len(model.weights), (histograms, [w.path for w in model.weights])  # one per weight
    kernel_tag = next(t for t in histograms if t.startswith("fusion/") and "kernel" in t)  # the fusion projection
    for point in events.Tensors(kernel_tag):
        buckets = tf.make_ndarray(point.tensor_proto)  # (buckets, 3): left edge, right edge, count
        centres, counts = buckets[:, :2].mean(1), buckets[:, 2]
        mean = float((centres * counts).sum() / counts.sum())
        spread = float(np.sqrt((counts * (centres - mean) ** 2).sum() / counts.sum()))
        print(f"   {kernel_tag} epoch {point.step}: range [{buckets[0, 0]:.3f}, {buckets[-1, 1]:.3f}], "
              f"std ~ {spread:.4f}")
    return model


def exercise_2_per_tensor(model):
    """One scale for the whole matrix: the error bound s/2 grows to the largest channel's."""
    dense = max((layer for layer in export.all_layers(model) if isinstance(layer, keras.layers.Dense)),
                key=lambda layer: int(np.prod(layer.kernel.shape)))
    w = keras.ops.convert_to_numpy(dense.kernel)
    errors = {}
    for name, scale in (("per-channel", np.abs(w).max(axis=0) / 127), ("per-tensor", np.abs(w).max() / 127)):
        errors[name] = float(np.abs(w - scale * np.round(w / scale)).max())
    print(f"2. {dense.path}: largest rounding error per-channel {errors['per-channel']:.6f}, "
          f"per-tensor {errors['per-tensor']:.6f}")
    assert errors["per-channel"] <= errors["per-tensor"] + 1e-12
    return errors


def exercise_3_batch_latency(paths, test):
    """onnxruntime batches (dynamic batch axis); the TFLite files were converted with batch size 1."""
    runner = export.ONNXRunner(paths["onnx"])
    for n in (1, 8, min(64, len(test))):
        batch = {k: np.asarray(v)[:n] for k, v in test.features.items()}
        timing = export.latency_ms(runner, batch, repeats=REPEATS, warmup=2)
        print(f"3. ONNX, batch {n:>2}: p50 {timing['p50']:.2f} ms per call, {timing['p50'] / n:.3f} ms per example")
    print("   TFLite: the GRU's loop needs a static batch of 1 to become builtin ops (export_tflite's docstring);"
          " TFLiteRunner loops over the examples.")


def exercise_4_prune_and_fine_tune(model, train, test, sparsity=0.75):
    y = np.asarray(test.labels["digit"])

    def accuracy(m):
        return float((export.keras_logits(m, test.features)["digit"].argmax(-1) == y).mean())

    pruned = export.copy_model(model)
    export.prune_weights(pruned, sparsity)
    before = accuracy(pruned)
    fit_classifier(pruned, train, epochs=1, batch_size=64, learning_rate=5e-4)
    export.prune_weights(pruned, sparsity)  # fine-tuning moved the zeros: prune again
    after = accuracy(pruned)
    print(f"4. original {accuracy(model):.3f}; pruned to {sparsity:.0%}: {before:.3f}; "
          f"fine-tuned one epoch and pruned again: {after:.3f}")
    return before, after


def exercise_5_batch_request(model_dir):
    from fastapi.testclient import TestClient

    from mmkeras.serving import create_app

    with TestClient(create_app(model_dir)) as client:
        examples = [client.get(f"/examples/{i}").json()["inputs"] for i in range(3)]
        batch = {name: [e[name] for e in examples] for name in examples[0]}
        answer = client.post("/predict", json={"inputs": batch})
        print(f"5. batch of 3 -> {answer.status_code}: {[p['label'] for p in answer.json()['predictions']]}")
        assert len(answer.json()["predictions"]) == 3
        too_many = {name: [values[0]] * 65 for name, values in batch.items()}
        answer = client.post("/predict", content=json.dumps({"inputs": too_many}).encode(),
                             headers={"Content-Type": "application/json"})
        print(f"   batch of 65 -> {answer.status_code}: {answer.json()['detail']}")
        assert answer.status_code in (413, 422)


def main():
    mmkeras.seed_everything(0)
    work = pathlib.Path(tempfile.mkdtemp(prefix="mmkeras-14-solutions-"))
    cache = prepare_avmnist(fallback="fixture", fixture_images=STAND_IN, timeout=10, retries=0, progress=False)
    splits = load_avmnist(cache, TRAIN, VAL, TEST, degrade=True)
    train, val, test = splits["train"], splits["val"], splits["test"]
    model = exercise_1_histograms(train, val, work / "logs")
    exercise_2_per_tensor(model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = export.export_all(model, work / "export", schema=AVMNIST_SCHEMA, examples=test,
                                  formats=("saved_model", "onnx"))
    exercise_3_batch_latency(paths, test)
    exercise_4_prune_and_fine_tune(model, train, test)
    exercise_5_batch_request(paths["saved_model"])


if __name__ == "__main__":
    main()
