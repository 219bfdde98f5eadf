"""Run a course notebook top to bottom on a fresh kernel, and keep its committed outputs free of noise.

TensorFlow 2.21 writes a start-up block to the process's stderr (absl's "All log messages before
absl::InitializeLog()", oneDNN's round-off note, "Could not find cuda drivers") before it reads any setting
that could silence it, and tqdm warns that `ipywidgets` is missing when imported in a kernel. None of it is
about the course, and the tqdm warning shows a path of the machine the notebook ran on. `clean_outputs`
removes exactly those lines (the patterns below) and nothing else; `find_noise` reports any that remain, and
the test suite fails on them.

A full-mode run also records what its outputs depend on: every `mmkeras` module the kernel imported, with a
fingerprint of its code (`code_fingerprint`: docstrings and comments do not count), in the notebook's metadata
under `"mmkeras"`. `stale_modules` compares that record with the package as it is now, so a test can name the
notebooks whose outputs are older than the code that made them.
"""

from __future__ import annotations

import ast
import hashlib
import json
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


PACKAGE_ROOT = pathlib.Path(__file__).resolve().parents[1]
"""The `mmkeras` package folder; recorded module paths are relative to its parent (e.g. `"mmkeras/models.py"`)."""

_LIST_MODULES = (
    "import json as _j, sys as _s\n"
    "print(_j.dumps(sorted({m.__file__ for n, m in list(_s.modules.items())\n"
    "                       if n.split('.')[0] == 'mmkeras' and getattr(m, '__file__', None)})))"
)
"""Run in the kernel after the last cell: the files of the `mmkeras` modules it imported, as a JSON list."""


def code_fingerprint(path) -> str:
    """A SHA-256 of a Python file's code, blind to docstrings, comments and formatting.

    Two versions of a module get the same fingerprint when only their docstrings, comments, blank lines or
    line breaks differ, so editing documentation does not mark the notebooks that import it as stale.

    Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "a.py").write_text("def f(x):\\n    'Doubles.'\\n    return 2 * x  # twice\\n")
    >>> _ = (folder / "b.py").write_text("def f(x):\\n    return 2*x\\n")
    >>> code_fingerprint(folder / "a.py") == code_fingerprint(folder / "b.py")
    True
    """
    tree = ast.parse(pathlib.Path(path).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree, annotate_fields=False).encode()).hexdigest()


def dependency_record(module_files) -> dict:
    """`{"mmkeras/x.py": fingerprint}` for the package files among `module_files` (others are ignored)."""
    record = {}
    for name in module_files:
        file = pathlib.Path(name).resolve()
        if file.suffix == ".py" and file.is_relative_to(PACKAGE_ROOT):
            record[file.relative_to(PACKAGE_ROOT.parent).as_posix()] = code_fingerprint(file)
    return dict(sorted(record.items()))


def stale_modules(notebook) -> list[str] | None:
    """The package modules whose code changed (or vanished) since the notebook's recorded full-mode run.

    Returns:
        A sorted list of module paths (empty when the outputs are current), or `None` when the notebook holds no
        record (it was executed before records existed, or never by `execute_notebook(..., write=True)`).
    """
    record = notebook.get("metadata", {}).get("mmkeras", {}).get("depends_on")
    if record is None:
        return None
    stale = []
    for module, fingerprint in record.items():
        file = PACKAGE_ROOT.parent / module
        if not file.is_file() or code_fingerprint(file) != fingerprint:
            stale.append(module)
    return sorted(stale)


def execute_notebook(path, smoke: bool = True, timeout: int = 600, write: bool = False):
    """Runs a notebook top to bottom on a fresh kernel, as a learner would, and returns it (outputs cleaned).

    Args:
        path: str or Path. The `.ipynb` file; it runs with its own folder as the working directory.
        smoke: bool. Set `MMKERAS_SMOKE=1` (tiny data, one epoch) for the kernel. Defaults to `True`.
        timeout: int. Seconds one cell may take. Defaults to `600`.
        write: bool. Save the executed notebook (with its outputs) back to `path`, with the record of the package
            modules its outputs depend on (metadata `"mmkeras"`, see `stale_modules`). Defaults to `False`.

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
        probe = nbformat.v4.new_code_cell(_LIST_MODULES)
        notebook.cells.append(probe)  # run last, in the same kernel, then removed
        try:
            client.execute()
        finally:
            notebook.cells.remove(probe)
        printed = "".join(o.get("text", "") for o in probe.get("outputs", []) if o.get("output_type") == "stream")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    clean_outputs(notebook)
    notebook.metadata.pop("mmkeras", None)
    if not smoke:
        notebook.metadata["mmkeras"] = {"mode": "full", "depends_on": dependency_record(json.loads(printed))}
    if write:
        nbformat.write(notebook, path)
    return notebook
