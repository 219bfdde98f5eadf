"""The padding mask that travels with a feature sequence, so that fusion layers can ignore padding.

Keras attaches masks to tensors inside one model, but a nested functional encoder does not hand its mask to
the model around it. Encoders built with `sequence_output=True` therefore return the mask explicitly, as
keras-hub backbones do: `{"sequence": (batch, steps, features), "padding_mask": (batch, steps)}`.
"""

from __future__ import annotations

import keras
from keras import layers, ops

from mmkeras._validation import check_optional_int


@keras.saving.register_keras_serializable(package="mmkeras")
class PaddingMask(layers.Layer):
    """`mask[b, t] = token_ids[b, t] != padding_id`; with `padding_id=None`, every step of a sequence is valid.

    Args:
        padding_id: int or None. The id of the padding token. `None` takes a feature sequence
            `(batch, steps, features)` and marks every step as valid (audio frames, video frames).
            Defaults to `0`.
        **kwargs: passed on to `keras.layers.Layer`.

    Example:
    >>> PaddingMask()(keras.ops.convert_to_tensor([[4, 2, 0]])).numpy().tolist()
    [[True, True, False]]
    """

    def __init__(self, padding_id=0, **kwargs):
        super().__init__(**kwargs)
        self.padding_id = check_optional_int("padding_id", padding_id, minimum=0)

    def call(self, inputs):
        if self.padding_id is None:
            return ops.ones_like(inputs[:, :, 0], dtype="bool")  # (batch, steps): all valid
        return ops.not_equal(inputs, self.padding_id)  # (batch, steps)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:2])

    def compute_output_spec(self, inputs):
        return keras.KerasTensor(tuple(inputs.shape[:2]), dtype="bool")

    def get_config(self):
        return super().get_config() | {"padding_id": self.padding_id}


def sequence_outputs(sequence, mask):
    """The dict an encoder returns with `sequence_output=True`."""
    return {"sequence": sequence, "padding_mask": mask}
