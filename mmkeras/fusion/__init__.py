"""Fusion layers: how the features of several modalities become one representation.

One module per family; every layer follows the contract of `mmkeras.fusion.base` (a list of per-modality
vectors or sequences, optional padding masks) and is registered in `FUSIONS` under a short name, so a model
can be built with `fusion="gated"` or with a layer object.

    concatenation.py  ConcatenationFusion            拼接 / 特征级融合
    elementwise.py    SumFusion, ProductFusion       逐元素相加 / 相乘
    bilinear.py       BilinearFusion (MLB)           双线性池化
    tensor.py         TensorFusion (TFN), LowRankTensorFusion (LMF)   张量融合
    gated.py          GatedFusion (GMU)              门控融合
    attention.py      CrossModalAttention            跨模态注意力
    transformer.py    MultimodalTransformerFusion    多模态 Transformer
    modality_dropout.py  ModalityDropout, ModalityPresence  模态丢弃 (coping with a missing modality)
"""

from __future__ import annotations

import dataclasses

from mmkeras.fusion.attention import CrossModalAttention
from mmkeras.fusion.base import FusionLayer, masked_mean
from mmkeras.fusion.bilinear import BilinearFusion
from mmkeras.fusion.concatenation import ConcatenationFusion
from mmkeras.fusion.elementwise import ProductFusion, SumFusion
from mmkeras.fusion.gated import GatedFusion
from mmkeras.fusion.modality_dropout import ModalityDropout, ModalityPresence
from mmkeras.fusion.tensor import LowRankTensorFusion, TensorFusion
from mmkeras.fusion.transformer import MultimodalTransformerFusion


@dataclasses.dataclass(frozen=True)
class FusionEntry:
    """One fusion strategy: the layer class, its defaults, what it reads, and one line on the idea."""

    layer: type
    defaults: dict
    reads: str  # "vectors" (sequences are averaged first) or "sequences" (tokens and their padding masks)
    summary: str

    def make(self, **kwargs):
        """A new layer: the registered defaults, overridden by `kwargs`."""
        return self.layer(**(self.defaults | kwargs))


FUSIONS = {
    "concat": FusionEntry(ConcatenationFusion, {"output_dim": 64, "dropout": 0.2}, "vectors",
                          "concatenate, then one Dense layer: H = ReLU(W [z_1; ...; z_M] + b)"),
    "sum": FusionEntry(SumFusion, {"width": 64}, "vectors",
                       "project each modality to one width, then add: H = sum_m ReLU(W_m z_m)"),
    "product": FusionEntry(ProductFusion, {"width": 64}, "vectors",
                           "project, then multiply element-wise: H = prod_m tanh(W_m z_m)"),
    "bilinear": FusionEntry(BilinearFusion, {"rank": 64, "output_dim": 64}, "vectors",
                            "low-rank bilinear pooling (MLB): H = P^T (tanh(U_1 z_1) ∘ ... ∘ tanh(U_M z_M))"),
    "tensor": FusionEntry(TensorFusion, {"output_dim": 64, "projection_dim": 6}, "vectors",
                          "tensor fusion (TFN): a Dense layer on the outer product of [z_m; 1]"),
    "low_rank_tensor": FusionEntry(LowRankTensorFusion, {"output_dim": 64, "rank": 4}, "vectors",
                                   "low-rank tensor fusion (LMF): sum_r prod_m [z_m; 1] W_m^(r)"),
    "gated": FusionEntry(GatedFusion, {"width": 64}, "vectors",
                         "gated multimodal unit: H = sum_m g_m ∘ tanh(W_m z_m), g = softmax over modalities"),
    "cross_attention": FusionEntry(CrossModalAttention, {"width": 64, "num_heads": 2}, "sequences",
                                   "queries from one modality, keys and values from the others"),
    "transformer": FusionEntry(MultimodalTransformerFusion, {"width": 64, "num_heads": 2, "intermediate_dim": 128},
                               "sequences", "self-attention over every modality's tokens plus modality embeddings"),
}
"""The fusion strategies by short name: `FUSIONS["gated"].make(width=32)` or `get_fusion("gated", width=32)`."""


def get_fusion(fusion, **kwargs):
    """A fusion layer from a short name in `FUSIONS` (its defaults, overridden by `kwargs`), or the layer itself.

    Example:
    >>> get_fusion("concat", output_dim=16).output_dim
    16
    """
    import keras

    if isinstance(fusion, keras.layers.Layer):
        if kwargs:
            raise ValueError(f"Pass arguments to the fusion layer itself, not beside it. Received: {sorted(kwargs)}")
        return fusion
    if fusion not in FUSIONS:
        raise ValueError(f"`fusion` must be a keras Layer or one of {sorted(FUSIONS)}. Received: fusion={fusion!r}")
    return FUSIONS[fusion].make(**kwargs)


__all__ = [
    "FUSIONS",
    "BilinearFusion",
    "ConcatenationFusion",
    "CrossModalAttention",
    "FusionEntry",
    "FusionLayer",
    "GatedFusion",
    "LowRankTensorFusion",
    "ModalityDropout",
    "ModalityPresence",
    "MultimodalTransformerFusion",
    "ProductFusion",
    "SumFusion",
    "TensorFusion",
    "get_fusion",
    "masked_mean",
]
