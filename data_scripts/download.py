"""Download, verify and extract one of the course's real datasets: the same command as `mmkeras download`.

Usage (from the repository root; the flags and exit codes are those of `mmkeras download --help`):

    python data_scripts/download.py --list
    python data_scripts/download.py fsdd
    python data_scripts/download.py fsdd --data-dir /data/mmkeras --mirror https://mirror.example.org/mmkeras
    python data_scripts/download.py --print-hash ~/Downloads/master.zip

Exit codes: 0 done, 1 the download / checksum / extraction failed, 2 bad usage. The data directory defaults
to `$MMKERAS_DATA_DIR`, else `~/.mmkeras/datasets`; the mirror to `$MMKERAS_MIRROR`. Every download is
checked against the sha256 in `mmkeras/data/registry.py`; see `data_scripts/README.md` for the datasets, their
licences and how to cite them.
"""

from __future__ import annotations

import argparse
import pathlib
import sys

try:
    from mmkeras.apps.cli import add_download_arguments, run_download
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from mmkeras.apps.cli import add_download_arguments, run_download


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="data_scripts/download.py",
                                     description="Download a registered dataset, verify its sha256, extract it.")
    add_download_arguments(parser)
    return run_download(parser.parse_args(argv), prog="data_scripts/download.py")


if __name__ == "__main__":
    sys.exit(main())
