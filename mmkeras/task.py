"""`TaskModel`: what every task model of the course shares: it is a keras-hub `Task`.

A task model (`FusionClassifier`, `CLIPModel`, `ImageTextMatcher`, `CaptionModel`) is built from parts passed
to its constructor; its `get_config()` holds those arguments (not the functional graph), and its `compile()`
has `"auto"` defaults that know what its outputs are (logits, similarities). As a `keras_hub.models.Task` it
may hold a `preprocessor` (`mmkeras.preprocessing.MultimodalPreprocessor`) that `fit`, `evaluate` and `predict`
map over the data in `tf.data`, so the model itself reads numbers only. This base class adds the piece the
models would otherwise each copy: restoring the compile settings and the optimizer state of a saved model.
"""

from __future__ import annotations

import sys

import keras
import keras_hub


def _is_distributed(x) -> bool:
    """A dataset distributed by a `tf.distribute` strategy, which keras-hub's pipeline cannot map over."""
    if "tensorflow" not in sys.modules:
        return False
    import tensorflow as tf

    return isinstance(x, tf.distribute.DistributedDataset)


def _is_arrays(x) -> bool:
    """Arrays (or a dict / tuple of them) that Keras would shuffle itself, not a dataset or a generator."""
    if "tensorflow" in sys.modules and isinstance(x, sys.modules["tensorflow"].data.Dataset):
        return False
    parts = list(x.values()) if isinstance(x, dict) else list(x) if isinstance(x, tuple) else [x]
    return bool(parts) and all(isinstance(part, list) or hasattr(part, "shape") for part in parts)


def _shuffled_batches(x, y, kwargs):
    """`(x, y[, sample_weight])` arrays as a `tf.data` dataset reshuffled every epoch and batched (Keras's default
    batch size 32); returns `(dataset, None, kwargs)` without the arguments the dataset now carries."""
    import tensorflow as tf

    kwargs = dict(kwargs, shuffle=False)  # the dataset shuffles itself (Keras warns about shuffle=True on datasets)
    batch_size = kwargs.pop("batch_size", None) or 32
    sample_weight = kwargs.pop("sample_weight", None)
    parts = tuple(part for part in (x, y, sample_weight) if part is not None)
    dataset = tf.data.Dataset.from_tensor_slices(parts if len(parts) > 1 else parts[0])
    count = int(dataset.cardinality())
    dataset = dataset.shuffle(max(count, 1), reshuffle_each_iteration=True).batch(batch_size)
    return dataset, None, kwargs


class TaskModel(keras_hub.models.Task):
    """A keras-hub `Task` whose saved compile settings are restored through its own `compile()` defaults.

    keras-hub's `Task` maps `self.preprocessor` (when set) over the data of `fit`, `evaluate` and `predict`
    and refuses strings in a direct call `model(x)`; unlike keras-hub's tasks, a `TaskModel` is not compiled
    on construction (call `compile()`, whose defaults know the model's outputs). A dataset distributed by a
    `tf.distribute` strategy is fed as it is: map the preprocessor in its dataset function
    (`mmkeras.distribute.make_dataset_fn(..., preprocessor=model.preprocessor)`), one input pipeline per worker.

    Subclasses define `compile(optimizer="auto", ...)` and `get_config()`; `keras.saving.load_model` then calls
    `compile_from_config`, which compiles with the saved arguments (only those `compile_arguments` lists) and
    builds the optimizer so that its saved state (Adam's moments, the step count) loads into it.

    Example:
    >>> class Regressor(TaskModel):
    ...     def __init__(self, **kwargs):
    ...         inputs = keras.Input((3,))
    ...         super().__init__(inputs, keras.layers.Dense(1)(inputs), **kwargs)
    >>> model = Regressor()
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> model.compile_from_config(model.get_compile_config())
    >>> type(model.optimizer).__name__
    'SGD'
    """

    compile_arguments: tuple[str, ...] | None = None
    """The saved compile arguments passed back to `compile()` on loading; `None`: all of them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, compile=False, **kwargs)

    def fit(self, x=None, y=None, *args, **kwargs):
        # Without a preprocessor there is nothing to map: Keras's own fit (which shuffles arrays). A distributed
        # dataset cannot be mapped by keras-hub: its dataset function preprocesses (see above).
        if self.preprocessor is None or _is_distributed(x):
            return keras.Model.fit(self, x, y, *args, **kwargs)
        if not args and kwargs.get("shuffle", True) and not kwargs.get("validation_split") and _is_arrays(x):
            # keras-hub batches arrays into a dataset in order and ignores `shuffle` (with a warning): shuffle
            # them here, as Keras does for arrays, before the preprocessor is mapped over the batches.
            x, y, kwargs = _shuffled_batches(x, y, kwargs)
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        if self.preprocessor is None or _is_distributed(x):
            return keras.Model.evaluate(self, x, y, *args, **kwargs)
        return super().evaluate(x, y, *args, **kwargs)

    def predict(self, x, *args, **kwargs):
        if self.preprocessor is None:
            return keras.Model.predict(self, x, *args, **kwargs)
        return super().predict(x, *args, **kwargs)

    def summary(self, *args, print_fn=None, **kwargs):
        """Keras's summary of the model, after one line per modality of its preprocessor (if it has one)."""
        describe = getattr(self.preprocessor, "describe", None)
        if describe is not None:
            (print_fn or print)(describe())
        return keras.Model.summary(self, *args, print_fn=print_fn, **kwargs)

    def __call__(self, *args, **kwargs):
        # keras-hub refuses strings in a direct call, because its models take them only through a preprocessor.
        # A model without one may read strings in its own graph (a text encoder with its tokenizer inside).
        if self.preprocessor is None:
            return keras.Model.__call__(self, *args, **kwargs)
        return super().__call__(*args, **kwargs)

    def compile_from_config(self, config):
        """Restores the compile settings of a saved model (`keras.saving.load_model` calls it)."""
        config = keras.saving.deserialize_keras_object(config)
        if self.compile_arguments is not None:
            config = {key: value for key, value in config.items() if key in self.compile_arguments}
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)  # so that the saved optimizer state loads
