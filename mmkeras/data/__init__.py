"""Data: the embedded synthetic dataset, its tf.data pipeline, and (for real datasets) checksummed downloads."""

from mmkeras.data.pipeline import to_dataset
from mmkeras.data.synthetic import (
    ATTRIBUTES,
    CLASS_NAMES,
    LABEL_KEYS,
    MODALITIES,
    NUM_CLASSES,
    OBSERVES,
    VOCABULARY,
    MultimodalData,
    check_modalities,
    delivered,
    load_splits,
    make_synthetic,
    story_ceiling,
)

__all__ = [
    "ATTRIBUTES",
    "CLASS_NAMES",
    "LABEL_KEYS",
    "MODALITIES",
    "NUM_CLASSES",
    "OBSERVES",
    "VOCABULARY",
    "MultimodalData",
    "check_modalities",
    "delivered",
    "load_splits",
    "make_synthetic",
    "story_ceiling",
    "to_dataset",
]
