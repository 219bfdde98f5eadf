"""Feature-level fusion by concatenation (特征级融合, 拼接): the first fusion of the course and the default."""

from __future__ import annotations

import keras
from keras import layers, ops

from mmkeras._validation import check_fraction, check_optional_int
from mmkeras.fusion.base import FusionLayer


@keras.saving.register_keras_serializable(package="mmkeras")
class ConcatenationFusion(FusionLayer):
    """Feature-level fusion: concatenate the modalities' feature vectors, then mix them with one Dense layer.

    For feature vectors `z_1 (d_1), ..., z_M (d_M)` of M modalities (sequences are first averaged over
    their valid steps),

        Z = [z_1; z_2; ...; z_M]              (batch, d_1 + ... + d_M)
        H = act(W dropout(Z) + b)             (batch, output_dim)

    so every output unit can combine evidence from every modality. With one input the layer is a plain
    projection: unimodal baselines and the fused model share the same code. With `output_dim=None` it
    returns `dropout(Z)` itself.

    Args:
        output_dim: int or None. Size of `H`; `None` skips the projection. Defaults to `None`.
        activation: str or callable. Activation of the projection. Defaults to `"relu"`.
        dropout: float. Dropout applied to `Z` during training, in [0, 1). Defaults to `0.0`.
        **kwargs: passed on to `keras.layers.Layer` (e.g. `name`, `dtype`).

    Example:
    >>> fusion = ConcatenationFusion(output_dim=8)
    >>> tuple(fusion([keras.ops.ones((2, 3)), keras.ops.ones((2, 5))]).shape)
    (2, 8)

    References:
        Baltrusaitis, Ahuja, Morency. Multimodal Machine Learning: A Survey and Taxonomy. TPAMI 2019.
    """

    def __init__(self, output_dim=None, activation="relu", dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.output_dim = check_optional_int("output_dim", output_dim)
        self.activation = keras.activations.get(activation)
        self.dropout = check_fraction("dropout", dropout)
        self.dropout_layer = layers.Dropout(self.dropout, dtype=self.dtype_policy, name="dropout")
        self.projection = None
        if self.output_dim is not None:
            self.projection = layers.Dense(self.output_dim, activation=self.activation, dtype=self.dtype_policy,
                                           name="projection")

    def build(self, input_shape):
        shapes = self.pooled_shapes(self.check_input_shape(input_shape))
        if self.projection is not None:
            self.projection.build((shapes[0][0], sum(int(s[-1]) for s in shapes)))

    def call(self, features, padding_masks=None, training=None):
        vectors = self.pool(list(features), padding_masks)  # each (batch, d_m)
        z = ops.concatenate(vectors, axis=-1)  # (batch, d_1 + ... + d_M)
        z = self.dropout_layer(z, training=training)
        return z if self.projection is None else self.projection(z)  # (batch, output_dim)

    def compute_output_shape(self, input_shape):
        shapes = self.pooled_shapes(self.check_input_shape(input_shape))
        return (shapes[0][0], self.output_dim if self.output_dim is not None else sum(int(s[-1]) for s in shapes))

    def get_config(self):
        config = super().get_config()
        config.update({"output_dim": self.output_dim, "activation": keras.activations.serialize(self.activation),
                       "dropout": self.dropout})
        return config
