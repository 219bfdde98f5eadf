"""Shared fixtures: a small deterministic split of the embedded dataset, and quiet TensorFlow."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402

from mmkeras.data import make_synthetic  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()


@pytest.fixture(scope="session")
def tiny_data():
    """Eight samples of every modality, the same in every test."""
    return make_synthetic(8, seed=7)


@pytest.fixture(scope="session")
def batch(tiny_data):
    """The eight samples as model inputs: `{modality: tensor}` (Keras wants all tensors, strings included)."""
    import tensorflow as tf

    return {m: tf.constant(v.astype(str) if m == "text" else v) for m, v in tiny_data.features.items()}
