"""mmkeras: the helper package of a Keras 3 course on multimodal deep learning.

The course notebooks import from here; every reusable piece lives in one small module:

    mmkeras.config      is_smoke(), seed_everything()
    mmkeras.data        the embedded "moving toys" dataset, its tf.data pipeline, checksummed downloads
    mmkeras.encoders    one feature extractor per modality (text, image, audio, video)
    mmkeras.fusion      fusion layers (ConcatenationFusion first)
    mmkeras.models      encoders + fusion + heads: build_fusion_classifier
    mmkeras.training    fit_classifier / evaluate_classifier: one recipe for fair comparisons
    mmkeras.metrics     confusion matrix, precision, recall, F1
    mmkeras.viz         the plots the notebooks show
    mmkeras.testing     the checks every layer and model must pass
    mmkeras.quickstart  the main job behind `mmkeras quickstart`
"""

from mmkeras import config, data, encoders, fusion, metrics, models, training, viz
from mmkeras.config import is_smoke, seed_everything
from mmkeras.data import load_splits, make_synthetic, to_dataset
from mmkeras.fusion import ConcatenationFusion
from mmkeras.models import build_fusion_classifier
from mmkeras.training import evaluate_classifier, fit_classifier

__version__ = "0.1.0"

__all__ = [
    "ConcatenationFusion",
    "build_fusion_classifier",
    "config",
    "data",
    "encoders",
    "evaluate_classifier",
    "fit_classifier",
    "fusion",
    "is_smoke",
    "load_splits",
    "make_synthetic",
    "metrics",
    "models",
    "seed_everything",
    "to_dataset",
    "training",
    "viz",
]
