"""Missing modalities (模态缺失): measure how a model copes when one is removed.

The layers that teach a model to cope, `ModalityDropout` and `ModalityPresence`, sit between the encoders and
the fusion, so they live in `mmkeras.fusion.modality_dropout` (re-exported here).

* `without_modality(data, name)`: the same samples with one modality removed: zeros for numbers, the empty
  string for text (what a dead camera or an empty caption delivers).
* `evaluate_missing(model, data)`: the accuracy with each modality removed in turn.
"""

from __future__ import annotations

import numpy as np

from mmkeras.data.pipeline import as_multimodal
from mmkeras.data.schema import MultimodalData
from mmkeras.fusion.modality_dropout import ModalityDropout, ModalityPresence
from mmkeras.training import evaluate_classifier, model_modalities


def without_modality(data, name: str) -> MultimodalData:
    """The same samples with modality `name` removed: zeros for numbers, `""` for text.

    Example:
    >>> from mmkeras.data import make_synthetic
    >>> blind = without_modality(make_synthetic(4), "image")
    >>> float(blind.features["image"].max())
    0.0
    """
    data = as_multimodal(data)
    spec = data.schema.modality(name)
    features = dict(data.features)
    if spec.dtype == "string":
        features[name] = np.full(len(data), "", dtype=object)
    else:
        features[name] = np.zeros_like(data.features[name])
    return MultimodalData(features, data.labels, data.meta, data.schema)


def evaluate_missing(model, data, modalities=None, head: str | None = None) -> dict:
    """Accuracy of `model` on `data` with nothing removed (`"none"`) and with each modality removed in turn.

    Returns:
        `{"none": accuracy, modality: accuracy, ...}`.
    """
    data = as_multimodal(data)
    names = list(modalities) if modalities is not None else model_modalities(model)
    results = {"none": evaluate_classifier(model, data, head=head)["accuracy"]}
    for name in names:
        results[name] = evaluate_classifier(model, without_modality(data, name), head=head)["accuracy"]
    return results


__all__ = ["ModalityDropout", "ModalityPresence", "evaluate_missing", "without_modality"]
