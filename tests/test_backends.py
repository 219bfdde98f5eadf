"""The fusion layers and the multi-task losses are written with `keras.ops` only, so they run on any Keras
backend: their tests pass again under JAX, in a fresh process (a Keras backend is chosen once per process)."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.backend
def test_fusion_and_loss_tests_pass_on_jax():
    pytest.importorskip("jax", reason="JAX comes with the [test] extra")
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
               "tests/test_fusion_zoo.py", "tests/test_losses.py"]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=1200)
    assert done.returncode == 0, done.stdout[-4000:]
    assert " passed" in done.stdout.splitlines()[-1], done.stdout[-500:]
