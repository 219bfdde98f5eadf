"""Re-run course notebooks top to bottom on a fresh kernel and save their outputs (authors' tool).

    python tools/execute_notebooks.py notebooks/02_image.ipynb        # full mode: the committed outputs
    python tools/execute_notebooks.py --smoke notebooks/*.ipynb       # quick check, nothing written
    MMKERAS_SMOKE=1 python tools/execute_notebooks.py notebooks/02_image.ipynb   # the same as --smoke

Committed notebooks carry the outputs of a full-mode run made with this script, so a learner browsing the
repository sees what to expect; `tests/test_notebooks.py` checks that they ran in order without errors.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from mmkeras.apps.notebooks import execute_notebook


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+")
    parser.add_argument("--smoke", action="store_true", help="MMKERAS_SMOKE=1 and do not write the outputs")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per cell (default 1800)")
    args = parser.parse_args(argv)
    args.smoke = args.smoke or os.environ.get("MMKERAS_SMOKE", "0") == "1"  # never save smoke outputs
    for path in args.notebooks:
        start = time.perf_counter()
        execute_notebook(path, smoke=args.smoke, timeout=args.timeout, write=not args.smoke)
        print(f"{path}: ran in {time.perf_counter() - start:.1f} s ({'smoke' if args.smoke else 'full, saved'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
