"""Keras 3's own, backend-independent distribution API, `keras.distribution`, shown on JAX.

`DeviceMesh(shape, axis_names, devices)` names a grid of devices, `DataParallel(devices=...)` replicates the
variables and splits each batch along the mesh's `"batch"` axis, and `ModelParallel(layout_map=...)` also
shards variables. `keras.distribution.set_distribution(DataParallel(...))` before building the model is the
whole change; `model.fit` is untouched. `run_jax_data_parallel` shows it on two host CPU devices
(`XLA_FLAGS=--xla_force_host_platform_device_count=2`) in a subprocess with `KERAS_BACKEND=jax`, running
`python -m mmkeras.distribute.jax_worker`.
"""

from __future__ import annotations

import json
import subprocess
import sys

from mmkeras._validation import check_int, check_number
from mmkeras.distribute.configuration import RunConfig
from mmkeras.distribute.launch import WorkerError, child_env

JAX_WORKER_MODULE = "mmkeras.distribute.jax_worker"


def run_jax_data_parallel(config: RunConfig | dict | None = None, num_devices: int = 2, timeout: float = 300) -> dict:
    """Trains the same classifier with `keras.distribution.DataParallel` on JAX over `num_devices` host CPUs.

    Runs `python -m mmkeras.distribute.jax_worker` in a subprocess with `KERAS_BACKEND=jax` and
    `XLA_FLAGS=--xla_force_host_platform_device_count=N` (XLA reads it at start-up, like TensorFlow's logical
    devices). JAX has no string tensors, so `config`'s modalities must not include `"text"`; the default here is
    `("image",)` (the quickest to compile with XLA on CPU).

    Returns:
        `backend`, `devices`, `variable_sharding` (how a kernel is laid out: replicated on the mesh),
        `history`, `train_seconds`, `test_accuracy`.

    Raises:
        WorkerError: when JAX is missing, the process fails or it times out.
    """
    if not isinstance(config, RunConfig):
        config = RunConfig.from_dict({"modalities": ("image",)} | dict(config or {}))
    if "text" in config.modalities:
        raise ValueError(f"JAX has no string tensors: `modalities` must not include 'text'. "
                         f"Received: modalities={list(config.modalities)}")
    num_devices = check_int("num_devices", num_devices)
    timeout = check_number("timeout", timeout, low=0, low_inclusive=False)
    flags = f"--xla_force_host_platform_device_count={num_devices}"
    env = child_env({"KERAS_BACKEND": "jax", "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"})
    try:
        done = subprocess.run([sys.executable, "-m", JAX_WORKER_MODULE, json.dumps(config.to_dict())],
                              capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise WorkerError(f"The JAX process did not finish within timeout={timeout} s and was stopped.") from error
    if done.returncode != 0:
        raise WorkerError(f"The JAX process exited with code {done.returncode}. Its last output:\n"
                          + "\n".join(done.stderr.splitlines()[-25:]))
    return json.loads(done.stdout.strip().splitlines()[-1])
