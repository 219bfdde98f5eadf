"""Scaling out (横向扩展) with `tf.distribute`: the same training code on one device, on two mirrored devices
and on two worker processes.

Synchronous data parallelism (数据并行): every replica (副本) holds a copy of the model, takes its own slice of
the global batch, computes gradients, and the gradients are summed across replicas (an all-reduce, 全归约)
before one identical update is applied everywhere. With `R` replicas and a per-replica batch `b`,

    B = b * R                     (global batch size: the samples behind one optimizer step)
    g = (1 / B) sum_{i=1..B} grad l_i = (1 / R) sum_{r=1..R} g_r      (g_r: the mean gradient of replica r)

so a run with the same global batch `B` takes the same steps as a single device, up to the order of
floating-point sums and the random numbers (dropout, augmentation) the replicas draw. Keras 3 does the `1 / R`
for us: under a strategy it scales every replica's loss by `1 / num_replicas_in_sync` and the optimizer sums the
replicas' gradients.

The learning rate: keep `B` fixed and you keep the learning rate. Keep `b` fixed while adding replicas and `B`
grows `R` times, so each step averages more samples (less gradient noise) and there are `R` times fewer steps
per epoch; the usual remedy is the linear scaling rule `lr' = lr * R` with a warm-up (Goyal et al., 2017), or
`lr * sqrt(R)` for adaptive optimizers. `scaled_learning_rate` computes both; the course keeps `B` and `lr` fixed
so that the three set-ups can be compared.

Three configurations, one training function (`train_configuration`):

* `"single"`: no strategy (Keras's default strategy, one device);
* `"mirrored"`: `tf.distribute.MirroredStrategy` over two *logical* CPU devices of one process. Logical devices
  must be declared before TensorFlow initialises its devices (`configure_logical_cpus`), that is in a fresh
  process: `run_in_subprocess` starts one and returns its results as JSON;
* `"multi_worker"`: `tf.distribute.MultiWorkerMirroredStrategy`, one process per worker, joined through
  `TF_CONFIG` (a cluster of `127.0.0.1:<free port>` addresses and each process's task index; worker 0 acts as
  the chief: it is the one that would write checkpoints and logs). `run_multi_worker` starts the workers, waits
  for them with a timeout, and kills every one of them if any fails.

The input pipeline is split by hand with `strategy.distribute_datasets_from_function` (`make_dataset_fn`):
TensorFlow calls the function once per input pipeline (one per worker) with a `tf.distribute.InputContext`;
every pipeline draws the same order of the samples for the epoch (a stateless shuffle), cuts it into global
batches of `B`, keeps its own `B / P` of each, and batches them with the per-replica batch size
`input_context.get_per_replica_batch_size(B) = B / R`: so every set-up trains on the same global batches.
(The alternative, passing a globally batched `tf.data.Dataset` to `fit`, lets tf.data auto-shard it: with
in-memory arrays there are no files to split, so the `AutoShardPolicy.DATA` policy makes each worker read
everything and keep its share of every batch; `auto_shard_options` sets that policy explicitly.)

What Keras 3.15 needs on top of the TensorFlow tutorials (checked here, on TensorFlow 2.21):

* `steps_per_execution=1` under a strategy: with several steps per call, `fit` on a distributed dataset fails
  with "You must feed a value for placeholder tensor" (the course's default is 8 on one device);
* with `MultiWorkerMirroredStrategy`, Keras calls `strategy.reduce("MEAN", ..., axis=0)` on a nested dict of the
  first batch (to build the model symbolically) and on scalar logs, which `MultiWorkerMirroredStrategy.reduce`
  refuses ("Attempt to convert a value ({...}) to a Tensor", then "Invalid reduction dimension 0 for input with
  0 dimensions"; keras-team/keras#20585). `make_strategy` returns subclasses whose `reduce` reduces nested values
  leaf by leaf, reduces rank-0 values across replicas only, and returns strings (which cannot be averaged)
  from the first local replica. Nothing else is changed: gradients go through the strategy's own all-reduce;
* every replica draws the same random numbers (dropout masks, augmentation), see `RunConfig.deterministic`;
* under a strategy, `fit` opens the dataset once to take a batch for building the model, then again to train:
  a `shuffle(seed=...)` pipeline then trains on another order than a single device does (which opens it once).
  `make_dataset_fn` draws each epoch's order from a stateless seed, so every iterator gives the same one.

Keras 3 also has its own, backend-independent distribution API, `keras.distribution` (implemented for JAX):
`DeviceMesh(shape, axis_names, devices)` names a grid of devices, `DataParallel(devices=...)` replicates the
variables and splits each batch along the mesh's `"batch"` axis, and `ModelParallel(layout_map=...)` also
shards variables. `keras.distribution.set_distribution(DataParallel(...))` before building the model is the
whole change; `model.fit` is untouched. `run_jax_data_parallel` shows it on two host CPU devices
(`XLA_FLAGS=--xla_force_host_platform_device_count=2`) in a subprocess with `KERAS_BACKEND=jax`.

Example:
>>> global_batch_size(per_replica_batch_size=32, num_replicas=2)
64
>>> scaled_learning_rate(1e-3, num_replicas=4, rule="linear")
0.004
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

from mmkeras._validation import check_bool, check_choice, check_int, check_number

STRATEGIES = ("single", "mirrored", "multi_worker")
RULES = ("none", "linear", "sqrt")
OPTIMIZERS = ("adam", "sgd")
DEFAULT_MODALITIES = ("text", "image")


class WorkerError(RuntimeError):
    """A training process failed (non-zero exit) or did not finish in time; the message quotes its output."""


def global_batch_size(per_replica_batch_size: int, num_replicas: int) -> int:
    """The global batch `B = b * R`: what one optimizer step averages over, all replicas together.

    Args:
        per_replica_batch_size: int. `b`, the samples each replica computes on per step.
        num_replicas: int. `R`, `strategy.num_replicas_in_sync` (all devices of all workers).

    Example:
    >>> global_batch_size(16, 4)
    64
    """
    return check_int("per_replica_batch_size", per_replica_batch_size) * check_int("num_replicas", num_replicas)


def per_replica_batch_size(global_batch: int, num_replicas: int) -> int:
    """`b = B / R`, the inverse of `global_batch_size`; `B` must be a multiple of `R`.

    Example:
    >>> per_replica_batch_size(64, 2)
    32
    >>> per_replica_batch_size(63, 2)
    Traceback (most recent call last):
    ...
    ValueError: `global_batch_size` must be a multiple of the 2 replicas. Received: global_batch_size=63
    """
    global_batch = check_int("global_batch_size", global_batch)
    num_replicas = check_int("num_replicas", num_replicas)
    if global_batch % num_replicas:
        raise ValueError(f"`global_batch_size` must be a multiple of the {num_replicas} replicas. "
                         f"Received: global_batch_size={global_batch}")
    return global_batch // num_replicas


def scaled_learning_rate(learning_rate: float, num_replicas: int, rule: str = "linear") -> float:
    """The learning rate for `R` replicas when the per-replica batch stays fixed (so `B` grows `R` times).

    `"linear"`: `lr * R` (Goyal et al., 2017, with a few epochs of warm-up); `"sqrt"`: `lr * sqrt(R)` (keeps the
    gradient-noise scale, often preferred with Adam); `"none"`: `lr` (right when `B` itself is kept fixed).

    Example:
    >>> scaled_learning_rate(0.01, 4, rule="sqrt")
    0.02
    """
    learning_rate = check_number("learning_rate", learning_rate, low=0, low_inclusive=False)
    num_replicas = check_int("num_replicas", num_replicas)
    factor = {"none": 1.0, "linear": float(num_replicas), "sqrt": math.sqrt(num_replicas)}[
        check_choice("rule", rule, RULES)]
    return learning_rate * factor


def configure_logical_cpus(num_devices: int = 2) -> list[str]:
    """Splits the physical CPU into `num_devices` logical devices (so that `MirroredStrategy` has several).

    Must run before TensorFlow initialises its devices (before any op or `list_logical_devices`): call it first
    thing in a fresh process. Calling it again with the same number is harmless.

    Returns:
        The logical device names, e.g. `["/device:CPU:0", "/device:CPU:1"]`.

    Raises:
        RuntimeError: when TensorFlow already initialised its devices with another number of them.
    """
    import tensorflow as tf

    num_devices = check_int("num_devices", num_devices)
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)
    except RuntimeError as error:
        existing = tf.config.list_logical_devices("CPU")
        if len(existing) != num_devices:
            raise RuntimeError(
                f"TensorFlow has already initialised {len(existing)} CPU device(s), so {num_devices} logical "
                f"devices can no longer be declared: call configure_logical_cpus first in a fresh process "
                f"(run_in_subprocess does). TensorFlow said: {error}") from error
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def _reduce_fixed(base):
    """`base` (a tf.distribute strategy class) with the `reduce` Keras 3.15 needs; see the module docstring."""
    import tensorflow as tf

    class Keras3Strategy(base):
        def reduce(self, reduce_op, value, axis=None):
            if not isinstance(value, (tf.distribute.DistributedValues, tf.Tensor)) and tf.nest.is_nested(value):
                return tf.nest.map_structure(lambda v: self.reduce(reduce_op, v, axis), value)
            local = self.experimental_local_results(value)[0]
            if getattr(local, "dtype", None) == tf.string:
                return local  # strings cannot be averaged; Keras only reads their shape here
            if axis is not None and local.shape.rank == 0:
                axis = None  # a scalar log: reduce across replicas, there is no batch axis
            return super().reduce(reduce_op, value, axis)

    Keras3Strategy.__name__ = Keras3Strategy.__qualname__ = base.__name__
    return Keras3Strategy


def make_strategy(name: str, num_devices: int = 2):
    """The `tf.distribute.Strategy` of one configuration.

    Args:
        name: str. `"single"` (Keras's default strategy: no distribution), `"mirrored"` (all-reduce over
            `num_devices` logical CPUs of this process: `configure_logical_cpus` runs first) or
            `"multi_worker"` (reads the cluster from `TF_CONFIG`; every worker must call it).
        num_devices: int. Devices of the mirrored strategy. Defaults to `2`.
    """
    import tensorflow as tf

    name = check_choice("name", name, STRATEGIES)
    num_devices = check_int("num_devices", num_devices)
    if name == "single":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = configure_logical_cpus(num_devices)[:num_devices]
        return _reduce_fixed(tf.distribute.MirroredStrategy)(devices)
    if "TF_CONFIG" not in os.environ:
        raise ValueError("`name='multi_worker'` needs the cluster in the TF_CONFIG environment variable "
                         "(run_multi_worker sets it for every worker). Received: TF_CONFIG unset")
    communication = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.RING)  # NCCL needs GPUs
    return _reduce_fixed(tf.distribute.MultiWorkerMirroredStrategy)(communication_options=communication)


def auto_shard_options(policy: str = "data"):
    """`tf.data.Options` with an explicit auto-shard policy, for a dataset passed to `fit` as it is.

    `"data"` (each worker reads everything and keeps its share of the elements: right for in-memory arrays),
    `"file"` (each worker reads its own files: right for TFRecord shards), `"off"` (every worker sees every
    element: only when you shard yourself, as `make_dataset_fn` does).

    Example:
    >>> options = auto_shard_options("data")
    >>> options.experimental_distribute.auto_shard_policy.name
    'DATA'
    """
    import tensorflow as tf

    policies = {"data": tf.data.experimental.AutoShardPolicy.DATA, "file": tf.data.experimental.AutoShardPolicy.FILE,
                "off": tf.data.experimental.AutoShardPolicy.OFF, "auto": tf.data.experimental.AutoShardPolicy.AUTO}
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = policies[check_choice("policy", policy, tuple(policies))]
    return options


def make_dataset_fn(data, modalities, global_batch: int, label_key: str = "label", shuffle: bool = True,
                    seed: int = 0, repeat: bool = True):
    """A `dataset_fn(input_context)` for `strategy.distribute_datasets_from_function`: one worker's share.

    Every set-up sees the same global batches. Epoch `e` visits the samples in one order, drawn from the
    stateless seed `(seed, e)` (`tf.random.experimental.stateless_shuffle`: the same on every worker, in every
    process, however many iterators Keras opens), cut into `n // B` global batches of `B`; input pipeline `p` of
    `P` (one per worker, `input_context.input_pipeline_id` of `num_input_pipelines`) keeps the `B / P` samples
    `[p B/P, (p + 1) B/P)` of every global batch and batches them by the per-replica batch
    `b = B / R` (`input_context.get_per_replica_batch_size(B)`), so each of its replicas takes its own `b`.
    Within an epoch the pipelines' shares are disjoint and together cover the `(n // B) B` samples that fill
    whole batches; the `n mod B` left over change with the order, so over epochs every sample is used. One
    device, two mirrored devices and two workers therefore compute on exactly the same samples at every step,
    which is what makes their runs comparable (this is `AutoShardPolicy.DATA`'s split, done by hand). Every
    worker holds the whole split in memory to do so; for data that does not fit, shard files instead (one or
    more TFRecord files per worker, `auto_shard_options("file")`), and the global batches then differ from
    one device's.

    Batches are full so that every replica computes on `b` samples, and with `repeat` the dataset is infinite:
    give `fit` `steps_per_epoch = n // B` (`steps_per_epoch`), the same number of steps on every worker, or the
    collectives of a worker that ran out of data would wait forever.

    Args:
        data: MultimodalData or `(features, labels)`. The training split.
        modalities: list of str. The model's inputs.
        global_batch: int. `B`, a multiple of the number of replicas and at most the number of samples.
        label_key: str. The label to train on. Defaults to `"label"`.
        shuffle: bool. A new order every epoch (else the data's own order). Defaults to `True`.
        seed: int. Seed of the orders. Defaults to `0`.
        repeat: bool. Repeat forever (training) or pass once. Defaults to `True`.

    Example:
    >>> import tensorflow as tf
    >>> from mmkeras.data import make_synthetic
    >>> fn = make_dataset_fn(make_synthetic(16), ["image"], global_batch=8, shuffle=False, repeat=False)
    >>> shard = fn(tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2))
    >>> [tuple(x["image"].shape) for x, y in shard]
    [(4, 32, 32, 3), (4, 32, 32, 3)]
    """
    import tensorflow as tf

    from mmkeras.data.pipeline import as_multimodal

    data = as_multimodal(data)
    modalities = data.schema.select_modalities(list(modalities))
    global_batch = check_int("global_batch_size", global_batch)
    if label_key not in data.labels:
        raise ValueError(f"`label_key` must be one of the data's labels {sorted(data.labels)}. "
                         f"Received: label_key={label_key!r}")
    shuffle, repeat = check_bool("shuffle", shuffle), check_bool("repeat", repeat)
    seed = check_int("seed", seed, minimum=0)
    features = {m: data.features[m].astype(str) if data.schema.modality(m).dtype == "string" else data.features[m]
                for m in modalities}
    labels = data.labels[label_key]
    num_samples = len(labels)
    steps = steps_per_epoch(num_samples, global_batch)

    def dataset_fn(input_context):
        batch = per_replica_batch_size(global_batch, input_context.num_replicas_in_sync)
        pipelines, pipeline = input_context.num_input_pipelines, input_context.input_pipeline_id
        share = per_replica_batch_size(global_batch, pipelines)  # B / P samples of every global batch
        tensors = {m: tf.constant(v) for m, v in features.items()}, tf.constant(labels)

        def epoch_share(epoch):
            order = tf.range(num_samples, dtype=tf.int64)
            if shuffle:
                order = tf.random.experimental.stateless_shuffle(order, seed=tf.stack([tf.constant(seed, tf.int64),
                                                                                       epoch]))
            order = tf.reshape(order[: steps * global_batch], (steps, pipelines, share))[:, pipeline]  # (steps, B/P)
            return tf.data.Dataset.from_tensor_slices(tf.reshape(order, (-1,)))

        epochs = tf.data.Dataset.range(2**62 if repeat else 1)
        indices = epochs.flat_map(epoch_share).batch(batch, drop_remainder=True)  # (b,) ids per replica batch
        ds = indices.map(lambda ids: tf.nest.map_structure(lambda t: tf.gather(t, ids), tensors),
                         num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return ds.with_options(auto_shard_options("off")).prefetch(tf.data.AUTOTUNE)  # already split by hand

    return dataset_fn


def steps_per_epoch(num_samples: int, global_batch: int) -> int:
    """Optimizer steps in one pass over `num_samples`: `n // B` (the last, partial, batch is dropped).

    Example:
    >>> steps_per_epoch(1000, 64)
    15
    """
    num_samples, global_batch = check_int("num_samples", num_samples), check_int("global_batch_size", global_batch)
    if num_samples < global_batch:
        raise ValueError(f"`num_samples` must be at least one global batch ({global_batch}). "
                         f"Received: num_samples={num_samples}")
    return num_samples // global_batch


def distribute_input(strategy, dataset_fn):
    """The input of `fit` under `strategy`: `dataset_fn` called through the strategy (one input pipeline per
    worker), or called directly with a one-pipeline `InputContext` under the default strategy."""
    import tensorflow as tf

    if strategy is tf.distribute.get_strategy() and not tf.distribute.has_strategy():
        return dataset_fn(tf.distribute.InputContext())
    return strategy.distribute_datasets_from_function(dataset_fn)


@dataclasses.dataclass
class RunConfig:
    """The training run every configuration repeats (sizes, recipe, seed).

    Args:
        modalities: the moving toys' modalities to fuse. Defaults to `("text", "image")`.
        train_size, test_size: samples of `mmkeras.load_splits`. Default to `1024` and `512`.
        epochs: passes over the training split. Defaults to `3`.
        global_batch_size: `B`, the same for every configuration. Defaults to `32`.
        learning_rate: the initial step size of the course's recipe (cosine decay to 0). Defaults to `1e-2`.
        optimizer: `"adam"` (the course's recipe) or `"sgd"` (plain gradient steps, for checking that two set-ups
            take the same step). Defaults to `"adam"`.
        seed: seeds weights, dropout, data and the order of the samples. Defaults to `0`.
        num_devices: logical CPUs of `"mirrored"`. Defaults to `2`.
        deterministic: no dropout and no random augmentation. Under a strategy every replica draws the *same*
            random numbers (Keras's seed generators are mirrored variables, in the same state on every replica):
            sample `k` of replica 1 gets the dropout mask and the random shift of sample `k` of replica 0, so a
            stochastic mirrored run does not repeat the single-device run. Without randomness, and with the same
            global batches (`make_dataset_fn`), the first SGD steps of every set-up agree to float rounding
            (~1e-8, tested). They do not stay together: the replicas sum their gradients in another order than one
            device does, and once a discrete switch (a ReLU or a max-pool that flips on one side only) makes the
            gradients differ, training carries the difference along. `benchmarks/distribute_drift.py` measured
            the largest `|Δw|` along one run of SGD at a constant 0.05: 5e-7 after 32 steps, 3e-3 after 64, 0.29
            after 256 (the weights moved 0.34). With randomness on, the replicated draws make the set-ups
            differ from the first step. So compare set-ups over seeds, not one run against one run.
            Defaults to `False`.
    """

    modalities: tuple = DEFAULT_MODALITIES
    train_size: int = 1024
    test_size: int = 512
    epochs: int = 3
    global_batch_size: int = 32
    learning_rate: float = 1e-2
    optimizer: str = "adam"
    seed: int = 0
    num_devices: int = 2
    deterministic: bool = False

    def __post_init__(self):
        from mmkeras.data.synthetic import SCHEMA

        self.modalities = tuple(SCHEMA.select_modalities(list(self.modalities)))
        for name in ("train_size", "test_size", "epochs", "global_batch_size", "num_devices"):
            setattr(self, name, check_int(name, getattr(self, name)))
        self.seed = check_int("seed", self.seed, minimum=0)
        self.deterministic = check_bool("deterministic", self.deterministic)
        self.optimizer = check_choice("optimizer", self.optimizer, OPTIMIZERS)
        self.learning_rate = check_number("learning_rate", self.learning_rate, low=0, low_inclusive=False)
        steps_per_epoch(self.train_size, self.global_batch_size)  # at least one step

    @classmethod
    def from_dict(cls, config: dict | None) -> RunConfig:
        config = dict(config or {})
        unknown = sorted(set(config) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"Unknown RunConfig arguments {unknown}; expected some of "
                             f"{[f.name for f in dataclasses.fields(cls)]}. Received: {config!r}")
        return cls(**config)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"modalities": list(self.modalities)}


def build_model(config: RunConfig):
    """`build_fusion_classifier(config.modalities)`; with `config.deterministic`, without dropout and
    without random augmentation (in the fusion and in every encoder)."""
    from mmkeras.models import build_fusion_classifier

    if not config.deterministic:
        return build_fusion_classifier(list(config.modalities))
    overrides = {m: {"dropout": 0.0} | ({"augment": False} if m == "image" else {}) for m in config.modalities}
    return build_fusion_classifier(list(config.modalities), dropout=0.0, **overrides)


def _weights_checksum(weights) -> float:
    return float(sum(np.abs(np.asarray(w, dtype="float64")).sum() for w in weights))


def train_configuration(strategy_name: str, config: RunConfig | dict | None = None) -> dict:
    """Trains and tests the course's fusion classifier under one strategy, in this process: the code that
    every configuration shares.

    Seeds everything, loads `mmkeras.load_splits`, builds `build_fusion_classifier(modalities)` inside
    `strategy.scope()` (so that its variables are mirrored), compiles it with the course's recipe (Adam, or SGD
    with `optimizer="sgd"`, whose step size decays from `learning_rate` to 0 along a cosine over the run;
    cross-entropy on logits, `steps_per_execution=1`), trains with `model.fit` on `make_dataset_fn`'s shares of
    the global batches, then copies the trained weights into a plain model and
    tests it with `mmkeras.evaluate_classifier` on the whole test split.

    `"mirrored"` must run in a fresh process (`run_in_subprocess`), `"multi_worker"` in every worker
    (`run_multi_worker`); `"single"` runs anywhere.

    Returns:
        A JSON-ready dict: `strategy`, `num_replicas`, `num_workers`, `task_index`, `global_batch_size`,
        `per_replica_batch_size`, `steps_per_epoch`, `learning_rate`, `history` (loss and accuracy per epoch,
        over the global batches), `train_seconds`, `optimizer_steps` (updates applied: `epochs * steps_per_epoch`
        under every strategy, one per global batch), `test_accuracy`, `weights_checksum` (sum of `|w|`, equal on
        every worker when the replicas stayed in sync) and `initial_weights_checksum` (the same before training).
    """
    import keras

    from mmkeras.config import seed_everything
    from mmkeras.data import load_splits
    from mmkeras.training import evaluate_classifier

    strategy_name = check_choice("strategy_name", strategy_name, STRATEGIES)
    config = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
    strategy = make_strategy(strategy_name, config.num_devices)
    replicas = strategy.num_replicas_in_sync
    batch = per_replica_batch_size(config.global_batch_size, replicas)
    seed_everything(config.seed)
    splits = load_splits(config.train_size, 8, config.test_size, seed=config.seed)
    steps = steps_per_epoch(config.train_size, config.global_batch_size)
    dataset_fn = make_dataset_fn(splits["train"], config.modalities, config.global_batch_size, seed=config.seed)
    train = distribute_input(strategy, dataset_fn)
    with strategy.scope():  # variables created here are mirrored on every replica
        model = build_model(config)
        schedule = keras.optimizers.schedules.CosineDecay(config.learning_rate, decay_steps=steps * config.epochs)
        optimizer = keras.optimizers.Adam(schedule) if config.optimizer == "adam" else keras.optimizers.SGD(schedule)
        model.compile(optimizer=optimizer, steps_per_execution=1)
    initial_checksum = _weights_checksum(model.get_weights())
    start = time.perf_counter()
    history = model.fit(train, epochs=config.epochs, steps_per_epoch=steps, verbose=0,
                        shuffle=False)  # make_dataset_fn draws each epoch's order; Keras cannot shuffle a dataset
    seconds = time.perf_counter() - start
    weights = model.get_weights()
    plain = build_model(config)  # outside the scope: an ordinary model
    plain.set_weights(weights)
    report = evaluate_classifier(plain, splits["test"])
    cluster = json.loads(os.environ.get("TF_CONFIG", "{}")) if strategy_name == "multi_worker" else {}
    return {
        "strategy": strategy_name,
        "num_replicas": int(replicas),
        "num_workers": len(cluster.get("cluster", {}).get("worker", [None])),
        "task_index": int(cluster.get("task", {}).get("index", 0)),
        "global_batch_size": config.global_batch_size,
        "per_replica_batch_size": batch,
        "steps_per_epoch": steps,
        "learning_rate": config.learning_rate,
        "history": {k: [float(v) for v in values] for k, values in history.history.items()},
        "train_seconds": seconds,
        "optimizer_steps": int(model.optimizer.iterations.numpy()),
        "test_accuracy": float(report["accuracy"]),
        "weights_checksum": _weights_checksum(weights),
        "initial_weights_checksum": initial_checksum,
        "config": config.to_dict(),
    }


# ---------------------------------------------------------------------------------------------------------------
# Processes: one configuration in a fresh process, or a cluster of workers on 127.0.0.1.


def _child_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.pop("TF_CONFIG", None)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("KERAS_BACKEND", "tensorflow")
    env["CUDA_VISIBLE_DEVICES"] = env.get("CUDA_VISIBLE_DEVICES", "-1")  # the course compares CPU set-ups
    root = str(pathlib.Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env | dict(extra or {})


def _start(command, env, log_path):
    log = open(log_path, "w")  # noqa: SIM115 (closed by _stop)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    process.log, process.log_path = log, pathlib.Path(log_path)
    return process


def _stop(processes) -> None:
    """Ends every process of `processes` that is still running (its whole process group), then reaps it."""
    for process in processes:
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                process.kill()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        process.log.close()


def _tail(process, lines: int = 25) -> str:
    process.log.flush()
    text = process.log_path.read_text(errors="replace").splitlines()
    kept = [line for line in text if not line.startswith(("I0000", "W0000", "WARNING: All log messages"))]
    return "\n".join(kept[-lines:])


def _wait_all(processes, names, timeout: float) -> None:
    """Waits for every process; on the first failure or at the deadline, kills them all and raises."""
    deadline = time.monotonic() + timeout
    while True:
        codes = [p.poll() for p in processes]
        failed = [i for i, code in enumerate(codes) if code not in (None, 0)]
        if failed:
            i = failed[0]
            raise WorkerError(f"{names[i]} exited with code {codes[i]}; the others were stopped. "
                              f"Its last output:\n{_tail(processes[i])}")
        if all(code == 0 for code in codes):
            return
        if time.monotonic() > deadline:
            running = [names[i] for i, code in enumerate(codes) if code is None]
            tails = "\n".join(f"--- {names[i]}:\n{_tail(p, 10)}" for i, p in enumerate(processes))
            raise WorkerError(f"{', '.join(running)} did not finish within timeout={timeout} s and were stopped.\n"
                              f"{tails}")
        time.sleep(0.1)


def _read_results(path: pathlib.Path, name: str):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise WorkerError(f"{name} finished but wrote no results to {path}: {error}") from error


def run_in_subprocess(strategies=("mirrored",), config: RunConfig | dict | None = None, timeout: float = 300,
                      workdir=None) -> list[dict]:
    """Runs `train_configuration` for each of `strategies`, one after the other, in one fresh Python process.

    A fresh process is what `"mirrored"` needs (its logical CPUs are declared before TensorFlow starts); the
    results come back as JSON. Runs such as `("single", "mirrored")` share the process and its start-up time.

    Args:
        strategies: sequence of `"single"` and `"mirrored"` (`"multi_worker"` needs `run_multi_worker`).
        config: RunConfig, dict or None. The run (sizes, epochs, batch, learning rate, seed).
        timeout: float. Seconds before the process is killed and `WorkerError` raised. Defaults to `300`.
        workdir: path or None. Where the log and results go; a temporary folder by default.

    Returns:
        One result dict of `train_configuration` per strategy, in order.

    Raises:
        WorkerError: when the process fails or times out (its last output is in the message).
    """
    strategies = list(strategies) if not isinstance(strategies, str) else [strategies]
    if not strategies:
        raise ValueError("`strategies` must name at least one of ('single', 'mirrored'). Received: []")
    for name in strategies:
        check_choice("strategies item", name, ("single", "mirrored"))
    if strategies.count("mirrored") > 1:  # a second MirroredStrategy in one process can mix up collective keys
        raise ValueError(f"`strategies` may hold 'mirrored' once per process. Received: strategies={strategies!r}")
    config = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
    timeout = check_number("timeout", timeout, low=0, low_inclusive=False)
    with tempfile.TemporaryDirectory(prefix="mmkeras-distribute-") as tmp:
        folder = pathlib.Path(workdir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        output = folder / "results.json"
        command = [sys.executable, "-m", "mmkeras.distribute", "--strategies", ",".join(strategies),
                   "--config", json.dumps(config.to_dict()), "--output", str(output), "--timeout", str(timeout)]
        process = _start(command, _child_env(), folder / "process.log")
        try:
            _wait_all([process], ["the training process"], timeout)
        finally:
            _stop([process])
        return _read_results(output, "the training process")


def free_ports(count: int = 2, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct TCP ports that are free on `host` right now (the OS picks them: bind to port 0)."""
    count = check_int("count", count)
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports, index: int, host: str = "127.0.0.1") -> dict:
    """The `TF_CONFIG` of worker `index` in a cluster of one worker per port on `host`.

    Every worker gets the same `cluster` and its own `task`; worker 0 is the chief by convention. A real
    cluster lists its machines' addresses instead (`"10.0.0.1:12345"`, ...), and may add a `"chief"` job.

    Example:
    >>> tf_config([2222, 2223], index=1)
    {'cluster': {'worker': ['127.0.0.1:2222', '127.0.0.1:2223']}, 'task': {'type': 'worker', 'index': 1}}
    """
    ports = [check_int("ports item", p) for p in ports]
    index = check_int("index", index, minimum=0)
    if index >= len(ports):
        raise ValueError(f"`index` must be below the {len(ports)} workers. Received: index={index}")
    return {"cluster": {"worker": [f"{host}:{p}" for p in ports]}, "task": {"type": "worker", "index": index}}


