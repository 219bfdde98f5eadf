"""Every format under one folder: `export_all`, the one call a notebook or benchmark makes.

| format            | file                      | runtime                  | what it may contain                |
|-------------------|---------------------------|--------------------------|------------------------------------|
| SavedModel        | `saved_model/` + metadata | TensorFlow (Python, C++) | everything, string ops included    |
| TFLite float32    | `model_float32.tflite`    | TFLite / LiteRT (phones) | builtin numeric ops only, here     |
| TFLite float16    | `model_float16.tflite`    | TFLite                   | weights stored as float16          |
| TFLite int8       | `model_int8.tflite`       | TFLite                   | weights int8 (dynamic range)       |
| ONNX              | `model.onnx`              | onnxruntime (any lang.)  | numeric ops (no TF string ops)     |
"""

from __future__ import annotations

import pathlib

from mmkeras._validation import check_choice
from mmkeras.export.onnx import export_onnx
from mmkeras.export.preprocessing_split import split_preprocessing
from mmkeras.export.saved_model import export_saved_model, write_archive
from mmkeras.export.tflite import TFLITE_QUANTIZATIONS, export_tflite

FORMATS = ("saved_model", "tflite_float32", "tflite_float16", "tflite_int8", "onnx")
"""Every format `export_all` writes, in this order."""


def export_all(model, directory, schema=None, examples=None, formats=FORMATS) -> dict:
    """Exports a model to every format in `formats`, under one folder; returns `{format: path}`.

        directory/saved_model/          the model directory (`export_saved_model`, strings included)
        directory/preprocessor/         for a string model: the preprocessor as a SavedModel (strings -> ids)
        directory/model_float32.tflite  ... model_float16.tflite, model_int8.tflite (numeric core, batch 1)
        directory/model.onnx            the numeric core, dynamic batch

    Args:
        model: keras.Model. The trained model (a `FusionClassifier`).
        directory: str or Path. Created if needed.
        schema: DataSchema or None. Class names for the metadata.
        examples: MultimodalData or None. Examples to bundle with the SavedModel.
        formats: iterable of str. A subset of `FORMATS`. Defaults to all.
    """
    formats = tuple(formats)
    for fmt in formats:
        check_choice("formats", fmt, FORMATS)
    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    split = split_preprocessing(model)
    paths = {}
    if "saved_model" in formats:
        paths["saved_model"] = export_saved_model(model, directory / "saved_model", schema=schema, examples=examples)
    if split.preprocessor is not None and set(formats) - {"saved_model"}:
        write_archive(split.preprocessor, directory / "preprocessor")
        paths["preprocessor"] = directory / "preprocessor"
    for quantization in TFLITE_QUANTIZATIONS:
        if f"tflite_{quantization}" in formats:
            paths[f"tflite_{quantization}"] = export_tflite(split.core, directory / f"model_{quantization}.tflite",
                                                            quantization)
    if "onnx" in formats:
        paths["onnx"] = export_onnx(split.core, directory / "model.onnx")
    return paths
