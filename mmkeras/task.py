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
        if _is_distributed(x):  # keras-hub cannot map over it: its dataset function preprocesses (see below)
            return keras.Model.fit(self, x, y, *args, **kwargs)
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        if _is_distributed(x):
            return keras.Model.evaluate(self, x, y, *args, **kwargs)
        return super().evaluate(x, y, *args, **kwargs)

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
