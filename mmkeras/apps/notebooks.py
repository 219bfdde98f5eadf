"""Run a course notebook top to bottom on a fresh kernel, and keep its committed outputs free of noise.

TensorFlow 2.21 writes a start-up block to the process's stderr (absl's "All log messages before
absl::InitializeLog()", oneDNN's round-off note, "Could not find cuda drivers") before it reads any setting
that could silence it, and tqdm warns that `ipywidgets` is missing when imported in a kernel. None of it is
about the course, and the tqdm warning shows a path of the machine the notebook ran on. `clean_outputs`
removes exactly those lines (the patterns below) and nothing else; `find_noise` reports any that remain, and
the test suite fails on them.
"""

from __future__ import annotations

import os
import pathlib
import re
import sys

NOISE_PATTERNS = (
    re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR$"),
    # absl-formatted C++ log lines, e.g. "I0000 00:00:1795.38 699 port.cc:153] oneDNN custom operations are on..."
    re.compile(r"^[IWE]\d{4} [\d:.]+\s+\d+ [\w.]+\.cc:\d+\] (oneDNN custom operations are on|Could not find cuda "
               r"drivers|Unable to register cu(DNN|FFT|BLAS) factory|This TensorFlow binary is optimized|"
               r"failed call to cuInit|computation placer already registered)"),
    re.compile(r"TqdmWarning: IProgress not found"),
    re.compile(r"^INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.$"),  # the TFLite interpreter's start-up
    re.compile(r"^\s+from \.autonotebook import tqdm as notebook_tqdm$"),
)
"""The stderr lines `clean_outputs` removes: TensorFlow's start-up block and tqdm's missing-widgets warning."""

NOISE_WORDS = ("oneDNN", "cuda", "absl", "TqdmWarning", "site-packages", "XNNPACK")
"""Words that must not appear in any committed output (they would mean noise got through)."""


def _is_noise(line: str) -> bool:
    return any(pattern.search(line) for pattern in NOISE_PATTERNS)


def clean_outputs(notebook) -> int:
    """Removes the known noise lines from every stderr stream output; drops outputs left empty.

    Returns:
        The number of lines removed.
    """
    removed = 0
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                lines = output["text"].splitlines(keepends=True)
                clean = [line for line in lines if not _is_noise(line.rstrip("\n"))]
                removed += len(lines) - len(clean)
                text = "".join(clean)
                if not text.strip():
                    continue
                output["text"] = text
            kept.append(output)
        cell["outputs"] = kept
    return removed


def find_noise(notebook) -> list[str]:
    """The output lines of a notebook that contain any of `NOISE_WORDS`, as `"[cell] line"` strings."""
    found = []
    for index, cell in enumerate(notebook.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            texts = [output.get("text", "")] if output.get("output_type") == "stream" else []
            texts += [str(v) for k, v in output.get("data", {}).items() if k.startswith("text/")]
            texts += ["\n".join(output.get("traceback", []))]
            for text in texts:
                found += [f"[{index}] {line}" for line in text.splitlines() if any(w in line for w in NOISE_WORDS)]
    return found


def execute_notebook(path, smoke: bool = True, timeout: int = 600, write: bool = False):
    """Runs a notebook top to bottom on a fresh kernel, as a learner would, and returns it (outputs cleaned).

    Args:
        path: str or Path. The `.ipynb` file; it runs with its own folder as the working directory.
        smoke: bool. Set `MMKERAS_SMOKE=1` (tiny data, one epoch) for the kernel. Defaults to `True`.
        timeout: int. Seconds one cell may take. Defaults to `600`.
        write: bool. Save the executed notebook (with its outputs) back to `path`. Defaults to `False`.

    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised; the message shows the cell and the traceback.
    """
    import nbclient
    import nbformat

    path = pathlib.Path(path)
    notebook = nbformat.read(path, as_version=4)
    saved = {k: os.environ.get(k) for k in ("MMKERAS_SMOKE", "PATH", "TF_CPP_MIN_LOG_LEVEL", "MPLBACKEND")}
    # The kernel is started as `python -m ipykernel_launcher`: put this interpreter first on PATH so that it
    # runs in the same environment as the caller, not whatever `python` the machine has.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    os.environ["MMKERAS_SMOKE"] = "1" if smoke else "0"
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ.pop("MPLBACKEND", None)
    try:
        client = nbclient.NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                                         resources={"metadata": {"path": str(path.parent)}})
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    clean_outputs(notebook)
    if write:
        nbformat.write(notebook, path)
    return notebook
