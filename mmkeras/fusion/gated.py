"""Gated fusion (门控融合): a gated multimodal unit that learns, per sample, how much to trust each modality."""

from __future__ import annotations

import keras
from keras import layers, ops

from mmkeras.fusion._projections import ProjectedFusion


@keras.saving.register_keras_serializable(package="mmkeras")
class GatedFusion(ProjectedFusion):
    """A gated multimodal unit for M modalities: `H = sum_m g_m ∘ tanh(W_m z_m)`, `g = softmax_m(G [z_1; ...; z_M])`.

    Every modality proposes `h_m = tanh(W_m z_m + b_m)`; a gate network looks at all the raw features and gives,
    for every unit, one weight per modality that sums to 1 over the modalities. With two modalities this is the
    GMU of Arevalo et al. (a sigmoid gate `z` and `H = z h_1 + (1 - z) h_2`), since a softmax over two logits is
    the sigmoid of their difference. A sample whose camera failed can lean on the other witnesses.

    Args:
        width: int. Size of `H`. Defaults to `64`.
        activation: str or None. Activation of the proposals. Defaults to `"tanh"`.
        dropout: float. Dropout on each proposal, in [0, 1). Defaults to `0.0`.
        normalize: bool. Layer-normalize each projection before its activation, `act(LN(W_m z_m + b_m))`.
            Defaults to `False`.
        **kwargs: passed on to `keras.layers.Layer`.

    Example:
    >>> tuple(GatedFusion(8)([keras.ops.ones((2, 3)), keras.ops.ones((2, 5))]).shape)
    (2, 8)

    References:
        Arevalo, Solorio, Montes-y-Gomez, Gonzalez. Gated Multimodal Units for Information Fusion. ICLR-W 2017.
    """

    default_activation = "tanh"

    def build_combination(self, shapes):
        self.num_modalities = len(shapes)
        self.gate = layers.Dense(self.width * len(shapes), dtype=self.dtype_policy, name="gate")
        self.gate.build((shapes[0][0], sum(int(s[-1]) for s in shapes)))

    def gates(self, features, padding_masks=None):
        """The gate values `(batch, M, width)`: how much each modality contributes to each unit."""
        self.ensure_built(features, padding_masks)
        vectors = self.pool(list(features), padding_masks)
        logits = self.gate(ops.concatenate(vectors, axis=-1))  # (batch, M * width)
        logits = ops.reshape(logits, (-1, self.num_modalities, self.width))  # (batch, M, width)
        return ops.softmax(logits, axis=1)  # sums to 1 over the modalities

    def call(self, features, padding_masks=None, training=None):
        proposals = ops.stack(self.project(features, padding_masks, training), axis=1)  # (batch, M, width)
        return ops.sum(self.gates(features, padding_masks) * proposals, axis=1)  # (batch, width)
