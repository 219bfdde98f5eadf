"""The training run every set-up repeats: `RunConfig` (sizes, recipe, seed) and `train_configuration`, the one
training function that runs under no strategy, under `MirroredStrategy` and in every worker of a cluster.

What Keras 3.15 needs under a strategy, beyond the strategy itself (`mmkeras.distribute.strategies`) and the
input (`mmkeras.distribute.data`):

* `steps_per_execution=1`: with several steps per call, `fit` on a distributed dataset fails with "You must feed
  a value for placeholder tensor" (the course's default is 8 on one device);
* every replica draws the same random numbers (dropout masks, augmentation), see `RunConfig.deterministic`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

import numpy as np

from mmkeras._validation import check_bool, check_choice, check_int, check_number
from mmkeras.distribute.batching import per_replica_batch_size, steps_per_epoch
from mmkeras.distribute.data import distribute_input, make_dataset_fn
from mmkeras.distribute.strategies import STRATEGIES, make_strategy

OPTIMIZERS = ("adam", "sgd")
DEFAULT_MODALITIES = ("text", "image")


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


def weights_checksum(weights) -> float:
    """`sum |w|` over every weight array, in float64: equal on two workers whose replicas stayed in sync."""
    return float(sum(np.abs(np.asarray(w, dtype="float64")).sum() for w in weights))


def train_configuration(strategy_name: str, config: RunConfig | dict | None = None) -> dict:
    """Trains and tests the course's fusion classifier under one strategy, in this process: the code that
    every configuration shares.

    Seeds everything, loads `mmkeras.load_splits`, builds `build_fusion_classifier(modalities)` inside
    `strategy.scope()` (so that its variables are mirrored), compiles it with the course's recipe
    (`mmkeras.optimizers.course_optimizer`: Adam, or SGD with `optimizer="sgd"`, whose step size decays from
    `learning_rate` to 0 along a cosine over the run; cross-entropy on logits, `steps_per_execution=1`), trains
    with `model.fit` on `make_dataset_fn`'s shares of the global batches, then copies the trained weights into a
    plain model and tests it with `mmkeras.evaluate_classifier` on the whole test split.

    `"mirrored"` must run in a fresh process (`run_in_subprocess`), `"multi_worker"` in every worker
    (`run_multi_worker`); `"single"` runs anywhere.

    Returns:
        A JSON-ready dict: `strategy`, `num_replicas`, `num_workers`, `task_index`, `global_batch_size`,
        `per_replica_batch_size`, `steps_per_epoch`, `learning_rate`, `history` (loss and accuracy per epoch,
        over the global batches), `train_seconds`, `optimizer_steps` (updates applied: `epochs * steps_per_epoch`
        under every strategy, one per global batch), `test_accuracy`, `weights_checksum` (sum of `|w|`, equal on
        every worker when the replicas stayed in sync) and `initial_weights_checksum` (the same before training).
    """
    from mmkeras.config import seed_everything
    from mmkeras.data import load_splits
    from mmkeras.optimizers import course_optimizer
    from mmkeras.training import evaluate_classifier

    strategy_name = check_choice("strategy_name", strategy_name, STRATEGIES)
    config = config if isinstance(config, RunConfig) else RunConfig.from_dict(config)
    strategy = make_strategy(strategy_name, config.num_devices)
    replicas = strategy.num_replicas_in_sync
    batch = per_replica_batch_size(config.global_batch_size, replicas)
    seed_everything(config.seed)
    splits = load_splits(config.train_size, 8, config.test_size, seed=config.seed)
    steps = steps_per_epoch(config.train_size, config.global_batch_size)
    with strategy.scope():  # variables created here are mirrored on every replica
        model = build_model(config)
        optimizer = course_optimizer(config.learning_rate, total_steps=steps * config.epochs, name=config.optimizer)
        model.compile(optimizer=optimizer, steps_per_execution=1)
    dataset_fn = make_dataset_fn(splits["train"], config.modalities, config.global_batch_size, seed=config.seed)
    train = distribute_input(strategy, dataset_fn, model.preprocessor)  # each worker preprocesses its own share
    initial_checksum = weights_checksum(model.get_weights())
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
        "weights_checksum": weights_checksum(weights),
        "initial_weights_checksum": initial_checksum,
        "config": config.to_dict(),
    }
