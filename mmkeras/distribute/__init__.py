"""Scaling out (横向扩展) with `tf.distribute`: the same training code on one device, on two mirrored devices
and on two worker processes; and Keras 3's own `keras.distribution` on JAX.

Synchronous data parallelism (数据并行): every replica holds a copy of the model, takes its own slice of the
global batch `B = b * R` (`b` per replica, `R` replicas), and the replicas' gradients are all-reduced before one
identical update, so a run with the same `B` takes the same steps as one device, up to float rounding.

Three configurations, one training function (`train_configuration`): `"single"` (no strategy), `"mirrored"`
(`MirroredStrategy` over two logical CPUs of one fresh process, `run_in_subprocess`) and `"multi_worker"`
(`MultiWorkerMirroredStrategy`, one process per worker on 127.0.0.1, `run_multi_worker`). One job per file:

    batching.py           B = b * R, b = B / R, steps per epoch, learning-rate scaling rules
    strategies.py         make_strategy, configure_logical_cpus; the `reduce` Keras 3 needs (keras#20585)
    data.py               make_dataset_fn: the same global batches for every set-up, one share per worker
    configuration.py      RunConfig and train_configuration: the run every set-up repeats
    launch.py             run_in_subprocess, run_multi_worker: processes, ports, TF_CONFIG, timeouts
    worker.py             the process they start (`python -m mmkeras.distribute`), with its watchdog
    compare.py            compare_strategies, format_strategies
    jax_data_parallel.py  run_jax_data_parallel: keras.distribution.DataParallel on two host CPUs
    jax_worker.py         the JAX process it starts (`python -m mmkeras.distribute.jax_worker`)

`import mmkeras.distribute` does not start TensorFlow: it is imported when a strategy or a dataset is built.

Example:
>>> global_batch_size(per_replica_batch_size=32, num_replicas=2)
64
>>> scaled_learning_rate(1e-3, num_replicas=4, rule="linear")
0.004
"""

from __future__ import annotations

from mmkeras.distribute.batching import (
    RULES,
    global_batch_size,
    per_replica_batch_size,
    scaled_learning_rate,
    steps_per_epoch,
)
from mmkeras.distribute.compare import compare_strategies, format_strategies
from mmkeras.distribute.configuration import (
    DEFAULT_MODALITIES,
    OPTIMIZERS,
    RunConfig,
    build_model,
    train_configuration,
    weights_checksum,
)
from mmkeras.distribute.data import auto_shard_options, distribute_input, make_dataset_fn
from mmkeras.distribute.jax_data_parallel import run_jax_data_parallel
from mmkeras.distribute.launch import (
    WorkerError,
    child_env,
    free_ports,
    run_in_subprocess,
    run_multi_worker,
    tf_config,
)
from mmkeras.distribute.strategies import STRATEGIES, configure_logical_cpus, make_strategy
from mmkeras.distribute.worker import main, start_watchdog

__all__ = [
    "DEFAULT_MODALITIES", "OPTIMIZERS", "RULES", "STRATEGIES", "RunConfig", "WorkerError", "auto_shard_options",
    "build_model", "child_env", "compare_strategies", "configure_logical_cpus", "distribute_input",
    "format_strategies", "free_ports", "global_batch_size", "main", "make_dataset_fn", "make_strategy",
    "per_replica_batch_size", "run_in_subprocess", "run_jax_data_parallel", "run_multi_worker",
    "scaled_learning_rate", "start_watchdog", "steps_per_epoch", "tf_config", "train_configuration",
    "weights_checksum",
]
