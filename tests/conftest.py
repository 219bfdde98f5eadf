"""Shared fixtures: a small deterministic split of the embedded dataset, and quiet TensorFlow.

TensorFlow is imported inside the fixtures, not at the top: with `pytest -n 2` the controlling process then
never loads it, and its start-up chatter stays out of the test report.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Scripts that tests run in a subprocess under another Keras backend: not test modules, not doctests.
collect_ignore = ["backend_checks"]


def pytest_configure(config):
    """With `pytest -n 2`, let an idle worker take queued tests from a busy one (xdist's "worksteal").

    The default ("load") hands tests out in fixed chunks; a few tests here take minutes (the JAX groups, the full
    quickstart, notebook runs), and one worker could be left with several of them while the other sits idle.
    """
    if getattr(config.option, "dist", "no") == "load" and "PYTEST_XDIST_WORKER" not in os.environ:
        config.option.dist = "worksteal"


@pytest.fixture(autouse=True)
def _seed():
    import keras

    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()


@pytest.fixture(scope="session")
def tiny_data():
    """Eight samples of every modality, the same in every test."""
    from mmkeras.data import make_synthetic

    return make_synthetic(8, seed=7)


@pytest.fixture(scope="session")
def batch(tiny_data):
    """The eight samples as model inputs: `{modality: tensor}` (Keras wants all tensors, strings included)."""
    import tensorflow as tf

    return {m: tf.constant(v.astype(str) if m == "text" else v) for m, v in tiny_data.features.items()}


@pytest.fixture(scope="session")
def preprocessed_batch(tiny_data):
    """The eight samples as a numeric model reads them: token ids, log-mel spectrograms, pixels (NumPy)."""
    import keras

    from mmkeras.data import SCHEMA
    from mmkeras.preprocessing import build_preprocessor

    outputs = build_preprocessor(SCHEMA)(tiny_data.features)
    return {m: keras.ops.convert_to_numpy(v) for m, v in outputs.items()}
