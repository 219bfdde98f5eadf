"""Benchmark: wall-clock time of the whole `mmkeras quickstart` command, as a user runs it.

    python benchmarks/quickstart_benchmark.py --runs 2

Each run is a fresh process (`python -m mmkeras quickstart --json ...`), so the figure includes Python and
TensorFlow start-up, data generation, training the five models and evaluating them. It prints one line per
run and a summary, and checks that every run reports the same accuracies (same seed, same numbers).
The course's target is 90 s on 2 CPU cores; the figure measured for the README came from this script.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time


def run_once(seed: int) -> tuple[float, dict]:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "r.json")
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        env.pop("MMKERAS_SMOKE", None)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mmkeras", "quickstart", "--quiet", "--seed", str(seed), "--json", path,
                        "--out-dir", tmp], check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
        with open(path) as f:
            return seconds, json.load(f)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Time `mmkeras quickstart` end to end.")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}")
    times, accuracies = [], []
    for i in range(args.runs):
        seconds, result = run_once(args.seed)
        times.append(seconds)
        accuracies.append(result["accuracy"])
        print(f"run {i + 1}: {seconds:6.1f} s wall clock (inside: {result['seconds']:.1f} s)  accuracy: "
              + ", ".join(f"{k}={v:.3f}" for k, v in result["accuracy"].items()))
    print(f"quickstart wall clock: min {min(times):.1f} s, median {statistics.median(times):.1f} s, "
          f"max {max(times):.1f} s over {len(times)} runs (target: 90 s on 2 cores)")
    same = all(a == accuracies[0] for a in accuracies)
    print(f"same accuracies in every run: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
