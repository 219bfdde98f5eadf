"""Multi-task losses: the uncertainty weighting's formula and gradients, the full binary cross-entropy.

Backend-neutral (no TensorFlow here): `tests/test_backends.py` runs this file again under `KERAS_BACKEND=jax`.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mmkeras import testing
from mmkeras.losses import UncertaintyWeighting, binary_cross_entropy


def _tensors(losses):
    return {k: keras.ops.convert_to_tensor(v, "float32") for k, v in losses.items()}


def test_uncertainty_weighting_formula():
    layer = UncertaintyWeighting(["a", "b"])
    layer.log_variances.assign(np.array([0.0, np.log(4.0)], "float32"))  # sigma_a^2 = 1, sigma_b^2 = 4
    total = float(keras.ops.convert_to_numpy(layer(_tensors({"a": 2.0, "b": 8.0}))))
    # L_a / (2 * 1) + log(1) + L_b / (2 * 4) + log(2) = 1 + 1 + 0.6931
    assert total == pytest.approx(2.0 + np.log(2.0), rel=1e-6)
    assert layer.effective_weights() == pytest.approx({"a": 0.5, "b": 0.125})


def test_the_optimum_of_each_sigma_is_its_task_loss():
    """d/ds [exp(-s) L / 2 + s / 2] = 0 at exp(s) = L: a task with a larger loss settles at a smaller weight."""
    layer = UncertaintyWeighting(["easy", "hard"])
    optimizer = keras.optimizers.Adam(0.05)
    losses = {"easy": 0.2, "hard": 2.0}
    for _ in range(400):
        _step(layer, optimizer, losses)
    sigma2 = np.exp(keras.ops.convert_to_numpy(layer.log_variances))
    np.testing.assert_allclose(sigma2, [0.2, 2.0], rtol=0.05)
    weights = layer.effective_weights()
    assert weights["easy"] > 5 * weights["hard"]


def _step(layer, optimizer, losses):
    """One gradient step on the layer's weight, on whichever backend Keras runs."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = layer(_tensors(losses))
        grads = tape.gradient(value, [layer.log_variances])
    else:
        import jax

        def value_of(s):
            return sum(0.5 * jax.numpy.exp(-s[i]) * losses[t] + 0.5 * s[i] for i, t in enumerate(layer.tasks))

        grads = [jax.grad(value_of)(layer.log_variances.value)]
    optimizer.apply(grads, [layer.log_variances])


def test_config_round_trip_and_bad_arguments():
    testing.check_config_round_trip(UncertaintyWeighting(["a", "b"]))
    with pytest.raises(ValueError, match="non-empty list"):
        UncertaintyWeighting([])
    with pytest.raises(ValueError, match="distinct"):
        UncertaintyWeighting(["a", "a"])
    with pytest.raises(ValueError, match=r"one loss per task \['a', 'b'\]"):
        UncertaintyWeighting(["a", "b"])(_tensors({"a": 1.0}))


def test_binary_cross_entropy_has_both_terms():
    y, p = np.array([1, 0, 1, 0]), np.array([0.9, 0.9, 0.2, 0.2])
    ours = binary_cross_entropy(y, p)
    keras_value = keras.ops.convert_to_numpy(keras.losses.binary_crossentropy(y[:, None].astype("float32"),
                                                                               p[:, None].astype("float32")))
    np.testing.assert_allclose(ours, keras_value, rtol=1e-5)
    seed_version = -(y * np.log(p))  # the seed article's formula: a wrong confident "1" costs nothing
    assert seed_version[1] == 0 and ours[1] > 2
