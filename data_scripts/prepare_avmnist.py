"""Prepare AV-MNIST (MNIST images paired with FSDD recordings): the same command as `mmkeras prepare avmnist`.

Usage (from the repository root; flags and exit codes are those of `mmkeras prepare avmnist --help`):

    python data_scripts/prepare_avmnist.py                      # download both halves, verify, pair, cache
    python data_scripts/prepare_avmnist.py --mirror http://127.0.0.1:8000/   # a mirror serving the two files
    python data_scripts/prepare_avmnist.py --fixture            # the offline stand-in (not real data)

It downloads `mnist` and `fsdd` (sha256-checked), pairs every image with a recording of the same digit, splits
by speaker, and caches the pairs in `<data dir>/avmnist/avmnist-<key>.npz`; `mmkeras.data.avmnist.load_avmnist`
reads them. Exit codes: 0 done, 1 a download failed (the message says how to work offline), 2 bad usage.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

try:
    from mmkeras.apps.cli import add_prepare_arguments, run_prepare
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from mmkeras.apps.cli import add_prepare_arguments, run_prepare


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="data_scripts/prepare_avmnist.py",
                                     description="Download MNIST and FSDD, pair them into AV-MNIST, cache it.")
    add_prepare_arguments(parser)
    return run_prepare(parser.parse_args(argv), prog="data_scripts/prepare_avmnist.py")


if __name__ == "__main__":
    sys.exit(main())
