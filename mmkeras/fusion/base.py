"""The contract every fusion layer follows, and the helpers they share.

A fusion layer is called as `fusion(features, padding_masks=None, training=None)` where

* `features` is a list of M tensors, one per modality, in the model's modality order; each is either a
  feature vector `(batch, d_m)` or a feature sequence `(batch, steps_m, d_m)` (tokens, frames);
* `padding_masks` is `None` or a list of M entries, each `None` (every step valid, or a vector) or a bool
  tensor `(batch, steps_m)` that is `True` on real steps and `False` on padding.

Vector fusions (concatenation, products, gates) pool sequences first with `masked_mean`; attention-based
fusions read the sequences and their masks directly. The argument is called `padding_masks`, as keras-hub
calls its `padding_mask`, and not `mask`: Keras fills an argument named `mask` by itself, which would hide
what is passed.
"""

from __future__ import annotations

import keras
from keras import layers, ops


def masked_mean(sequence, padding_mask=None):
    """The mean over the valid steps of a sequence: `sum_t m_t x_t / max(1, sum_t m_t)`.

    Args:
        sequence: tensor `(batch, steps, features)`.
        padding_mask: bool tensor `(batch, steps)` or None (every step counts).

    Returns:
        A tensor `(batch, features)`.

    Example:
    >>> x = keras.ops.convert_to_tensor([[[1.0], [3.0], [100.0]]])
    >>> float(masked_mean(x, keras.ops.convert_to_tensor([[True, True, False]]))[0, 0])
    2.0
    """
    if padding_mask is None:
        return ops.mean(sequence, axis=1)
    weights = ops.cast(padding_mask, sequence.dtype)[:, :, None]  # (batch, steps, 1)
    total = ops.sum(sequence * weights, axis=1)  # (batch, features)
    count = ops.maximum(ops.sum(weights, axis=1), ops.cast(1, sequence.dtype))  # (batch, 1)
    return total / count


class FusionLayer(layers.Layer):
    """Base class of the mmkeras fusion layers: checks the contract above and pools sequences on request.

    Subclasses implement `fuse(vectors, training)` on a list of `(batch, d_m)` vectors (set
    `accepts_sequences = False` to refuse sequences instead of pooling them), or override `call` to read
    sequences and masks themselves.
    """

    pools_sequences = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Masks arrive explicitly as `padding_masks`. Accepting Keras's implicit masks (and passing none on, see
        # `compute_mask`) keeps Keras from warning that this layer "destroys the mask information".
        self.supports_masking = True

    def compute_mask(self, inputs, mask=None):
        return None  # the fused representation is one vector per sample: nothing left to mask

    def check_input_shape(self, input_shape) -> list[tuple]:
        """The list of per-modality shapes, each `(batch, d)` or `(batch, steps, d)` with a known `d`."""
        name = type(self).__name__
        if not isinstance(input_shape, (list, tuple)) or not input_shape or not isinstance(input_shape[0],
                                                                                         (list, tuple)):
            raise ValueError(f"{name} takes a non-empty list of per-modality features, each (batch, features) or "
                             f"(batch, steps, features). Received: input_shape={input_shape!r}")
        shapes = [tuple(shape) for shape in input_shape]
        for shape in shapes:
            if len(shape) not in (2, 3) or shape[-1] is None or (len(shape) == 3 and not self.pools_sequences):
                expected = "(batch, features) or (batch, steps, features)" if self.pools_sequences else \
                    "(batch, features); pool sequences first"
                raise ValueError(f"{name} takes features of shape {expected}, with a known feature size. "
                                 f"Received: input_shape={input_shape!r}")
        return shapes

    def check_padding_masks(self, features, padding_masks):
        if padding_masks is None:
            return [None] * len(features)
        if not isinstance(padding_masks, (list, tuple)) or len(padding_masks) != len(features):
            raise ValueError(f"`padding_masks` must be None or a list with one entry per modality ({len(features)}). "
                             f"Received: {padding_masks!r}")
        return list(padding_masks)

    def pool(self, features, padding_masks=None) -> list:
        """Each sequence `(batch, steps, d)` becomes its masked mean `(batch, d)`; vectors pass unchanged."""
        masks = self.check_padding_masks(features, padding_masks)
        return [masked_mean(x, m) if len(x.shape) == 3 else x for x, m in zip(features, masks)]

    def ensure_built(self, features, padding_masks=None) -> None:
        """Builds the layer on these features if it was never called (for the analysis methods)."""
        if not self.built:
            self(list(features), padding_masks=padding_masks)

    @staticmethod
    def pooled_shapes(shapes) -> list[tuple]:
        return [(shape[0], shape[-1]) for shape in shapes]

    def compute_output_spec(self, features, padding_masks=None, training=None):
        shape = self.compute_output_shape([tuple(x.shape) for x in features])
        return keras.KerasTensor(shape, dtype=self.compute_dtype)
