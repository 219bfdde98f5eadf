"""The cells a reader copies run on their own: every code cell tagged "standalone" in a course notebook.

A notebook marks a code cell as one to copy (its own imports, data, model, training and evaluation) with the
cell metadata `"tags": ["standalone"]`. Each such cell runs here as a script in a fresh Python process, from an
empty folder, in smoke mode (`MMKERAS_SMOKE=1`): it must not lean on a name defined by an earlier cell, on a
notebook magic, or on files next to the notebook. New tagged cells are picked up without changing this file.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TAG = "standalone"
TIMEOUT_SECONDS = 180  # one cell, smoke mode; a cell normally takes 10 to 20 s, most of it TensorFlow's start-up


def tagged_cells() -> list[tuple[str, int, str]]:
    """`(notebook stem, cell index, source)` of every code cell tagged `TAG`, in notebook order."""
    found = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        for index, cell in enumerate(notebook["cells"]):
            if cell["cell_type"] == "code" and TAG in cell.get("metadata", {}).get("tags", []):
                found.append((path.stem, index, "".join(cell["source"])))
    return found


CELLS = tagged_cells()


def test_the_training_notebooks_have_a_standalone_cell():
    notebooks = {stem for stem, _, _ in CELLS}
    assert {"05_concatenation_fusion", "10_contrastive_retrieval"} <= notebooks, sorted(notebooks)


@pytest.mark.parametrize("source", [source for _, _, source in CELLS],
                         ids=[f"{stem}-cell{index}" for stem, index, _ in CELLS])
def test_standalone_cell_runs_in_a_fresh_python(source, tmp_path):
    assert not any(line.lstrip().startswith(("%", "!")) for line in source.splitlines()), "no notebook magics"
    script = tmp_path / "cell.py"
    script.write_text(source, encoding="utf-8")
    env = dict(os.environ, MMKERAS_SMOKE="1", TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="Agg",
               MMKERAS_DATA_DIR=str(tmp_path / "data"))
    env.pop("MMKERAS_MIRROR", None)
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_SECONDS)
    assert done.returncode == 0, done.stderr[-3000:]
