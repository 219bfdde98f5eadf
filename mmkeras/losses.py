"""Multi-task losses (多任务学习): fixed weights, and weights the model learns from the uncertainty of each task.

With one head per task i and its loss `L_i`:

* fixed weights, the seeds' `L = sum_i w_i L_i`: `FusionClassifier.compile(loss_weights={"shape": 0.5, ...})`;
* learned uncertainty weighting (Kendall, Gal and Cipolla 2018): every task gets a learned `s_i = log sigma_i^2`
  and `L = sum_i exp(-s_i) L_i / 2 + s_i / 2`, i.e. `L_i / (2 sigma_i^2) + log sigma_i`. A task whose loss
  stays high (a hard or noisy task) learns a large `sigma_i` and so a small weight `1 / (2 sigma_i^2)`; the
  `log sigma_i` term stops every sigma from growing without bound. `FusionClassifier(...,
  loss_weighting="uncertainty")` uses it.

The binary cross-entropy the seed article writes as `-y log p` misses half of its terms: for a label
`y in {0, 1}` and a predicted probability `p`, it is `-[y log p + (1 - y) log(1 - p)]` (`binary_cross_entropy`).
Without the second term a model that always answers `p = 1` would have zero loss.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from mmkeras._validation import check_name


def binary_cross_entropy(y, p, epsilon: float = 1e-7) -> np.ndarray:
    """`-[y log p + (1 - y) log(1 - p)]`, per sample, in NumPy (the formula written out).

    Example:
    >>> binary_cross_entropy([1, 0], [0.9, 0.9]).round(3).tolist()  # right and confident; wrong and confident
    [0.105, 2.303]
    """
    y = np.asarray(y, dtype="float64")
    p = np.clip(np.asarray(p, dtype="float64"), epsilon, 1 - epsilon)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


@keras.saving.register_keras_serializable(package="mmkeras")
class UncertaintyWeighting(layers.Layer):
    """Combines per-task losses with learned weights: `L = sum_i exp(-s_i) L_i / 2 + s_i / 2`.

    `s_i = log sigma_i^2` is a trainable weight per task, initialised to 0 (every weight starts at 1/2). The
    effective weight of task i is `exp(-s_i) / 2 = 1 / (2 sigma_i^2)` (`effective_weights()`).

    Args:
        tasks: list of str. The task (head) names, in order.
        **kwargs: passed on to `keras.layers.Layer`.

    Example:
    >>> weighting = UncertaintyWeighting(["shape", "color"])
    >>> float(weighting({"shape": keras.ops.convert_to_tensor(2.0), "color": keras.ops.convert_to_tensor(4.0)}))
    3.0

    References:
        Kendall, Gal, Cipolla. Multi-Task Learning Using Uncertainty to Weigh Losses for Scene Geometry and
        Semantics. CVPR 2018.
    """

    def __init__(self, tasks, **kwargs):
        super().__init__(**kwargs)
        if isinstance(tasks, str) or not tasks:
            raise ValueError(f"`tasks` must be a non-empty list of task names. Received: tasks={tasks!r}")
        self.tasks = [check_name("tasks entry", t) for t in tasks]
        if len(set(self.tasks)) != len(self.tasks):
            raise ValueError(f"`tasks` must be distinct. Received: tasks={tasks!r}")
        self.log_variances = self.add_weight(shape=(len(self.tasks),), initializer="zeros", name="log_variances")

    def call(self, losses):
        if set(losses) != set(self.tasks):
            raise ValueError(f"Expected one loss per task {self.tasks}. Received: {sorted(losses)}")
        s = ops.cast(self.log_variances, "float32")
        total = 0.0
        for index, task in enumerate(self.tasks):
            total = total + 0.5 * ops.exp(-s[index]) * ops.cast(losses[task], "float32") + 0.5 * s[index]
        return total

    def effective_weights(self) -> dict:
        """`{task: exp(-s_i) / 2}`: the weight each task's loss currently gets."""
        values = np.exp(-keras.ops.convert_to_numpy(self.log_variances)) / 2
        return {task: float(v) for task, v in zip(self.tasks, values)}

    def compute_output_shape(self, input_shape):
        return ()

    def get_config(self):
        return super().get_config() | {"tasks": list(self.tasks)}


class WeightHistory(keras.callbacks.Callback):
    """Records the effective task weights of a model's `UncertaintyWeighting` after every epoch.

    `history` is a list of `{task: weight}` dicts, one per epoch, ready to plot.
    """

    def __init__(self):
        super().__init__()
        self.history = []

    def on_epoch_end(self, epoch, logs=None):
        weighting = getattr(self.model, "loss_weighting_layer", None)
        if weighting is None:
            raise ValueError("WeightHistory needs a FusionClassifier built with loss_weighting='uncertainty'.")
        self.history.append(weighting.effective_weights())
