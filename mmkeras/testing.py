"""Checks that every mmkeras layer and model must pass, in the spirit of keras-hub's `run_layer_test`.

The tests call these on each encoder, fusion layer and classifier:

* `check_shapes`: the symbolic (functional) and the eager call agree on the output shape, batch size 1 included;
* `check_config_round_trip`: `from_config(get_config())` rebuilds an equivalent object;
* `check_save_load`: a `.keras` file written by `model.save` loads back *without* `custom_objects` and gives
  the same outputs;
* `check_gradients`: every trainable weight receives a non-zero gradient;
* `check_loss_decreases`: a few optimizer steps on one small batch lower the loss.

They use TensorFlow's `GradientTape` (this course runs Keras 3 on the TensorFlow backend).
"""

from __future__ import annotations

import copy
import pathlib
import tempfile

import keras
import numpy as np
import tensorflow as tf


def _first(outputs):
    return next(iter(outputs.values())) if isinstance(outputs, dict) else outputs


def _as_numpy(outputs):
    if isinstance(outputs, dict):
        return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}
    return keras.ops.convert_to_numpy(outputs)


def _slice_batch(inputs, size):
    if isinstance(inputs, dict):
        return {k: v[:size] for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return [v[:size] for v in inputs]
    return inputs[:size]


def _symbolic_like(inputs):
    """`keras.Input`s with the shapes (batch `None`) and dtypes of concrete inputs."""
    def one(x):
        x = tf.convert_to_tensor(x)
        return keras.Input(shape=tuple(x.shape[1:]), dtype=x.dtype.name)
    if isinstance(inputs, dict):
        return {k: one(v) for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return [one(v) for v in inputs]
    return one(inputs)


def check_shapes(model, inputs, expected_shape) -> None:
    """Calling `model` on symbolic `keras.Input`s (batch `None`) and eagerly on `inputs` (and on a batch of one)
    gives `expected_shape` (batch first)."""
    expected_shape = tuple(expected_shape)
    symbolic = _first(model(_symbolic_like(inputs))).shape
    assert tuple(symbolic[1:]) == expected_shape[1:], f"symbolic shape {symbolic} != {expected_shape}"
    eager = _first(model(inputs, training=False))
    assert tuple(eager.shape) == expected_shape, f"eager shape {tuple(eager.shape)} != {expected_shape}"
    one = _first(model(_slice_batch(inputs, 1), training=False))
    assert tuple(one.shape) == (1,) + expected_shape[1:], f"batch-of-one shape {tuple(one.shape)}"


def check_config_round_trip(obj) -> None:
    """`type(obj).from_config(obj.get_config())` gives an object with the same config."""
    config = obj.get_config()
    clone = type(obj).from_config(copy.deepcopy(config))  # from_config may consume the dict it is given
    assert clone.get_config() == config, "get_config() of the clone differs"


def check_save_load(model: keras.Model, inputs, directory=None, atol: float = 1e-5) -> keras.Model:
    """Saves `model` to a `.keras` file, loads it with no `custom_objects`, and compares outputs."""
    directory = pathlib.Path(directory or tempfile.mkdtemp())
    path = directory / f"{model.name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    expected, received = _as_numpy(model(inputs, training=False)), _as_numpy(loaded(inputs, training=False))
    if isinstance(expected, dict):
        for key in expected:
            np.testing.assert_allclose(received[key], expected[key], atol=atol, err_msg=f"output {key!r}")
    else:
        np.testing.assert_allclose(received, expected, atol=atol)
    return loaded


def check_gradients(model: keras.Model, inputs, seed: int = 0) -> None:
    """Every trainable weight receives a non-zero gradient of a random projection of the outputs."""
    rng = np.random.default_rng(seed)
    with tf.GradientTape() as tape:
        outputs = model(inputs, training=True)
        flat = outputs.values() if isinstance(outputs, dict) else [outputs]
        loss = sum(tf.reduce_sum(o * rng.normal(size=o.shape).astype("float32")) for o in flat)
    weights = model.trainable_weights
    assert weights, f"{model.name} has no trainable weights"
    grads = tape.gradient(loss, weights)
    missing = [w.path for w, g in zip(weights, grads)
               if g is None or not np.any(keras.ops.convert_to_numpy(tf.convert_to_tensor(g)))]
    assert not missing, f"weights without gradient: {missing}"


def check_loss_decreases(model: keras.Model, inputs, targets, steps: int = 8, learning_rate: float = 1e-2) -> tuple:
    """Trains on one batch for `steps` steps; the loss after must be below the loss before.

    Returns `(loss_before, loss_after)`.
    """
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy")
    before = float(model.evaluate(inputs, targets, verbose=0))
    for _ in range(steps):
        model.train_on_batch(inputs, targets)
    after = float(model.evaluate(inputs, targets, verbose=0))
    assert after < before, f"loss did not decrease: {before:.4f} -> {after:.4f}"
    return before, after


def execute_notebook(path, smoke: bool = True, timeout: int = 600, write: bool = False):
    """Runs a notebook top to bottom on a fresh kernel, as a learner would, and returns it.

    Args:
        path: str or Path. The `.ipynb` file; it runs with its own folder as the working directory.
        smoke: bool. Set `MMKERAS_SMOKE=1` (tiny data, one epoch) for the kernel. Defaults to `True`.
        timeout: int. Seconds one cell may take. Defaults to `600`.
        write: bool. Save the executed notebook (with its outputs) back to `path`. Defaults to `False`.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised; the message shows the cell and the traceback.
    """
    import os
    import sys

    import nbclient
    import nbformat

    path = pathlib.Path(path)
    notebook = nbformat.read(path, as_version=4)
    saved = {k: os.environ.get(k) for k in ("MMKERAS_SMOKE", "PATH", "TF_CPP_MIN_LOG_LEVEL", "MPLBACKEND")}
    # The kernel is started as `python -m ipykernel_launcher`: put this interpreter first on PATH so that it
    # runs in the same environment as the caller, not whatever `python` the machine has.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    os.environ["MMKERAS_SMOKE"] = "1" if smoke else "0"
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ.pop("MPLBACKEND", None)
    try:
        client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                         resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if write:
        nbformat.write(notebook, path)
    return notebook
