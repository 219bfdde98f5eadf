"""The course's one optimizer recipe, shared by every training helper.

Adam whose step size follows a cosine from `learning_rate` down to 0 over the whole run:

    eta_t = learning_rate * (1 + cos(pi * min(t, T) / T)) / 2,   T = epochs * batches per epoch

The run length `T` must be known before training starts; `count_batches` finds it for any finite
`tf.data.Dataset`, also one whose size tf.data cannot tell (after `filter`, or read from files).

Example:
>>> optimizer = course_optimizer(5e-3, total_steps=100)
>>> round(float(optimizer.learning_rate), 6)  # at step 0: the full step size
0.005
"""

from __future__ import annotations

from mmkeras._validation import check_choice, check_int, check_number


def count_batches(dataset) -> int:
    """The number of batches one pass over `dataset` yields: its cardinality, or counted when tf.data cannot tell.

    Args:
        dataset: tf.data.Dataset. A finite dataset.

    Returns:
        int >= 1.

    Raises:
        ValueError: for an infinite dataset (`repeat()` without a count) or an empty one.

    Example:
    >>> import tensorflow as tf
    >>> count_batches(tf.data.Dataset.range(10).filter(lambda x: x % 2 == 0).batch(2))  # cardinality unknown
    3
    """
    import tensorflow as tf

    cardinality = int(dataset.cardinality())
    if cardinality == tf.data.INFINITE_CARDINALITY:
        raise ValueError("The dataset repeats forever, so an epoch has no end: pass a finite dataset (no `repeat()` "
                         f"without a count). Received: a dataset of cardinality {cardinality} (infinite)")
    if cardinality == tf.data.UNKNOWN_CARDINALITY:
        cardinality = int(dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))
    if cardinality < 1:
        raise ValueError(f"The dataset yields no batch: give it at least one example. Received: {cardinality} batches")
    return cardinality


def course_optimizer(learning_rate: float, total_steps: int, name: str = "adam"):
    """Adam (or SGD) with a cosine-decayed step size, from `learning_rate` to 0 over `total_steps` updates.

    Args:
        learning_rate: float > 0. The step size at the first update.
        total_steps: int >= 1. Updates in the whole run (`epochs * batches per epoch`); `count_batches` gives
            the batches per epoch of any finite dataset.
        name: `"adam"` or `"sgd"`. Defaults to `"adam"`.

    Returns:
        A `keras.optimizers.Optimizer`. Create it inside the strategy scope the model was built in.

    Example:
    >>> optimizer = course_optimizer(1e-3, total_steps=10, name="sgd")
    >>> type(optimizer).__name__
    'SGD'
    """
    import keras

    learning_rate = check_number("learning_rate", learning_rate, low=0, low_inclusive=False)
    total_steps = check_int("total_steps", total_steps, minimum=1)
    check_choice("name", name, ("adam", "sgd"))
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total_steps)
    return keras.optimizers.Adam(schedule) if name == "adam" else keras.optimizers.SGD(schedule)
