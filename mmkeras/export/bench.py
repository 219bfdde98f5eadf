"""What an export costs: bytes on disk (plain and gzip-compressed), single-example latency, and the versions of
the converters and runtimes that produced the numbers."""

from __future__ import annotations

import os
import pathlib
import time

import numpy as np

from mmkeras._validation import check_int


def size_on_disk(path) -> int:
    """Bytes of a file, or of every file under a directory."""
    path = pathlib.Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def gzip_size(path) -> int:
    """Bytes of a file once gzip-compressed (level 9): what pruning's zeros save in a download."""
    import gzip

    return len(gzip.compress(pathlib.Path(path).read_bytes(), compresslevel=9))


def latency_ms(run, example: dict, repeats: int = 50, warmup: int = 5) -> dict:
    """Single-example latency of `run(example)`: `{"p50", "p95", "mean"}` in milliseconds over `repeats` calls.

    Example:
    >>> sorted(latency_ms(lambda x: x, {}, repeats=3, warmup=1))
    ['mean', 'p50', 'p95']
    """
    repeats, warmup = check_int("repeats", repeats), check_int("warmup", warmup, minimum=0)
    for _ in range(warmup):
        run(example)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(example)
        times.append((time.perf_counter() - start) * 1000.0)
    return {"p50": float(np.percentile(times, 50)), "p95": float(np.percentile(times, 95)),
            "mean": float(np.mean(times))}


def environment() -> dict:
    """Versions of the converters and runtimes, for benchmark reports."""
    import importlib.metadata as md

    versions = {}
    for package in ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    versions["cpu_count"] = os.cpu_count()
    return versions
