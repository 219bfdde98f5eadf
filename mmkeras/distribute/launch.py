"""Processes: one configuration in a fresh process, or a cluster of workers on 127.0.0.1.

`run_in_subprocess` starts `python -m mmkeras.distribute` once (a fresh process is what `"mirrored"` needs: its
logical CPUs are declared before TensorFlow starts); `run_multi_worker` starts one such process per worker, each
with its own `TF_CONFIG` (`tf_config`, ports from `free_ports`). Both wait with a timeout and kill every process
of the run (its whole process group) if one fails; results come back as JSON files. The worker side of the
protocol is `mmkeras.distribute.worker`.
"""

from __future__ import annotations

import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time

from mmkeras._validation import check_choice, check_int, check_number
from mmkeras.distribute.batching import per_replica_batch_size
from mmkeras.distribute.configuration import RunConfig

WORKER_MODULE = "mmkeras.distribute"
"""What the launchers run with `python -m`: `mmkeras/distribute/__main__.py`, i.e. `worker.main`."""


class WorkerError(RuntimeError):
    """A training process failed (non-zero exit) or did not finish in time; the message quotes its output."""


def child_env(extra: dict | None = None) -> dict:
    """The environment of a training process: this one's, without `TF_CONFIG`, on CPU, TensorFlow quiet, this
    copy of mmkeras first on `PYTHONPATH`, plus `extra`."""
    env = dict(os.environ)
    env.pop("TF_CONFIG", None)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.setdefault("KERAS_BACKEND", "tensorflow")
    env["CUDA_VISIBLE_DEVICES"] = env.get("CUDA_VISIBLE_DEVICES", "-1")  # the course compares CPU set-ups
    root = str(pathlib.Path(__file__).resolve().parents[2])  # the folder holding the mmkeras package
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
        command = [sys.executable, "-m", WORKER_MODULE, "--strategies", ",".join(strategies),
                   "--config", json.dumps(config.to_dict()), "--output", str(output), "--timeout", str(timeout)]
        process = _start(command, child_env(), folder / "process.log")
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
                command = [sys.executable, "-m", WORKER_MODULE, "--strategies", "multi_worker",
                           "--config", json.dumps(config.to_dict()), "--output", str(outputs[i]),
                           "--timeout", str(timeout)] + (["--fail"] if i == fail_worker else [])
                env = child_env({"TF_CONFIG": json.dumps(tf_config(ports, i))})
                processes.append(_start(command, env, folder / f"worker{i}.log"))
            _wait_all(processes, names, timeout)
        finally:
            _stop(processes)
        workers = [_read_results(path, name)[0] for path, name in zip(outputs, names)]
    return {"chief": workers[0], "workers": workers, "seconds": time.perf_counter() - start}
