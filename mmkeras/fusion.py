"""Fusion layers: how features of several modalities become one representation.

This first module holds feature-level fusion by concatenation (特征级融合); the later fusion notebooks add
their layers here.
"""

from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="mmkeras")
class ConcatenationFusion(layers.Layer):
    """Feature-level fusion: concatenate the modalities' feature vectors, then mix them with one Dense layer.

    For feature vectors `z_1 (d_1), ..., z_M (d_M)` of M modalities,

        Z = [z_1; z_2; ...; z_M]          (batch, d_1 + ... + d_M)
        H = act(W Z + b)                  (batch, output_dim)

    so every output unit can combine evidence from every modality. With one input the layer is a plain
    projection: unimodal baselines and the fused model share the same code. With `output_dim=None` it
    returns `Z` itself.

    Args:
        output_dim: int or None. Size of `H`; `None` skips the projection. Defaults to `None`.
        activation: str. Activation of the projection. Defaults to `"relu"`.
        dropout: float. Dropout applied to `Z` before the projection, in [0, 1). Defaults to `0.0`.
        **kwargs: passed on to `keras.layers.Layer` (e.g. `name`).

    Example:
    >>> fusion = ConcatenationFusion(output_dim=8)
    >>> fusion([keras.ops.ones((2, 3)), keras.ops.ones((2, 5))]).shape
    TensorShape([2, 8])

    References:
        Baltrusaitis, Ahuja, Morency. Multimodal Machine Learning: A Survey and Taxonomy. TPAMI 2019.
    """

    def __init__(self, output_dim=None, activation="relu", dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if output_dim is not None and (isinstance(output_dim, bool) or not isinstance(output_dim, int)
                                       or output_dim <= 0):
            raise ValueError(f"`output_dim` must be a positive int or None. Received: output_dim={output_dim!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"`dropout` must be a float in [0, 1). Received: dropout={dropout!r}")
        self.output_dim = output_dim
        self.activation = activation
        self.dropout = dropout
        self.dropout_layer = layers.Dropout(dropout)
        self.projection = None
        if output_dim is not None:
            self.projection = layers.Dense(output_dim, activation=activation, name="projection")

    def _check(self, input_shape):
        if not isinstance(input_shape, (list, tuple)) or not input_shape or not isinstance(input_shape[0],
                                                                                         (list, tuple)):
            raise ValueError(
                f"ConcatenationFusion takes a non-empty list of (batch, features) tensors. "
                f"Received: input_shape={input_shape!r}"
            )
        for shape in input_shape:
            if len(shape) != 2 or shape[-1] is None:
                raise ValueError(
                    "ConcatenationFusion takes feature vectors of shape (batch, features) with a known feature "
                    f"size; pool sequences first. Received: input_shape={input_shape!r}"
                )
        return sum(int(shape[-1]) for shape in input_shape)

    def build(self, input_shape):
        total = self._check(input_shape)
        if self.projection is not None:
            self.projection.build((input_shape[0][0], total))

    def call(self, inputs, training=None):
        z = ops.concatenate(list(inputs), axis=-1)  # (batch, d_1 + ... + d_M)
        if self.projection is None:
            return z
        return self.projection(self.dropout_layer(z, training=training))  # (batch, output_dim)

    def compute_output_shape(self, input_shape):
        total = self._check(input_shape)
        return (input_shape[0][0], self.output_dim if self.output_dim is not None else total)

    def get_config(self):
        config = super().get_config()
        config.update({"output_dim": self.output_dim, "activation": self.activation, "dropout": self.dropout})
        return config
