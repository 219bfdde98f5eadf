"""Decision-level fusion (决策级融合) and ensembles (集成学习): combine the *predictions* of several models.

Feature-level fusion mixes features inside one network; decision-level fusion lets each model (one per
modality, or several whole fusion models) decide on its own and combines the decisions:

* weighted averaging of probabilities: `p(y|x) = sum_m w_m softmax(l_m)`;
* weighted averaging of logits (a weighted geometric mean of the probabilities, renormalised):
  `p(y|x) = softmax(sum_m w_m log softmax(l_m))`;
* majority voting: every member votes for its argmax, the class with the largest (weighted) vote wins (ties go
  to the smallest class id);
* learned weights (stacking): `DecisionFusion` learns `w = softmax(a)` on held-out predictions.

`member_logits(models, data)` gathers each member's logits; `combine_predictions` applies one rule.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from mmkeras._validation import check_choice, check_int
from mmkeras.config import is_smoke
from mmkeras.training import head_logits

METHODS = ("probabilities", "logits", "vote")


def member_logits(models, data, head: str | None = None) -> np.ndarray:
    """Stacks the logits of every model on `data`: `(members, n, classes)`."""
    if not models:
        raise ValueError("`models` must be a non-empty list of trained classifiers. Received: []")
    stacked = [head_logits(model, data, head, 256) for model in models]
    shapes = {s.shape for s in stacked}
    if len(shapes) != 1:
        raise ValueError(f"Every member must predict the same classes for the same samples. Received shapes {shapes}")
    return np.stack(stacked)


def _weights(weights, members: int) -> np.ndarray:
    if weights is None:
        return np.full(members, 1.0 / members)
    weights = np.asarray(weights, dtype="float64")
    if weights.shape != (members,) or (weights < 0).any() or not weights.sum() > 0:
        raise ValueError(f"`weights` must be {members} non-negative numbers, not all zero. "
                         f"Received: {weights.tolist()}")
    return weights / weights.sum()


def _log_softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)  # the same numbers, no overflow in exp
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _softmax(logits):
    return np.exp(_log_softmax(logits))


def combine_predictions(logits, method: str = "probabilities", weights=None) -> np.ndarray:
    """Combines the members' logits `(members, n, classes)` into class probabilities `(n, classes)`.

    For `"vote"` the result is the (weighted) share of votes per class, so `argmax` gives the winner.

    Example:
    >>> logits = np.log(np.array([[[0.6, 0.4]], [[0.6, 0.4]], [[0.1, 0.9]]]))  # 3 members, 1 sample, 2 classes
    >>> combine_predictions(logits, "vote").round(2).tolist()  # two members vote 0
    [[0.67, 0.33]]
    >>> combine_predictions(logits, "probabilities").round(2).tolist()  # the confident third member wins
    [[0.43, 0.57]]
    """
    check_choice("method", method, METHODS)
    logits = np.asarray(logits, dtype="float64")
    if logits.ndim != 3:
        raise ValueError(f"`logits` must be (members, samples, classes). Received: shape={logits.shape}")
    w = _weights(weights, logits.shape[0])[:, None, None]  # (members, 1, 1)
    if method == "probabilities":
        return (w * _softmax(logits)).sum(axis=0)
    if method == "logits":
        return _softmax((w * _log_softmax(logits)).sum(axis=0))
    votes = np.eye(logits.shape[-1])[logits.argmax(axis=-1)]  # (members, n, classes) one-hot
    return (w * votes).sum(axis=0)


@keras.saving.register_keras_serializable(package="mmkeras")
class DecisionFusion(layers.Layer):
    """Learned decision-level weights: `logits = sum_m w_m log softmax(l_m)`, `w = softmax(a)`.

    Takes the members' logits stacked as `(batch, members, classes)`; the weights are positive and sum to 1,
    so the output is the log of a weighted geometric mean of the members' probabilities (up to a constant).

    Args:
        members: int. Number of members.
        **kwargs: passed on to `keras.layers.Layer`.

    Example:
    >>> fusion = DecisionFusion(3)
    >>> tuple(fusion(keras.ops.zeros((2, 3, 5))).shape)
    (2, 5)
    """

    def __init__(self, members, **kwargs):
        super().__init__(**kwargs)
        self.members = check_int("members", members)
        self.scores = self.add_weight(shape=(self.members,), initializer="zeros", name="scores")

    def call(self, logits):
        if logits.shape[1] is not None and logits.shape[1] != self.members:
            raise ValueError(f"DecisionFusion was made for {self.members} members. Received: shape={logits.shape}")
        weights = ops.softmax(ops.cast(self.scores, logits.dtype))  # (members,)
        log_p = ops.log_softmax(logits, axis=-1)  # (batch, members, classes)
        return ops.einsum("bmc,m->bc", log_p, weights)

    def weights_per_member(self) -> np.ndarray:
        return keras.ops.convert_to_numpy(ops.softmax(self.scores))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return super().get_config() | {"members": self.members}


def fit_decision_weights(logits, labels, epochs: int = 200, learning_rate: float = 0.05) -> np.ndarray:
    """Learns `DecisionFusion` weights on held-out members' logits `(members, n, classes)` and labels `(n,)`.

    Fit them on a validation split, never on the test split: the weights are parameters too.
    """
    logits = np.asarray(logits, dtype="float32")
    labels = np.asarray(labels)
    if logits.ndim != 3 or labels.shape != (logits.shape[1],):
        raise ValueError(f"Expected logits (members, n, classes) and labels (n,). Received: {logits.shape} and "
                         f"{labels.shape}")
    fusion = DecisionFusion(logits.shape[0])
    inputs = keras.Input(shape=(logits.shape[0], logits.shape[2]))  # (members, classes) per sample
    model = keras.Model(inputs, fusion(inputs))
    model.compile(keras.optimizers.Adam(learning_rate),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), run_eagerly=is_smoke())
    model.fit(np.transpose(logits, (1, 0, 2)), labels, epochs=check_int("epochs", epochs),
              batch_size=len(labels), verbose=0)
    return fusion.weights_per_member()
