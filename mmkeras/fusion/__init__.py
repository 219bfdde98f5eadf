"""Fusion layers: how the features of several modalities become one representation.

One module per family; every layer follows the contract of `mmkeras.fusion.base` (a list of per-modality
vectors or sequences, optional padding masks) and is registered in `FUSIONS` under a short name, so a model
can be built with `fusion="concat"` or with a layer object.
"""

from __future__ import annotations

from mmkeras.fusion.base import FusionLayer, masked_mean
from mmkeras.fusion.concatenation import ConcatenationFusion

FUSIONS = {"concat": ConcatenationFusion}
"""Short names of the fusion layers: `get_fusion("concat", output_dim=64)`."""


def get_fusion(fusion, **kwargs):
    """A fusion layer from a short name in `FUSIONS` (with `kwargs`), or the layer itself.

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
    return FUSIONS[fusion](**kwargs)


__all__ = ["FUSIONS", "ConcatenationFusion", "FusionLayer", "get_fusion", "masked_mean"]
