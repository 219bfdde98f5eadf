"""Element-wise fusions: project every modality to a common width, then add or multiply (逐元素融合)."""

from __future__ import annotations

import functools
import operator

import keras

from mmkeras.fusion._projections import ProjectedFusion


@keras.saving.register_keras_serializable(package="mmkeras")
class SumFusion(ProjectedFusion):
    """Sum fusion: `H = sum_m act(W_m z_m + b_m)`.

    Each modality is projected to the same `width` so that the vectors can be added; the sum is an OR of
    evidence: a unit fires when any modality supports it, so a missing (zeroed) modality leaves the others'
    contributions intact.

    Args:
        width: int. The common width, and the size of `H`. Defaults to `64`.
        activation: str or None. Activation of the projections. Defaults to `"relu"`.
        dropout: float. Dropout on each projected vector, in [0, 1). Defaults to `0.0`.
        normalize: bool. Layer-normalize each projection before its activation, `act(LN(W_m z_m + b_m))`.
            Defaults to `False`.
        **kwargs: passed on to `keras.layers.Layer`.

    Example:
    >>> tuple(SumFusion(8)([keras.ops.ones((2, 3)), keras.ops.ones((2, 5))]).shape)
    (2, 8)
    """

    def combine(self, projected, training=None):
        return functools.reduce(operator.add, projected)  # (batch, width)


@keras.saving.register_keras_serializable(package="mmkeras")
class ProductFusion(ProjectedFusion):
    """Element-wise (Hadamard) product fusion: `H = prod_m tanh(W_m z_m + b_m)` (乘法融合).

    Multiplication is an AND: a unit is large only when every modality agrees, which lets one layer express
    interactions ("cross AND right") that a sum cannot. `tanh` keeps each factor in (-1, 1); with ReLU, one
    zero factor would silence the unit and its gradient.

    Args:
        width: int. The common width, and the size of `H`. Defaults to `64`.
        activation: str or None. Activation of the projections. Defaults to `"tanh"`.
        dropout: float. Dropout on each projected vector, in [0, 1). Defaults to `0.0`.
        normalize: bool. Layer-normalize each projection before its activation, `act(LN(W_m z_m + b_m))`.
            Defaults to `False`.
        **kwargs: passed on to `keras.layers.Layer`.

    Example:
    >>> tuple(ProductFusion(8)([keras.ops.ones((2, 3)), keras.ops.ones((2, 5))]).shape)
    (2, 8)
    """

    default_activation = "tanh"

    def combine(self, projected, training=None):
        return functools.reduce(operator.mul, projected)  # (batch, width)
