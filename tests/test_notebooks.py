"""Every course notebook runs top to bottom in smoke mode, and the committed outputs come from a real run.

Committed notebooks carry the outputs of a full-mode run (`python tools/execute_notebooks.py NOTEBOOK`):
their code cells were executed in order (execution counts 1, 2, 3, ...), none shows an error, and the setup
cell printed `SMOKE = False`; and the package code they depend on has not changed since (the record that
`execute_notebook` writes, checked by `stale_modules`). Exercise solutions (`notebooks/solutions/*.py`)
run in smoke mode too.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import nbformat
import pytest

from mmkeras.apps.notebooks import (
    clean_outputs,
    code_fingerprint,
    dependency_record,
    execute_notebook,
    find_noise,
    stale_modules,
)

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SOLUTIONS = sorted((ROOT / "notebooks" / "solutions").glob("[0-9][0-9]_*.py"))


def _ids(paths):
    return [p.name for p in paths]


def test_the_course_has_its_notebooks():
    names = [p.name[:2] for p in NOTEBOOKS]
    assert names[:6] == ["00", "01", "02", "03", "04", "05"], names


@pytest.mark.notebook
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs_in_smoke_mode(path, tmp_path, monkeypatch):
    monkeypatch.setenv("MMKERAS_DATA_DIR", str(tmp_path))  # downloads and caches (notebook 12) stay in the test
    monkeypatch.delenv("MMKERAS_MIRROR", raising=False)
    execute_notebook(path, smoke=True, timeout=600)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_outputs_come_from_an_in_order_full_run(path):
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in code]
    assert counts == list(range(1, len(code) + 1)), f"cells not run once, in order: {counts}"
    errors = [o for c in code for o in c.outputs if o.output_type == "error"]
    assert not errors, f"committed outputs contain errors: {[e.ename for e in errors]}"
    printed = "".join(o.get("text", "") for c in code for o in c.outputs if o.output_type == "stream")
    assert "SMOKE = False" in printed, "outputs must come from a full-mode run (the setup cell prints SMOKE)"
    assert any("image/png" in o.get("data", {}) for c in code for o in c.outputs), "a notebook shows plots"


NOT_YET_RECORDED = {
    "00_setup_and_dataset_tour.ipynb",
    "01_text.ipynb",
    "02_image.ipynb",
    "03_audio.ipynb",
    "04_video.ipynb",
    "07_decision_fusion_and_ensembles.ipynb",
    "08_multitask_loss.ipynb",
    "09_gan.ipynb",
    "11_matching_and_captioning.ipynb",
    "12_avmnist.ipynb",
    "13_pretrain_and_transfer.ipynb",
    "14_deployment.ipynb",
    "15_distributed_training.ipynb",
}
"""Notebooks last executed before `execute_notebook` recorded their dependencies: re-execute and remove them."""


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_outputs_are_not_older_than_the_code_they_depend_on(path):
    stale = stale_modules(nbformat.read(path, as_version=4))
    if stale is None:
        assert path.name in NOT_YET_RECORDED, (f"{path.name} has no record of the package code it ran with: "
                                               f"re-execute it with tools/execute_notebooks.py")
    else:
        assert path.name not in NOT_YET_RECORDED, f"{path.name} is recorded now: remove it from NOT_YET_RECORDED"
        assert not stale, (f"{path.name}'s outputs are older than these modules, changed since its run: {stale}; "
                           f"re-execute it with tools/execute_notebooks.py")


def test_a_code_change_makes_a_recorded_notebook_stale_and_a_docstring_change_does_not(tmp_path, monkeypatch):
    import mmkeras.apps.notebooks as notebooks

    package = tmp_path / "mmkeras"
    package.mkdir()
    module = package / "layer.py"
    module.write_text('def scale(x):\n    """Doubles x."""\n    return 2 * x\n')
    monkeypatch.setattr(notebooks, "PACKAGE_ROOT", package)
    record = dependency_record([str(module), str(tmp_path / "elsewhere.py")])  # files outside the package: ignored
    assert record == {"mmkeras/layer.py": code_fingerprint(module)}
    notebook = nbformat.v4.new_notebook(metadata={"mmkeras": {"mode": "full", "depends_on": record}})
    assert stale_modules(notebook) == []
    module.write_text('def scale(x):\n    """Multiplies x by two."""  # reworded\n\n    return 2 * x\n')
    assert stale_modules(notebook) == []
    module.write_text('def scale(x):\n    """Multiplies x by three."""\n    return 3 * x\n')
    assert stale_modules(notebook) == ["mmkeras/layer.py"]
    module.unlink()
    assert stale_modules(notebook) == ["mmkeras/layer.py"]
    assert stale_modules(nbformat.v4.new_notebook()) is None


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_committed_outputs_show_no_start_up_noise(path):
    """No TensorFlow start-up block, tqdm warning or path of a build machine in what a reader sees."""
    noise = find_noise(nbformat.read(path, as_version=4))
    assert not noise, noise[:5]


def test_the_cleaner_removes_exactly_the_known_noise():
    notebook = nbformat.v4.new_notebook()
    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1795450294.384226     699 port.cc:153] oneDNN custom operations are on. You may see...\n"
            "I0000 00:00:1795450294.385052     699 cudart_stub.cc:31] Could not find cuda drivers on your machine.\n"
            "/tmp/venv/lib/python3.11/site-packages/tqdm/auto.py:21: TqdmWarning: IProgress not found. Please...\n"
            "  from .autonotebook import tqdm as notebook_tqdm\n"
            "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
            "UserWarning: something a learner should see\n")
    cell = nbformat.v4.new_code_cell("x = 1")
    cell.outputs = [nbformat.v4.new_output("stream", name="stderr", text=text),
                    nbformat.v4.new_output("stream", name="stderr", text="I0000 00:00:1.2   9 port.cc:1] oneDNN custom "
                                                                           "operations are on\n")]
    notebook.cells.append(cell)
    assert clean_outputs(notebook) == 7
    assert [o["text"] for o in cell.outputs] == ["UserWarning: something a learner should see\n"]
    assert find_noise(notebook) == []


def test_notebooks_open_with_goals_and_close_with_recap_and_exercises():
    for path in NOTEBOOKS:
        markdown = [c.source.lower() for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]
        assert "goals" in markdown[0] and "runtime" in markdown[0], path.name
        text = "\n".join(markdown)
        assert "recap" in text and "exercise" in text, path.name


@pytest.mark.notebook
@pytest.mark.parametrize("path", SOLUTIONS, ids=_ids(SOLUTIONS))
def test_exercise_solutions_run(path, tmp_path):
    env = dict(os.environ, MMKERAS_SMOKE="1", TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="Agg",
               MMKERAS_DATA_DIR=str(tmp_path))
    env.pop("MMKERAS_MIRROR", None)
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, env=env,
                          cwd=path.parent, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
