"""Low-rank bilinear pooling (双线性池化): multimodal low-rank bilinear attention's fusion (MLB)."""

from __future__ import annotations

import functools
import operator

import keras
from keras import layers

from mmkeras._validation import check_int
from mmkeras.fusion._projections import ProjectedFusion


@keras.saving.register_keras_serializable(package="mmkeras")
class BilinearFusion(ProjectedFusion):
    """Low-rank bilinear pooling, generalised to M modalities: `H = P^T (tanh(U_1^T z_1) ∘ ... ∘ tanh(U_M^T z_M))`.

    A full bilinear map `H_k = z_1^T W_k z_2` needs a `d_1 x d_2` matrix per output unit; writing
    `W_k = U diag(P_k) V^T` with rank `rank` (Kim et al. 2017) turns it into the Hadamard product of two
    projections followed by a linear map `P`, with `(d_1 + d_2) rank + rank output_dim` weights instead of
    `d_1 d_2 output_dim`. With M modalities, the product runs over all M projections.

    Args:
        rank: int. Width of the projections (the rank of the factorisation). Defaults to `64`.
        output_dim: int. Size of `H`. Defaults to `64`.
        activation: str or None. Activation of the projections. Defaults to `"tanh"`.
        dropout: float. Dropout on each projection, in [0, 1). Defaults to `0.0`.
        normalize: bool. Layer-normalize each projection before its activation, `act(LN(W_m z_m + b_m))`.
            Defaults to `False`.
        **kwargs: passed on to `keras.layers.Layer`.

    Example:
    >>> tuple(BilinearFusion(rank=16, output_dim=8)([keras.ops.ones((2, 3)), keras.ops.ones((2, 5))]).shape)
    (2, 8)

    References:
        Kim, On, Lim, Kim, Ha, Zhang. Hadamard Product for Low-rank Bilinear Pooling. ICLR 2017.
    """

    default_activation = "tanh"

    def __init__(self, rank=64, output_dim=64, activation=None, dropout=0.0, **kwargs):
        super().__init__(width=rank, activation=activation, dropout=dropout, **kwargs)
        self.output_dim = check_int("output_dim", output_dim)
        self.output_projection = layers.Dense(self.output_dim, dtype=self.dtype_policy, name="output_projection")

    @property
    def rank(self) -> int:
        return self.width

    def build_combination(self, shapes):
        self.output_projection.build((shapes[0][0], self.width))

    def combine(self, projected, training=None):
        joint = functools.reduce(operator.mul, projected)  # (batch, rank): the Hadamard product
        return self.output_projection(joint)  # (batch, output_dim): P^T (...)

    def output_size(self) -> int:
        return self.output_dim

    def get_config(self):
        config = super().get_config()
        config["rank"] = config.pop("width")
        config["output_dim"] = self.output_dim
        return config
