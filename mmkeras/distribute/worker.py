"""The process the launchers start: `python -m mmkeras.distribute --strategies mirrored --config '{...}'
--output x.json` runs `train_configuration` for each strategy and writes the results as JSON.

A watchdog thread ends the process if its launcher dies (no orphans) or after `--timeout` seconds (no hang).
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
import threading
import time

from mmkeras.distribute.configuration import RunConfig, train_configuration
from mmkeras.distribute.strategies import configure_logical_cpus


def start_watchdog(timeout: float) -> None:
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
    start_watchdog(args.timeout)
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
