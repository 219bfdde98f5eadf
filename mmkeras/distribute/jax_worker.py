"""The JAX side of `run_jax_data_parallel`: `python -m mmkeras.distribute.jax_worker '<RunConfig as JSON>'`.

Run it with `KERAS_BACKEND=jax` and `XLA_FLAGS=--xla_force_host_platform_device_count=N` set (the launcher sets
both): it lays a one-axis `DeviceMesh` over the host's CPU devices, sets `DataParallel` as the distribution,
builds and trains the course's classifier with the course's recipe (`course_optimizer`), and prints one line of
JSON: the backend, the devices, how a kernel is laid out, the history, the time in `fit` and the test accuracy.
"""

from __future__ import annotations

import json
import sys
import time


def run(config: dict) -> dict:
    """Trains under `keras.distribution.DataParallel` over every CPU device; returns the JSON-ready results."""
    import keras

    from mmkeras.config import seed_everything
    from mmkeras.data import load_splits
    from mmkeras.models import build_fusion_classifier
    from mmkeras.optimizers import course_optimizer
    from mmkeras.training import evaluate_classifier

    devices = keras.distribution.list_devices("cpu")
    mesh = keras.distribution.DeviceMesh(shape=(len(devices),), axis_names=["batch"], devices=devices)
    keras.distribution.set_distribution(keras.distribution.DataParallel(device_mesh=mesh))
    seed_everything(config["seed"])
    splits = load_splits(config["train_size"], 8, config["test_size"], seed=config["seed"])
    modalities = config["modalities"]
    model = build_fusion_classifier(modalities)
    steps = config["train_size"] // config["global_batch_size"]  # full global batches per epoch
    model.compile(optimizer=course_optimizer(config["learning_rate"], total_steps=steps * config["epochs"],
                                             name=config["optimizer"]))
    train = splits["train"]
    n = steps * config["global_batch_size"]
    x = {m: train.features[m][:n] for m in modalities}
    start = time.perf_counter()
    history = model.fit(x, train.labels["label"][:n], batch_size=config["global_batch_size"],
                        epochs=config["epochs"], verbose=0, shuffle=True)
    seconds = time.perf_counter() - start
    kernel = model.trainable_variables[0].value
    return {
        "backend": keras.backend.backend(),
        "devices": [str(d) for d in devices],
        "variable_sharding": str(kernel.sharding),
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "train_seconds": seconds,
        "test_accuracy": float(evaluate_classifier(model, splits["test"])["accuracy"]),
    }


def main(argv=None) -> int:
    """Reads the `RunConfig` dict from the command line, trains, prints the results as one JSON line."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m mmkeras.distribute.jax_worker '<RunConfig as JSON>'", file=sys.stderr)
        return 2
    print(json.dumps(run(json.loads(argv[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
