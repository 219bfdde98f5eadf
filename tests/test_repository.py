"""The repository keeps its promises: the README's two commands, CI running the same test command."""

from __future__ import annotations

import pathlib
import re

import nbformat
import pytest

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _readme_commands():
    return re.findall(r"```bash\n((?:bash tools/\S+ && )?python3 -m venv .venv && [^\n]+)\n```", README)


def test_readme_opens_with_two_commands():
    commands = _readme_commands()
    assert len(commands) >= 2, commands
    assert commands[0].endswith("mmkeras quickstart"), commands[0]
    assert "pytest" in commands[1], commands[1]


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert _readme_commands()[1] in ci.splitlines()


def test_dependencies_come_from_requirements_txt():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["tool"]["setuptools"]["dynamic"]["dependencies"]["file"] == ["requirements.txt"]
    requirements = (ROOT / "requirements.txt").read_text()
    for package in ("tensorflow", "keras", "keras-hub"):
        assert re.search(rf"^{package}[<>=]", requirements, re.M), package
    assert "keras-nlp" not in requirements and "keras-cv" not in requirements and "tensorflow-io" not in requirements


def _code(path):
    if path.suffix == ".ipynb":
        cells = nbformat.read(path, as_version=4).cells
        return "\n".join(c.source for c in cells if c.cell_type == "code")
    return "\n".join(line for line in path.read_text().splitlines() if not line.lstrip().startswith("#"))


def test_no_tf_keras_in_the_course_code():
    pattern = re.compile(r"\btf\.keras\b|from tensorflow import keras|tensorflow\.keras")
    paths = [*ROOT.glob("mmkeras/**/*.py"), *ROOT.glob("notebooks/**/*.py"), *ROOT.glob("notebooks/*.ipynb")]
    offenders = [str(p.relative_to(ROOT)) for p in paths if pattern.search(_code(p))]
    assert not offenders, offenders


def test_readme_python_snippets_run_as_written(tmp_path):
    """The README's Python blocks are what users copy: they run, in order, in a fresh interpreter."""
    import os
    import subprocess
    import sys

    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    assert len(blocks) >= 2, "the README shows how to use the package on your own data"
    script = tmp_path / "readme_snippets.py"
    script.write_text("\n".join(blocks))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, cwd=tmp_path,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "but will be ignored" not in done.stderr, "fit(dataset, shuffle=True): to_dataset shuffles, pass False"
    accuracies = [float(line) for line in done.stdout.split()]
    assert len(accuracies) == 4 and min(accuracies) > 0.8, accuracies  # the snippets' data is easy by design


def test_requirements_do_not_declare_unused_packages():
    requirements = (ROOT / "requirements.txt").read_text()
    assert "pooch" not in requirements, "pooch is not used: mmkeras.data.download explains why"


def test_code_passes_ruff():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "ruff", "check", "mmkeras", "tests", "data_scripts", "tools",
                           "benchmarks", "notebooks/solutions", "--output-format", "concise"],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]


def test_glossary_covers_every_notebook():
    glossary = (ROOT / "docs" / "glossary.md").read_text()
    introduced = set(re.findall(r"^\| [^|]+ \| [^|]+ \| (\d\d) \|", glossary, re.M))
    notebooks = {p.name[:2] for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert notebooks <= introduced, f"notebooks without glossary terms: {sorted(notebooks - introduced)}"
    assert "## Notation: seed articles" in glossary and re.search(r"[\u4e00-\u9fff]", glossary)
