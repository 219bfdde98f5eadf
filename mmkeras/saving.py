"""Loading a saved model anywhere: `mmkeras.load_model(path)`.

Keras finds a custom class of a `.keras` file in its registry of serializable objects, and a class is in that
registry once the module that defines it has been imported. `import mmkeras` stays light (it imports no
TensorFlow), so it registers nothing; `load_model` first imports every module of the package that registers
classes, then calls `keras.saving.load_model`, whose `safe_mode=True` stays on.

Example:
>>> import tempfile, pathlib
>>> from mmkeras.models import build_fusion_classifier
>>> path = pathlib.Path(tempfile.mkdtemp()) / "audio.keras"
>>> build_fusion_classifier(["audio"]).save(path)
>>> type(load_model(path)).__name__
'FusionClassifier'
"""

from __future__ import annotations

import importlib

REGISTERING_MODULES = (
    "mmkeras.encoders",
    "mmkeras.fusion",
    "mmkeras.losses",
    "mmkeras.models",
    "mmkeras.ensemble",
    "mmkeras.contrastive",
    "mmkeras.matching",
    "mmkeras.captioning",
    "mmkeras.generative",
    "mmkeras.pretrain",
    "mmkeras.preprocessing",
    "mmkeras.export.spectrogram",
)
"""Every module whose import registers mmkeras's serializable classes (a test checks the list is complete)."""


def register_all() -> None:
    """Imports every module that registers mmkeras classes with `keras.saving.register_keras_serializable`."""
    for name in REGISTERING_MODULES:
        importlib.import_module(name)


def load_model(path, **kwargs):
    """`keras.saving.load_model(path, **kwargs)` with every mmkeras class registered first.

    Args:
        path: str or path-like. A `.keras` file saved with `model.save`.
        **kwargs: passed on to `keras.saving.load_model` (`compile=False`, ...; `safe_mode` stays `True`
            unless you say otherwise, so a file cannot run arbitrary Python code).

    Returns:
        The model, compiled as it was saved (a `FusionClassifier`, `CLIPModel`, ... or any Keras model).
    """
    import keras

    register_all()
    return keras.saving.load_model(path, **kwargs)
