"""Batch and learning-rate arithmetic of synchronous data parallelism (数据并行).

Every replica (副本) holds a copy of the model, takes its own slice of the global batch, computes gradients, and
the gradients are summed across replicas (an all-reduce, 全归约) before one identical update is applied
everywhere. With `R` replicas and a per-replica batch `b`,

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
so that the set-ups can be compared.

Example:
>>> global_batch_size(per_replica_batch_size=32, num_replicas=2)
64
>>> scaled_learning_rate(1e-3, num_replicas=4, rule="linear")
0.004
"""

from __future__ import annotations

import math

from mmkeras._validation import check_choice, check_int, check_number

RULES = ("none", "linear", "sqrt")


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
