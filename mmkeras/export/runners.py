"""Running an export on its own runtime: one runner per format, each `runner(features) -> {head: logits}`
with NumPy arrays in and out, so that every format can be checked against the Keras model the same way."""

from __future__ import annotations

import pathlib

import numpy as np

from mmkeras._validation import check_choice, check_int
from mmkeras.export.bundle import FORMATS
from mmkeras.export.saved_model import read_metadata


class SavedModelRunner:
    """Runs a model directory's `serving_default` signature: `runner(features) -> {head: logits}` (NumPy).

    Args:
        directory: a model directory from `export_saved_model`.
    """

    def __init__(self, directory):
        import tensorflow as tf

        self.directory = pathlib.Path(directory)
        self.metadata = read_metadata(self.directory)
        self._loaded = tf.saved_model.load(str(self.directory))
        self._signature = self._loaded.signatures[self.metadata["signature"]]

    def __call__(self, features: dict) -> dict:
        import tensorflow as tf

        tensors = {}
        for name, spec in self.metadata["inputs"].items():
            values = np.asarray(features[name])
            values = values.astype(str) if spec["dtype"] == "string" else values.astype(spec["dtype"])
            tensors[name] = tf.constant(values)
        return {head: value.numpy() for head, value in self._signature(**tensors).items()}


class TFLiteRunner:
    """Runs a `.tflite` file one example at a time (its batch size is 1): `runner(features) -> {head: logits}`.

    Args:
        path: the `.tflite` file from `export_tflite`.
        num_threads: int. Interpreter threads. Defaults to `1` (the single-example latency of a small device).
    """

    def __init__(self, path, num_threads: int = 1):
        import warnings

        import tensorflow as tf

        self.path = pathlib.Path(path)
        with warnings.catch_warnings():  # tf.lite.Interpreter's deprecation notice (LiteRT is its successor)
            warnings.simplefilter("ignore")
            self._interpreter = tf.lite.Interpreter(model_path=str(self.path), num_threads=num_threads)
        self._runner = self._interpreter.get_signature_runner("serving_default")
        self.input_details = self._runner.get_input_details()

    def __call__(self, features: dict) -> dict:
        n = len(next(iter(features.values())))
        outputs = []
        for i in range(n):
            example = {name: np.asarray(features[name][i:i + 1]).astype(detail["dtype"])
                       for name, detail in self.input_details.items()}
            outputs.append(self._runner(**example))
        return {head: np.concatenate([o[head] for o in outputs]) for head in outputs[0]}


class ONNXRunner:
    """Runs a `.onnx` file with onnxruntime on the CPU: `runner(features) -> {head: logits}`.

    Args:
        path: the `.onnx` file from `export_onnx`.
        num_threads: int. Intra-op threads. Defaults to `1`.
    """

    def __init__(self, path, num_threads: int = 1):
        import onnxruntime

        self.path = pathlib.Path(path)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = check_int("num_threads", num_threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name: i.type for i in self._session.get_inputs()}
        self._outputs = [o.name for o in self._session.get_outputs()]

    def __call__(self, features: dict) -> dict:
        dtypes = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32}
        feed = {name: np.asarray(features[name]).astype(dtypes.get(kind, np.float32))
                for name, kind in self._inputs.items()}
        return dict(zip(self._outputs, self._session.run(self._outputs, feed)))


def load_runner(fmt: str, path):
    """The runner of one exported format: `SavedModelRunner`, `TFLiteRunner` or `ONNXRunner`."""
    check_choice("fmt", fmt, FORMATS)
    if fmt == "saved_model":
        return SavedModelRunner(path)
    if fmt == "onnx":
        return ONNXRunner(path)
    return TFLiteRunner(path)
