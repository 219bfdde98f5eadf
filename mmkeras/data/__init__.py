"""Data: the embedded synthetic dataset, its tf.data pipeline, and (for real datasets) checksummed downloads."""

from mmkeras.data.pipeline import to_dataset
from mmkeras.data.synthetic import (
    CLASS_NAMES,
    LABEL_KEYS,
    MODALITIES,
    NUM_CLASSES,
    VOCABULARY,
    MultimodalData,
    check_modalities,
    load_splits,
    make_synthetic,
)

__all__ = [
    "CLASS_NAMES",
    "LABEL_KEYS",
    "MODALITIES",
    "NUM_CLASSES",
    "VOCABULARY",
    "MultimodalData",
    "check_modalities",
    "load_splits",
    "make_synthetic",
    "to_dataset",
]
