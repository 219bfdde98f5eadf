"""`TaskModel`: what every task model of the course shares, in the spirit of keras-hub's `Task`.

A task model (`FusionClassifier`, `CLIPModel`, `ImageTextMatcher`, `CaptionModel`) is built from parts passed
to its constructor; its `get_config()` holds those arguments (not the functional graph), and its `compile()`
has `"auto"` defaults that know what its outputs are (logits, similarities). This base class adds the piece
they would otherwise each copy: restoring the compile settings and the optimizer state of a saved model.
"""

from __future__ import annotations

import keras


class TaskModel(keras.Model):
    """A `keras.Model` whose saved compile settings are restored through its own `compile()` defaults.

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

    def compile_from_config(self, config):
        """Restores the compile settings of a saved model (`keras.saving.load_model` calls it)."""
        config = keras.saving.deserialize_keras_object(config)
        if self.compile_arguments is not None:
            config = {key: value for key, value in config.items() if key in self.compile_arguments}
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)  # so that the saved optimizer state loads
