"""Tensor fusion (张量融合): every product of one feature per modality, in full (TFN) or in low rank (LMF)."""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from mmkeras._validation import check_fraction, check_int, check_optional_int
from mmkeras.fusion.base import FusionLayer


def _with_one(z):
    """`[z; 1]`: the appended 1 keeps every lower-order term (each modality alone, each pair ...) in the product."""
    return ops.concatenate([z, ops.ones_like(z[:, :1])], axis=-1)  # (batch, d + 1)


@keras.saving.register_keras_serializable(package="mmkeras")
class TensorFusion(FusionLayer):
    """Tensor fusion network: `H = act(W vec([z_1; 1] ⊗ [z_2; 1] ⊗ ... ⊗ [z_M; 1]) + b)`.

    The outer product holds every product of one feature per modality, so a single linear layer on it sees all
    unimodal, bimodal, ... M-modal interactions (Zadeh et al. 2017). Its size is `prod_m (d_m + 1)`: four
    64-dimensional modalities give 65^4 ≈ 18 million entries. `projection_dim` first maps every modality to a
    few units (8 gives 9^4 = 6561); the layer refuses a product larger than `max_size` with a clear error.

    Args:
        output_dim: int. Size of `H`. Defaults to `64`.
        projection_dim: int or None. Project each modality to this width first (`tanh`). Defaults to `8`.
        activation: str. Activation of the output layer. Defaults to `"relu"`.
        dropout: float. Dropout on the flattened tensor, in [0, 1). Defaults to `0.0`.
        max_size: int. The largest `prod_m (d_m + 1)` accepted. Defaults to `65536`.
        **kwargs: passed on to `keras.layers.Layer`.

    Example:
    >>> tuple(TensorFusion(4, projection_dim=None)([keras.ops.ones((2, 2)), keras.ops.ones((2, 3))]).shape)
    (2, 4)

    References:
        Zadeh, Chen, Poria, Cambria, Morency. Tensor Fusion Network for Multimodal Sentiment Analysis. EMNLP 2017.
    """

    def __init__(self, output_dim=64, projection_dim=8, activation="relu", dropout=0.0, max_size=65536, **kwargs):
        super().__init__(**kwargs)
        self.output_dim = check_int("output_dim", output_dim)
        self.projection_dim = check_optional_int("projection_dim", projection_dim)
        self.activation = keras.activations.get(activation)
        self.dropout = check_fraction("dropout", dropout)
        self.max_size = check_int("max_size", max_size)
        self.dropout_layer = layers.Dropout(self.dropout, dtype=self.dtype_policy, name="dropout")
        self.output_layer = layers.Dense(self.output_dim, activation=self.activation, dtype=self.dtype_policy,
                                         name="output")

    def tensor_size(self, shapes) -> int:
        widths = [self.projection_dim or int(s[-1]) for s in shapes]
        return math.prod(w + 1 for w in widths)

    def build(self, input_shape):
        shapes = self.pooled_shapes(self.check_input_shape(input_shape))
        size = self.tensor_size(shapes)
        if size > self.max_size:
            raise ValueError(
                f"TensorFusion's outer product would have prod(d_m + 1) = {size} entries per sample for feature "
                f"sizes {[int(s[-1]) for s in shapes]}, more than max_size={self.max_size}. Pass a smaller "
                f"projection_dim (Received: projection_dim={self.projection_dim}), or use LowRankTensorFusion."
            )
        self.projections = []
        if self.projection_dim is not None:
            for index, shape in enumerate(shapes):
                projection = layers.Dense(self.projection_dim, activation="tanh", dtype=self.dtype_policy,
                                          name=f"projection_{index}")
                projection.build(shape)
                self.projections.append(projection)
        self.output_layer.build((shapes[0][0], size))

    def outer_product(self, features, padding_masks=None):
        """`vec([z_1; 1] ⊗ ... ⊗ [z_M; 1])`: `(batch, prod_m (d_m + 1))`."""
        self.ensure_built(features, padding_masks)
        vectors = self.pool(list(features), padding_masks)
        if self.projections:
            vectors = [p(v) for p, v in zip(self.projections, vectors)]
        tensor = _with_one(vectors[0])  # (batch, d_1 + 1)
        for z in vectors[1:]:
            z = _with_one(z)  # (batch, d_m + 1)
            tensor = ops.reshape(tensor[:, :, None] * z[:, None, :], (-1, tensor.shape[-1] * z.shape[-1]))
        return tensor

    def call(self, features, padding_masks=None, training=None):
        tensor = self.dropout_layer(self.outer_product(features, padding_masks), training=training)
        return self.output_layer(tensor)  # (batch, output_dim)

    def compute_output_shape(self, input_shape):
        shapes = self.check_input_shape(input_shape)
        return (shapes[0][0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update({"output_dim": self.output_dim, "projection_dim": self.projection_dim,
                       "activation": keras.activations.serialize(self.activation), "dropout": self.dropout,
                       "max_size": self.max_size})
        return config


@keras.saving.register_keras_serializable(package="mmkeras")
class LowRankTensorFusion(FusionLayer):
    """Low-rank multimodal fusion (LMF): tensor fusion without ever building the tensor.

    The weight tensor of `TensorFusion` is written as a sum of `rank` products of one factor per modality,
    `W = sum_r w_r^(1) ⊗ ... ⊗ w_r^(M)`, which turns `W vec(⊗_m [z_m; 1])` into

        H = act( sum_r lambda_r  prod_m ([z_m; 1] W_m^(r)) + b )       W_m^(r): (d_m + 1) x output_dim

    (Liu et al. 2018): linear in every modality's size instead of exponential in their number. The factors
    `W_m` (shape `(rank, d_m + 1, output_dim)`) and the rank weights `lambda` are trainable weights of this
    layer (MultiBench keeps its factors in a plain Python list, so they are never trained).

    Args:
        output_dim: int. Size of `H`. Defaults to `64`.
        rank: int. Number of rank-one terms. Defaults to `4`.
        activation: str. Activation of the output. Defaults to `"relu"`.
        **kwargs: passed on to `keras.layers.Layer`.

    Example:
    >>> tuple(LowRankTensorFusion(4, rank=2)([keras.ops.ones((2, 2)), keras.ops.ones((2, 3))]).shape)
    (2, 4)

    References:
        Liu, Shen, Lakshminarasimhan, Liang, Zadeh, Morency. Efficient Low-rank Multimodal Fusion with
        Modality-Specific Factors. ACL 2018.
    """

    def __init__(self, output_dim=64, rank=4, activation="relu", **kwargs):
        super().__init__(**kwargs)
        self.output_dim = check_int("output_dim", output_dim)
        self.rank = check_int("rank", rank)
        self.activation = keras.activations.get(activation)

    def build(self, input_shape):
        shapes = self.pooled_shapes(self.check_input_shape(input_shape))
        self.factors = [
            self.add_weight(shape=(self.rank, int(s[-1]) + 1, self.output_dim), initializer="glorot_uniform",
                            name=f"factor_{index}")
            for index, s in enumerate(shapes)
        ]
        self.rank_weights = self.add_weight(shape=(self.rank,), initializer="glorot_uniform", name="rank_weights")
        self.bias = self.add_weight(shape=(self.output_dim,), initializer="zeros", name="bias")

    def call(self, features, padding_masks=None, training=None):
        vectors = self.pool(list(features), padding_masks)
        if len(vectors) != len(self.factors):
            raise ValueError(f"LowRankTensorFusion was built for {len(self.factors)} modalities. "
                             f"Received: {len(vectors)} inputs")
        product = None
        for z, factor in zip(vectors, self.factors):
            term = ops.einsum("bd,rdo->bro", _with_one(z), factor)  # (batch, rank, output_dim)
            product = term if product is None else product * term
        fused = ops.einsum("bro,r->bo", product, self.rank_weights) + self.bias  # (batch, output_dim)
        return self.activation(fused)

    def compute_output_shape(self, input_shape):
        shapes = self.check_input_shape(input_shape)
        return (shapes[0][0], self.output_dim)

    def get_config(self):
        config = super().get_config()
        config.update({"output_dim": self.output_dim, "rank": self.rank,
                       "activation": keras.activations.serialize(self.activation)})
        return config
