"""Deployment (部署): export a trained fused model to SavedModel, TFLite (float32, float16, int8) and ONNX, and
check every export against the Keras model it came from.

One model, several formats, each for its own runtime (the table is in `mmkeras.export.bundle`); one job per file:

    graph.py                what exporters read off a model: named inputs, heads, every nested layer
    preprocessing_split.py  split_preprocessing: strings -> token ids (preprocessor) | numeric core
    saved_model.py          export_saved_model + metadata.json (the model directory of `mmkeras serve`)
    spectrogram.py          PortableMelSpectrogram: the mel front end in a form TFLite and ONNX convert
    tflite.py               export_tflite: float32, float16, int8, batch size 1
    onnx.py                 export_onnx with tf2onnx, dynamic batch
    bundle.py               export_all: every format under one folder
    runners.py              SavedModelRunner, TFLiteRunner, ONNXRunner: `runner(features) -> {head: logits}`
    parity.py               keras_logits, compare_logits, parity_report: every format against Keras
    pruning.py              copy_model, prune_weights
    bench.py                size_on_disk, gzip_size, latency_ms, environment

`import mmkeras.export` loads neither TensorFlow nor Keras (`mmkeras serve` reads `metadata.json` first); they
are imported when a model is exported or run. `PortableMelSpectrogram` and the other names of `spectrogram.py`
subclass a Keras layer, so they are imported on first use.

Example:
>>> describe_inputs({"image": ((None, 28, 28, 1), "float32")})
{'image': {'shape': [28, 28, 1], 'dtype': 'float32'}}
"""

from __future__ import annotations

import importlib

from mmkeras.export.bench import environment, gzip_size, latency_ms, size_on_disk
from mmkeras.export.bundle import FORMATS, export_all
from mmkeras.export.graph import all_layers, as_output_dict, describe_inputs, head_names, input_specs, tensor_specs
from mmkeras.export.onnx import export_onnx
from mmkeras.export.parity import (
    FLOAT_FORMATS,
    FLOAT_TOLERANCE,
    MIN_TOP1_AGREEMENT,
    compare_logits,
    keras_logits,
    parity_report,
)
from mmkeras.export.preprocessing_split import TOKEN_IDS_SUFFIX, SplitModel, split_preprocessing
from mmkeras.export.pruning import copy_model, prune_weights
from mmkeras.export.runners import ONNXRunner, SavedModelRunner, TFLiteRunner, load_runner
from mmkeras.export.saved_model import (
    EXAMPLES_FILE,
    METADATA_FILE,
    METADATA_VERSION,
    export_saved_model,
    read_metadata,
    write_archive,
)
from mmkeras.export.tflite import TFLITE_QUANTIZATIONS, export_tflite

_SPECTROGRAM_NAMES = ("PortableMelSpectrogram", "QUANTIZATION_MIN_ELEMENTS", "mel_in_float_blocks", "stft_magnitude",
                      "with_portable_spectrograms")


__all__ = [
    "EXAMPLES_FILE", "FLOAT_FORMATS", "FLOAT_TOLERANCE", "FORMATS", "METADATA_FILE", "METADATA_VERSION",
    "MIN_TOP1_AGREEMENT", "ONNXRunner", "SavedModelRunner", "SplitModel", "TFLITE_QUANTIZATIONS", "TFLiteRunner",
    "TOKEN_IDS_SUFFIX", "all_layers", "as_output_dict", "compare_logits", "copy_model", "describe_inputs",
    "environment", "export_all", "export_onnx", "export_saved_model", "export_tflite", "gzip_size", "head_names",
    "input_specs", "keras_logits", "latency_ms", "load_runner", "parity_report", "prune_weights", "read_metadata",
    "size_on_disk", "split_preprocessing", "tensor_specs", "write_archive", *_SPECTROGRAM_NAMES,
]


def __getattr__(name):
    """The names of `spectrogram.py`, imported with Keras on first use (PEP 562)."""
    if name in _SPECTROGRAM_NAMES:
        value = getattr(importlib.import_module("mmkeras.export.spectrogram"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mmkeras.export' has no attribute {name!r}")
