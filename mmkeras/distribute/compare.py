"""The three set-ups side by side: `compare_strategies` trains one run under each, `format_strategies` prints
the table (mean and range over seeds, as two set-ups are two runs of one recipe)."""

from __future__ import annotations

import dataclasses

import numpy as np

from mmkeras._validation import check_int
from mmkeras.distribute.configuration import RunConfig
from mmkeras.distribute.launch import run_in_subprocess, run_multi_worker


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