def run_multi_worker(num_workers: int = 2, config: RunConfig | dict | None = None, timeout: float = 300,
                     workdir=None, fail_worker: int | None = None) -> dict:
    """Trains with `MultiWorkerMirroredStrategy` on `num_workers` processes on 127.0.0.1 and joins them.

    Each worker is `python -m mmkeras.distribute --strategies multi_worker` with its own `TF_CONFIG` (free ports
    picked by the OS), and runs the same `train_configuration`. The launcher waits for all of them; when one
    exits with an error, or the `timeout` passes, every worker is killed (no orphan processes; each worker also
    exits by itself if the launcher dies) and `WorkerError` quotes the failing worker's last output.

    Args:
        num_workers: int. Worker processes (one replica each on CPU). Defaults to `2`.
        config: RunConfig, dict or None. The run; `global_batch_size` must be a multiple of `num_workers`.
        timeout: float. Seconds for the whole cluster. Defaults to `300`.
        workdir: path or None. Where the logs and results go; a temporary folder by default.
        fail_worker: int or None. Make this worker crash on start (to test the failure path). Defaults to `None`.

    Returns:
        `{"chief": worker 0's results, "workers": [every worker's results], "seconds": wall time}`.
    """
    num_workers = check_int("num_workers", num_workers)
    config = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
    per_replica_batch_size(config.global_batch_size, num_workers)
    timeout = check_number("timeout", timeout, low=0, low_inclusive=False)
    if fail_worker is not None:
        fail_worker = check_int("fail_worker", fail_worker, minimum=0)
    ports = free_ports(num_workers)
    names = [f"worker {i}" for i in range(num_workers)]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mmkeras-workers-") as tmp:
        folder = pathlib.Path(workdir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        outputs = [folder / f"worker{i}.json" for i in range(num_workers)]
        processes = []
        try:
            for i in range(num_workers):
                command = [sys.executable, "-m", "mmkeras.distribute", "--strategies", "multi_worker",
                           "--config", json.dumps(config.to_dict()), "--output", str(outputs[i]),
                           "--timeout", str(timeout)] + (["--fail"] if i == fail_worker else [])
                env = _child_env({"TF_CONFIG": json.dumps(tf_config(ports, i))})
                processes.append(_start(command, env, folder / f"worker{i}.log"))
            _wait_all(processes, names, timeout)
        finally:
            _stop(processes)
        workers = [_read_results(path, name)[0] for path, name in zip(outputs, names)]
    return {"chief": workers[0], "workers": workers, "seconds": time.perf_counter() - start}


def compare_strategies(config: RunConfig | dict | None = None, num_workers: int = 2, timeout: float = 900,
                       seeds=None) -> list[dict]:
    """Trains the same run with no strategy, `MirroredStrategy` and `MultiWorkerMirroredStrategy`: one row each,
    for each seed.

    `"single"` and `"mirrored"` share one fresh process (`run_in_subprocess`); the workers are `num_workers`
    processes on 127.0.0.1 (`run_multi_worker`). Each row is `train_configuration`'s result (the chief's for the
    cluster); `format_strategies` prints them as a table. Two set-ups are two runs of one recipe (see
    `RunConfig.deterministic`), so compare them over several `seeds`, as a seed changes a single-device run too.

    Args:
        config: RunConfig, dict or None. The run; its `seed` is replaced by each of `seeds`.
        num_workers: int. Worker processes of the cluster. Defaults to `2`.
        timeout: float. Seconds per process before it is killed. Defaults to `900`.
        seeds: sequence of int or None. One comparison per seed; `None` runs `config.seed` only.
    """
    config = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
    seeds = [config.seed] if seeds is None else [check_int("seeds item", s, minimum=0) for s in seeds]
    if not seeds:
        raise ValueError("`seeds` must hold at least one seed (or be None). Received: seeds=[]")
    rows = []
    for seed in seeds:
        run = dataclasses.replace(config, seed=seed)
        rows += run_in_subprocess(("single", "mirrored"), run, timeout=timeout)
        rows.append(run_multi_worker(num_workers, run, timeout=timeout)["chief"])
    return rows


def format_strategies(rows) -> str:
    """A Markdown table of `compare_strategies`' rows: replicas, batches, accuracy, training time.

    With rows of several seeds, one line per strategy: the mean test accuracy with its lowest and highest value
    over the seeds, and the mean `fit()` time.

    Example:
    >>> print(format_strategies([{"strategy": "single", "num_replicas": 1, "per_replica_batch_size": 32,
    ...                           "global_batch_size": 32, "test_accuracy": 0.75, "train_seconds": 9.8}]))
    | strategy | replicas R | per-replica batch b | global batch B | test accuracy | fit() seconds |
    | --- | --- | --- | --- | --- | --- |
    | single | 1 | 32 | 32 | 0.750 | 9.8 |
    """
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["strategy"], []).append(row)
    several = any(len(group) > 1 for group in groups.values())
    accuracy = "test accuracy, mean (min-max)" if several else "test accuracy"
    lines = [f"| strategy | replicas R | per-replica batch b | global batch B |{' seeds |' if several else ''} "
             f"{accuracy} | fit() seconds |",
             "| --- | --- | --- | --- |" + (" --- |" if several else "") + " --- | --- |"]
    for name, group in groups.items():
        first, values = group[0], [r["test_accuracy"] for r in group]
        seconds = float(np.mean([r["train_seconds"] for r in group]))
        cells = [name, first["num_replicas"], first["per_replica_batch_size"], first["global_batch_size"]]
        if several:
            cells += [len(group), f"{np.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})"]
        else:
            cells += [f"{values[0]:.3f}"]
        lines.append("| " + " | ".join(str(c) for c in cells) + f" | {seconds:.1f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# Keras 3's own distribution API, on JAX.

_JAX_SCRIPT = r"""
import json, sys, time
import keras
import numpy as np
from mmkeras.config import seed_everything
from mmkeras.data import load_splits
from mmkeras.models import build_fusion_classifier
from mmkeras.training import evaluate_classifier

config = json.loads(sys.argv[1])
devices = keras.distribution.list_devices("cpu")
mesh = keras.distribution.DeviceMesh(shape=(len(devices),), axis_names=["batch"], devices=devices)
keras.distribution.set_distribution(keras.distribution.DataParallel(device_mesh=mesh))
seed_everything(config["seed"])
splits = load_splits(config["train_size"], 8, config["test_size"], seed=config["seed"])
modalities = config["modalities"]
model = build_fusion_classifier(modalities)
steps = config["train_size"] // config["global_batch_size"]
schedule = keras.optimizers.schedules.CosineDecay(config["learning_rate"], decay_steps=steps * config["epochs"])
model.compile(optimizer=keras.optimizers.Adam(schedule))
train = splits["train"]
n = steps * config["global_batch_size"]
x = {m: train.features[m][:n] for m in modalities}
start = time.perf_counter()
history = model.fit(x, train.labels["label"][:n], batch_size=config["global_batch_size"],
                    epochs=config["epochs"], verbose=0, shuffle=True)
seconds = time.perf_counter() - start
kernel = model.trainable_variables[0].value
print(json.dumps({
    "backend": keras.backend.backend(),
    "devices": [str(d) for d in devices],
    "variable_sharding": str(kernel.sharding),
    "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
    "train_seconds": seconds,
    "test_accuracy": float(evaluate_classifier(model, splits["test"])["accuracy"]),
}))
"""


def run_jax_data_parallel(config: RunConfig | dict | None = None, num_devices: int = 2, timeout: float = 300) -> dict:
    """Trains the same classifier with `keras.distribution.DataParallel` on JAX over `num_devices` host CPUs.

    Runs in a subprocess with `KERAS_BACKEND=jax` and `XLA_FLAGS=--xla_force_host_platform_device_count=N`
    (XLA reads it at start-up, like TensorFlow's logical devices). JAX has no string tensors, so `config`'s
    modalities must not include `"text"`; the default here is `("image",)` (the quickest to compile with XLA on CPU).

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
    env = _child_env({"KERAS_BACKEND": "jax", "XLA_FLAGS": flags, "JAX_PLATFORMS": "cpu"})
    try:
        done = subprocess.run([sys.executable, "-c", _JAX_SCRIPT, json.dumps(config.to_dict())],
                              capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as error:
        raise WorkerError(f"The JAX process did not finish within timeout={timeout} s and was stopped.") from error
    if done.returncode != 0:
        raise WorkerError(f"The JAX process exited with code {done.returncode}. Its last output:\n"
                          + "\n".join(done.stderr.splitlines()[-25:]))
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------------------------------
# The process entry point: `python -m mmkeras.distribute --strategies mirrored --config '{...}' --output x.json`.


def _watchdog(timeout: float) -> None:
    """Ends this process if its launcher dies (no orphans) or after `timeout` seconds (no hang)."""
    parent, deadline = os.getppid(), time.monotonic() + timeout

    def watch():
        while True:
            if os.getppid() != parent or time.monotonic() > deadline:
                os._exit(3)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True).start()


def main(argv=None) -> int:
    """Runs configurations in this process and writes their results as JSON (used by the launchers)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m mmkeras.distribute", description=main.__doc__)
    parser.add_argument("--strategies", required=True, help="comma-separated: single, mirrored, multi_worker")
    parser.add_argument("--config", default="{}", help="RunConfig as JSON")
    parser.add_argument("--output", required=True, help="where to write the results (JSON list)")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--fail", action="store_true", help="crash at once (tests the launcher's failure path)")
    args = parser.parse_args(argv)
    _watchdog(args.timeout)
    if args.fail:
        print("worker asked to fail (--fail)", file=sys.stderr)
        return 2
    config = RunConfig.from_dict(json.loads(args.config))
    strategies = args.strategies.split(",")
    if "mirrored" in strategies:
        configure_logical_cpus(config.num_devices)  # before anything starts TensorFlow's devices
    results = [train_configuration(name, config) for name in strategies]
    tmp = pathlib.Path(f"{args.output}.tmp")
    tmp.write_text(json.dumps(results))
    tmp.replace(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
