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
    return re.findall(r"```bash\n(python3 -m venv .venv && [^\n]+)\n```", README)


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
