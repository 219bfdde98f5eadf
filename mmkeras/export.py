r"""Deployment (部署): export a trained fused model to SavedModel, TFLite (float32, float16, int8) and ONNX, and
check every export against the Keras model it came from.

One model, several formats, each for its own runtime:

| format            | file                      | runtime                  | what it may contain                |
|-------------------|---------------------------|--------------------------|------------------------------------|
| SavedModel        | `saved_model/` + metadata | TensorFlow (Python, C++) | everything, string ops included    |
| TFLite float32    | `model_float32.tflite`    | TFLite / LiteRT (phones) | builtin numeric ops only, here     |
| TFLite float16    | `model_float16.tflite`    | TFLite                   | weights stored as float16          |
| TFLite int8       | `model_int8.tflite`       | TFLite                   | weights int8 (dynamic range)       |
| ONNX              | `model.onnx`              | onnxruntime (any lang.)  | numeric ops (no TF string ops)     |

**Preprocessing and numeric core.** TFLite's builtin ops and ONNX cannot run TensorFlow's string ops, so a model
that reads captions (its text encoder starts with a `TextVectorization` layer) is split by `split_preprocessing`
into a *preprocessor* (strings -> token ids, runs in TensorFlow or Python) and a *numeric core* (token ids in,
named `"<modality>_token_ids"`; every other input unchanged). Both share the trained layers: no weight is copied.
The SavedModel keeps the whole model, strings included.

**What each converter makes of the audio encoder.** The audio encoder computes a log-mel spectrogram inside the
model (`keras.layers.MelSpectrogram`: framing, Hann window, `tf.signal.rfft`, a mel matrix, `log10`). Measured
with TensorFlow 2.21 and tf2onnx 1.17: TFLite's converter lowers `RFFT` to its builtin `RFFT2D`, so no
`SELECT_TF_OPS` (Flex) is needed for it; what does need care is the GRU, whose `while` loop over frames needs a
*static batch size*: with a `None` batch, the converter keeps TensorList ops that only the Flex delegate runs
(and the TFLite interpreter in TensorFlow's pip wheel cannot load Flex ops). So the TFLite files are converted
with batch size 1, the single-example shape of an app. tf2onnx, on the other hand, converts `RFFT` only when a
`ComplexAbs` reads it, while Keras takes `tf.math.real` / `tf.math.imag`: for ONNX the spectrogram's DFT is
written as two matrix products with constant cosine and sine matrices (`_stft_magnitude`: same numbers, no
complex op), and the GRU loop keeps a dynamic batch. Int8 quantization would round the mel filter bank (a
constant matrix) to int8 and cost up to 13 dB on quiet bands (measured), so for int8 the mel matrix is applied
in blocks too small for the quantizer (`_mel_in_float_blocks`): the front end stays float32.

**One trap, avoided.** Keras's `model.export()` traces `model(inputs)` *without* `training=False`, and Keras 3's
random augmentation layers (`RandomTranslation`, `RandomZoom`, in the course's image encoder) default to
`training=True`: the exported model translates and zooms every image it serves. Measured with Keras 3.15.1:
the course's AV-MNIST model exported that way gave logits up to 0.02 away from `model(x, training=False)`,
different at every call (a one-layer `RandomTranslation` model: 0.58 apart between two identical calls).
`export_saved_model` therefore builds the serving endpoint itself with `keras.export.ExportArchive`, the class
`model.export()` uses, around `model(inputs, training=False)`.

Parity (一致性) is measured on data, per format: for float formats the largest absolute difference of the
logits, `max_i,k |z_ik^export - z_ik^keras|`, should be at most `FLOAT_TOLERANCE` = 1e-4; for quantized ones the
top-1 agreement `(1/N) sum_i [argmax_k z_ik^export = argmax_k z_ik^keras]` should be at least
`MIN_TOP1_AGREEMENT` = 99 %. float16 counts as quantized here: half-precision weights move the logits by
about 1e-3 to 1e-2 (measured), far above 1e-4, while float32 SavedModel, TFLite and ONNX stay within ~1e-6.
`parity_report` returns both numbers for every format.

Example:
>>> describe_inputs({"image": ((None, 28, 28, 1), "float32")})
{'image': {'shape': [28, 28, 1], 'dtype': 'float32'}}
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import shutil
import tempfile
import time

import numpy as np

from mmkeras._validation import check_choice, check_fraction, check_int

METADATA_FILE = "metadata.json"
"""The description of a SavedModel export, written inside its directory (see `export_saved_model`)."""
EXAMPLES_FILE = "examples.npz"
"""Optional bundled examples of a SavedModel export: one array per input, plus `label` (see `export_saved_model`)."""
METADATA_VERSION = 1
TFLITE_QUANTIZATIONS = ("float32", "float16", "int8")
FORMATS = ("saved_model", "tflite_float32", "tflite_float16", "tflite_int8", "onnx")
"""Every format `export_all` writes, in this order."""
FLOAT_FORMATS = ("saved_model", "tflite_float32", "onnx")
"""Formats that keep float32 weights: their logits must match the Keras model's within `FLOAT_TOLERANCE`."""
FLOAT_TOLERANCE = 1e-4
MIN_TOP1_AGREEMENT = 0.99
TOKEN_IDS_SUFFIX = "_token_ids"


# ------------------------------------------------------------------------------------------------ signatures


def describe_inputs(specs: dict) -> dict:
    """`{name: (shape with batch, dtype)}` -> the JSON form of `metadata.json`: `{name: {"shape", "dtype"}}`.

    The batch axis is dropped: `shape` is the shape of one example (`[]` for one caption string).
    """
    return {name: {"shape": [int(d) for d in shape[1:]], "dtype": str(dtype)} for name, (shape, dtype) in specs.items()}


def input_specs(model) -> dict:
    """The model's named inputs: `{name: (shape, dtype)}`, shape with its batch axis (`None`)."""
    inputs = getattr(model, "input", None)
    if not isinstance(inputs, dict):
        raise ValueError(f"The model must take a dict of named inputs (as FusionClassifier does). "
                         f"Received: {type(model).__name__} with inputs {inputs!r}")
    return {name: (tuple(t.shape), str(t.dtype)) for name, t in inputs.items()}


def _tensor_specs(specs: dict, batch_size=None) -> dict:
    import tensorflow as tf

    return {name: tf.TensorSpec((batch_size, *shape[1:]), tf.as_dtype(dtype), name=name)
            for name, (shape, dtype) in specs.items()}


def head_names(model) -> tuple:
    """The model's head names, main head first (`FusionClassifier.head_names`, or its output dict's keys)."""
    if hasattr(model, "head_names"):
        return tuple(model.head_names)
    outputs = model.output
    return tuple(outputs) if isinstance(outputs, dict) else ("label",)


def _as_output_dict(model, outputs) -> dict:
    """The model's outputs as `{head: logits}`: one key per head, also for a single head."""
    if isinstance(outputs, dict):
        return dict(outputs)
    return {head_names(model)[0]: outputs}


# ------------------------------------------------------------------------------------- preprocessing / core


@dataclasses.dataclass
class SplitModel:
    """A model cut in two where string ops end (see the module docstring).

    Attributes:
        preprocessor: keras.Model or None. `{text modality: strings (batch,)}` ->
            `{"<modality>_token_ids": int64 (batch, sequence_length)}`; `None` when the model reads no strings.
        core: keras.Model. The numeric rest: the token ids and every other input in, the logits out (a dict
            `{head: logits}` for several heads, like the model itself). Shares its layers with the model.
        string_inputs: tuple of str. The modalities the preprocessor turns into token ids.
    """

    preprocessor: object
    core: object
    string_inputs: tuple

    def core_inputs(self, features: dict) -> dict:
        """Raw named features (strings included) -> the core's inputs, as NumPy arrays.

        Strings pass through the preprocessor (TensorFlow); other inputs are converted to their declared dtype.
        """
        import keras

        specs = input_specs(self.core)
        result = {}
        if self.preprocessor is not None:
            strings = {m: np.asarray(features[m]).astype(str) for m in self.string_inputs}
            import tensorflow as tf

            ids = self.preprocessor({m: tf.constant(v) for m, v in strings.items()})
            result.update({k: keras.ops.convert_to_numpy(v) for k, v in ids.items()})
        for name, (_, dtype) in specs.items():
            if name not in result:
                result[name] = np.asarray(features[name]).astype(dtype)
        return result


def _vectorizer_of(encoder):
    import keras

    found = [layer for layer in getattr(encoder, "layers", []) if isinstance(layer, keras.layers.TextVectorization)]
    if len(found) > 1:
        raise ValueError(f"Encoder {encoder.name!r} holds {len(found)} TextVectorization layers; expected at most "
                         f"one, right after its string input.")
    return found[0] if found else None


def split_preprocessing(model) -> SplitModel:
    """Splits a `FusionClassifier` into string preprocessing and a numeric core (see `SplitModel`).

    For a modality m whose encoder starts with `TextVectorization`, the core takes `m + "_token_ids"`
    (int64 `(batch, sequence_length)`, 0 = padding, 1 = out of vocabulary) and runs the encoder's layers after
    the vectorizer; the fusion layer and heads are the model's own, so `core(preprocessor(x)) == model(x)`.
    A model without string inputs is returned as its own core, with no preprocessor.

    Raises:
        ValueError: the model is not a `FusionClassifier`, or it uses modality dropout together with string
            inputs (its presence check reads the raw strings).
    """
    import keras

    from mmkeras.models import FusionClassifier

    specs = input_specs(model)
    strings = tuple(name for name, (_, dtype) in specs.items() if dtype == "string")
    if not strings:
        return SplitModel(None, model, ())
    if not isinstance(model, FusionClassifier):
        raise ValueError(f"split_preprocessing rebuilds a FusionClassifier's graph around token ids. "
                         f"Received: {type(model).__name__}")
    if model.modality_dropout > 0:
        raise ValueError(f"A model with modality dropout checks its raw strings for emptiness; split it before "
                         f"adding modality dropout. Received: modality_dropout={model.modality_dropout}")
    pre_inputs, pre_outputs, core_inputs, features, masks = {}, {}, {}, [], []
    for modality, encoder in model.encoders.items():
        vectorizer = _vectorizer_of(encoder) if modality in strings else None
        if modality in strings and vectorizer is None:
            raise ValueError(f"Input {modality!r} is a string but its encoder has no TextVectorization layer to "
                             f"cut at. Received encoder layers: {[layer.name for layer in encoder.layers]}")
        if vectorizer is not None:
            name = modality + TOKEN_IDS_SUFFIX
            pre_inputs[modality] = keras.Input(shape=(), dtype="string", name=modality)  # (batch,)
            pre_outputs[name] = vectorizer(pre_inputs[modality])  # (batch, sequence_length) int64
            numeric = keras.Model(vectorizer.output, encoder.output, name=f"{encoder.name}_core")
            core_inputs[name] = keras.Input(shape=pre_outputs[name].shape[1:], dtype=pre_outputs[name].dtype,
                                            name=name)
            z = numeric(core_inputs[name])
        else:
            shape, dtype = specs[modality]
            core_inputs[modality] = keras.Input(shape=shape[1:], dtype=dtype, name=modality)
            z = encoder(core_inputs[modality])
        if isinstance(z, dict):
            features.append(z["sequence"])  # (batch, steps, d)
            masks.append(z.get("padding_mask"))
        else:
            features.append(z)  # (batch, d)
            masks.append(None)
    fused = (model.fusion(features, padding_masks=masks) if any(m is not None for m in masks)
             else model.fusion(features))
    outputs = {head: model.get_layer(head)(fused) for head in model.head_names}  # logits, float32
    if len(outputs) == 1:
        outputs = next(iter(outputs.values()))
    preprocessor = keras.Model(pre_inputs, pre_outputs, name=f"{model.name}_preprocessor")
    core = keras.Model(core_inputs, outputs, name=f"{model.name}_core")
    return SplitModel(preprocessor, core, tuple(pre_inputs))


# ------------------------------------------------------------------------------------------------ SavedModel


def _track_tf_variables_once(archive) -> None:
    """Makes `archive` store each weight once (keras-team/keras#23553, open in Keras 3.15).

    On TensorFlow, `ExportArchive.track(model)` keeps the `keras.Variable` wrappers, while the endpoint's traced
    function captures the `tf.Variable`s they wrap: two Python objects per weight, which the checkpoint's
    de-duplication by object identity cannot merge, so `variables/` held every weight twice (`variables/N` and
    `_all_variables/M`) and a process loading the SavedModel restored two buffers per weight. Tracking the
    underlying `tf.Variable`s instead leaves one object per weight. Does nothing on a Keras without the lists.
    """
    trackable = getattr(archive, "_tf_trackable", None)
    for name in ("variables", "trainable_variables", "non_trainable_variables"):
        tracked = getattr(trackable, name, None)
        if isinstance(tracked, list | tuple):  # TensorFlow's ListWrapper is a list
            setattr(trackable, name, [getattr(v, "value", v) for v in tracked])


def _write_archive(model, directory, batch_size=None):
    """A SavedModel whose `serving_default` signature takes the named inputs and returns `{head: logits}`,
    always in inference mode (see "One trap, avoided" in the module docstring)."""
    import keras

    specs = _tensor_specs(input_specs(model), batch_size)

    def serve(inputs):
        return _as_output_dict(model, model(inputs, training=False))

    archive = keras.export.ExportArchive()
    archive.track(model)
    _track_tf_variables_once(archive)
    archive.add_endpoint(name="serve", fn=serve, input_signature=[specs])
    archive.write_out(str(directory), verbose=False)


def export_saved_model(model, directory, schema=None, examples=None, num_examples: int = 10) -> pathlib.Path:
    """Exports a model as a SavedModel plus `metadata.json`: the directory `mmkeras serve MODEL_DIR` loads.

    Layout of `directory` (the *model directory*):

        saved_model.pb, variables/, assets/, fingerprint.pb   a SavedModel (TensorFlow's own files)
        metadata.json                                         what the service needs to know (below)
        examples.npz                                          optional: a few inputs to try, with labels

    The SavedModel's `serving_default` signature takes one tensor per named input, batch axis first
    (`image` float32 `(batch, 28, 28, 1)`, `audio` float32 `(batch, 8000)`, `text` string `(batch,)`, ...),
    and returns `{head: logits (batch, num_classes)}`, float32, in inference mode (dropout and augmentation off).
    Probabilities are `softmax(logits)`. `metadata.json` holds:

        {"format": "mmkeras-saved-model", "version": 1, "model_name": ...,
         "inputs": {name: {"shape": [one example's shape], "dtype": "float32" | "int64" | "string",
                           "kind": "image" | "audio" | ... and "sample_rate" for audio (with a schema)}},
         "label": main head, "heads": {head: {"num_classes": k, "class_names": [...]}},
         "class_names": the main head's class names, "signature": "serving_default",
         "examples": number of bundled examples}

    Args:
        model: keras.Model. A model with named (dict) inputs whose outputs are logits, e.g. a `FusionClassifier`.
        directory: str or Path. Created (or replaced) by the export.
        schema: DataSchema or None. Gives the class names (`LabelSpec.class_names`); without it, or for a head
            without names, classes are named `"0"`, `"1"`, ...
        examples: MultimodalData or None. Its first `num_examples` samples are bundled in `examples.npz`
            (one array per input, plus `label`: the main head's true class), for the service's web page.
        num_examples: int. How many examples to bundle. Defaults to `10`.

    Returns:
        The model directory, as a `Path`.
    """
    directory = pathlib.Path(directory)
    num_examples = check_int("num_examples", num_examples)
    specs = input_specs(model)
    heads = head_names(model)
    outputs = model.output if isinstance(model.output, dict) else {heads[0]: model.output}
    head_info = {}
    for head in heads:
        k = int(outputs[head].shape[-1])
        names = None
        if schema is not None and head in schema.label_names:
            names = schema.label(head).class_names
        head_info[head] = {"num_classes": k, "class_names": list(names) if names else [str(i) for i in range(k)]}
    if directory.exists():
        shutil.rmtree(directory)
    _write_archive(model, directory)
    count = 0
    if examples is not None:
        n = min(num_examples, len(examples))
        arrays = {}
        for name, (_, dtype) in specs.items():
            values = np.asarray(examples.features[name])[:n]
            arrays[name] = values.astype(str) if dtype == "string" else values.astype(dtype)
        if heads[0] in examples.labels:
            arrays["label"] = np.asarray(examples.labels[heads[0]])[:n].astype(np.int64)
        np.savez_compressed(directory / EXAMPLES_FILE, **arrays)
        count = n
    inputs = describe_inputs(specs)
    for name, info in inputs.items():  # what a client needs to turn a file into this input
        if schema is not None and name in schema.modality_names:
            spec = schema.modality(name)
            info["kind"] = spec.kind
            if spec.sample_rate is not None:
                info["sample_rate"] = int(spec.sample_rate)
    metadata = {
        "format": "mmkeras-saved-model", "version": METADATA_VERSION, "model_name": model.name,
        "inputs": inputs, "label": heads[0], "heads": head_info,
        "class_names": head_info[heads[0]]["class_names"], "signature": "serving_default", "examples": count,
    }
    (directory / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return directory


def read_metadata(directory) -> dict:
    """The `metadata.json` of a model directory written by `export_saved_model`.

    Raises:
        ValueError: the directory has no SavedModel or no `metadata.json`, or the metadata is not mmkeras's.
    """
    directory = pathlib.Path(directory)
    path = directory / METADATA_FILE
    if not (directory / "saved_model.pb").is_file() or not path.is_file():
        found = sorted(p.name for p in directory.iterdir()) if directory.is_dir() else None
        listing = "no such directory" if found is None else (found[:8] + (["..."] if len(found) > 8 else []))
        raise ValueError(f"{directory} is not a model directory: expected saved_model.pb and {METADATA_FILE} "
                         f"(written by mmkeras.export.export_saved_model). Found: {listing}")
    metadata = json.loads(path.read_text(encoding="utf-8"))
    if metadata.get("format") != "mmkeras-saved-model" or metadata.get("version") != METADATA_VERSION:
        raise ValueError(f"{path} is not mmkeras metadata version {METADATA_VERSION}. Received: "
                         f"format={metadata.get('format')!r}, version={metadata.get('version')!r}")
    return metadata


# ------------------------------------------------------------------------------------------------ TFLite


def export_tflite(model, path, quantization: str = "float32") -> pathlib.Path:
    """Converts a numeric model to a TFLite flat buffer, batch size 1 (see the module docstring for why).

    Quantization (量化):
    - `"float32"`: weights and arithmetic in float32.
    - `"float16"`: weights stored as float16 (half the size), expanded to float32 when the model runs on CPU.
    - `"int8"`: dynamic-range quantization: each weight tensor becomes int8 with a float scale,
      `w ~ s * q`, `q = round(w / s)` in [-127, 127], `s = max|w| / 127` (per output channel where the op allows);
      activations are quantized on the fly, per batch, for the matrix products. About 4x smaller than float32.
      The mel filter bank of an audio encoder stays float32 (see the module docstring).

    Only TFLite builtin ops are allowed (no Flex): a model that reads strings must be split first
    (`split_preprocessing(model).core`).

    Args:
        model: keras.Model with named numeric inputs.
        path: str or Path. The `.tflite` file to write.
        quantization: str. One of `TFLITE_QUANTIZATIONS`. Defaults to `"float32"`.

    Returns:
        The path written.

    Raises:
        ValueError: an input is a string, or `quantization` is unknown.
    """
    import tensorflow as tf

    check_choice("quantization", quantization, TFLITE_QUANTIZATIONS)
    strings = [name for name, (_, dtype) in input_specs(model).items() if dtype == "string"]
    if strings:
        raise ValueError(f"TFLite builtin ops cannot read strings: convert `split_preprocessing(model).core` "
                         f"instead. Received string inputs: {strings}")
    path = pathlib.Path(path)
    with tempfile.TemporaryDirectory() as scratch:
        with _portable_spectrograms(model, float_mel=quantization == "int8"):
            _write_archive(model, scratch, batch_size=1)  # a static batch lets the GRU's loop become builtin ops
        converter = tf.lite.TFLiteConverter.from_saved_model(scratch, signature_keys=["serving_default"])
        if quantization != "float32":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        flatbuffer = converter.convert()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(flatbuffer)
    return path


# ------------------------------------------------------------------------------------------------ ONNX


def export_onnx(model, path, opset: int = 17) -> pathlib.Path:
    """Converts a numeric model to ONNX with tf2onnx; inputs keep their names, the batch axis stays dynamic.

    The outputs are named after the heads (`digit`, `label`, ...). Opset 17 is the first with a `DFT`
    operator, which the mel spectrogram's `RFFT` becomes.

    Args:
        model: keras.Model with named numeric inputs (split a string model first).
        path: str or Path. The `.onnx` file to write.
        opset: int. ONNX opset. Defaults to `17`.

    Returns:
        The path written.
    """
    import tensorflow as tf
    import tf2onnx

    opset = check_int("opset", opset, minimum=13)
    specs = input_specs(model)
    strings = [name for name, (_, dtype) in specs.items() if dtype == "string"]
    if strings:
        raise ValueError(f"ONNX has no TensorFlow string ops: convert `split_preprocessing(model).core` instead. "
                         f"Received string inputs: {strings}")
    names = list(specs)
    tensor_specs = _tensor_specs(specs)

    @tf.function
    def serve(*tensors):
        outputs = _as_output_dict(model, model(dict(zip(names, tensors)), training=False))
        return {head: tf.identity(logits, name=head) for head, logits in outputs.items()}

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    heads = list(head_names(model))
    with _portable_spectrograms(model, dft_as_matmul=True):
        proto, _ = tf2onnx.convert.from_function(serve, input_signature=[tensor_specs[n] for n in names],
                                                 opset=opset)
    for output, head in zip(proto.graph.output, heads):  # keep the head names (tf2onnx numbers them)
        _rename_output(proto, output.name, head)
    path.write_bytes(proto.SerializeToString())
    return path


def _stft_magnitude(layer, inputs):
    """`MelSpectrogram._spectrogram` without complex numbers: the DFT as two matrix products.

    For a windowed frame `x_t[n]` (n < N = `fft_length`), `Re X_t(f) = sum_n x_t[n] cos(2 pi f n / N)` and
    `Im X_t(f) = -sum_n x_t[n] sin(2 pi f n / N)` for f = 0..N/2, and the layer wants `|X_t(f)|^p`. Keras
    computes it from `tf.signal.rfft`, which tf2onnx converts only in narrow cases (its `RFFT` handler needs a
    `ComplexAbs` consumer and static shapes); two `MatMul`s with constant `(N, N/2 + 1)` matrices convert
    everywhere. Same padding (`center=True`, reflect), framing and periodic window as
    `keras.src.backend.tensorflow.math.stft`.
    """
    import tensorflow as tf

    x = tf.convert_to_tensor(inputs)
    n_fft, length = layer.fft_length, layer.sequence_length
    x = tf.pad(x, [[0, 0]] * (len(x.shape) - 1) + [[n_fft // 2, n_fft // 2]], mode="reflect")  # center=True
    frames = tf.signal.frame(x, n_fft, layer.sequence_stride)  # (batch, frames, N)
    if layer.window is not None:
        make = {"hann": tf.signal.hann_window, "hamming": tf.signal.hamming_window}[layer.window]
        left = (n_fft - length) // 2
        frames = frames * tf.pad(make(length, periodic=True, dtype=x.dtype), [[left, n_fft - length - left]])
    angle = 2.0 * np.pi * np.outer(np.arange(n_fft), np.arange(n_fft // 2 + 1)) / n_fft  # (N, N/2 + 1)
    real = tf.matmul(frames, tf.constant(np.cos(angle), x.dtype))  # (batch, frames, N/2 + 1)
    imag = tf.matmul(frames, tf.constant(-np.sin(angle), x.dtype))
    return tf.pow(tf.sqrt(real * real + imag * imag), layer.mag_exp)


QUANTIZATION_MIN_ELEMENTS = 1024
"""TFLite's dynamic-range quantizer leaves constant weights with fewer elements than this in float32."""


def _mel_in_float_blocks(layer, inputs):
    """`MelSpectrogram._melscale` with the mel matrix cut into column blocks of < 1,024 weights each.

    The result is the same product `S M` (`M`: `(N/2 + 1, mel_bins)`), computed block by block and
    concatenated. Why: dynamic-range int8 quantization rounds every constant matrix of 1,024 weights or more
    to int8 with one scale per column, and the mel filters' small edge weights round to 0; after `log10`
    that costs up to ~13 dB on quiet bands (measured) and flips predictions. Blocks under the quantizer's
    size threshold stay float32: the audio front end is exact, only the learned layers are quantized.
    """
    import tensorflow as tf

    matrix = layer.linear_to_mel_weight_matrix(
        num_mel_bins=layer.num_mel_bins, num_spectrogram_bins=int(inputs.shape[-1]),
        sampling_rate=layer.sampling_rate, lower_edge_hertz=layer.min_freq, upper_edge_hertz=layer.max_freq)
    matrix = tf.convert_to_tensor(matrix, inputs.dtype)  # (N/2 + 1, mel_bins)
    width = max(1, (QUANTIZATION_MIN_ELEMENTS - 1) // int(matrix.shape[0]))  # columns per float block
    blocks = [tf.tensordot(inputs, matrix[:, i:i + width], axes=1) for i in range(0, int(matrix.shape[1]), width)]
    return tf.concat(blocks, axis=-1)  # (batch, frames, mel_bins)


class _portable_spectrograms:
    """While active, the model's `MelSpectrogram` layers compute what they always do, in a form a converter
    handles: `dft_as_matmul` swaps the complex STFT for `_stft_magnitude` (ONNX), `float_mel` cuts the mel
    matrix into blocks the int8 quantizer leaves alone (`_mel_in_float_blocks`, TFLite int8)."""

    def __init__(self, model, dft_as_matmul: bool = False, float_mel: bool = False):
        import keras

        self.layers = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.MelSpectrogram)]
        self.dft_as_matmul, self.float_mel = dft_as_matmul, float_mel

    def __enter__(self):
        for layer in self.layers:
            if self.dft_as_matmul:
                if not isinstance(layer.window, (str, type(None))):
                    raise ValueError(f"ONNX export supports MelSpectrogram windows 'hann', 'hamming' or None. "
                                     f"Received: window={layer.window!r} in layer {layer.name!r}")
                layer._spectrogram = lambda inputs, layer=layer: _stft_magnitude(layer, inputs)
            if self.float_mel:
                layer._melscale = lambda inputs, layer=layer: _mel_in_float_blocks(layer, inputs)
        return self

    def __exit__(self, *exc):
        for layer in self.layers:  # back to the class's methods
            layer.__dict__.pop("_spectrogram", None)
            layer.__dict__.pop("_melscale", None)


def _rename_output(proto, old: str, new: str) -> None:
    if old == new:
        return
    for node in proto.graph.node:
        node.output[:] = [new if name == old else name for name in node.output]
        node.input[:] = [new if name == old else name for name in node.input]
    for output in proto.graph.output:
        if output.name == old:
            output.name = new


# ------------------------------------------------------------------------------------------------ pruning


def copy_model(model):
    """A new model with the same architecture and a copy of the weights (to prune without touching the original).

    A `FusionClassifier` is rebuilt from its config, so the copy is one too (heads, names and all);
    `keras.models.clone_model` would turn it into a plain functional model.
    """
    import keras

    copy = (type(model).from_config(model.get_config()) if hasattr(model, "head_names")
            else keras.models.clone_model(model))
    copy.set_weights(model.get_weights())
    return copy


def prune_weights(model, sparsity: float = 0.5) -> dict:
    """Post-training magnitude pruning (剪枝), in place: in every Dense and Conv kernel, zero the `sparsity`
    fraction of weights with the smallest magnitude, `w_ij <- w_ij [|w_ij| > t]`, `t` the kernel's
    `sparsity`-quantile of `|w|`. Biases, embeddings, recurrent and normalisation weights are kept.

    The file sizes do not shrink by themselves (zeros are stored like any number), but a compressed file does
    (`gzip_size`); measure the accuracy before and after, as pruning without fine-tuning costs some.

    Args:
        model: keras.Model. Changed in place (prune `copy_model(model)` to keep the original).
        sparsity: float in [0, 1). Fraction of each kernel set to zero. Defaults to `0.5`.

    Returns:
        `{kernel path: fraction of zeros}` for every pruned kernel.

    Example:
    >>> import keras
    >>> dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)])
    >>> report = prune_weights(dense, 0.5)
    >>> [round(v, 2) for v in report.values()]
    [0.5]
    """
    import keras

    sparsity = check_fraction("sparsity", sparsity)
    kinds = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
    report = {}
    for layer in _all_layers(model):
        if isinstance(layer, kinds) and getattr(layer, "kernel", None) is not None:
            kernel = keras.ops.convert_to_numpy(layer.kernel)
            threshold = np.quantile(np.abs(kernel), sparsity) if sparsity > 0 else -1.0
            pruned = np.where(np.abs(kernel) > threshold, kernel, 0.0).astype(kernel.dtype)
            layer.kernel.assign(pruned)
            report[layer.kernel.path] = float((pruned == 0).mean())
    return report


def _all_layers(model):
    seen, stack = [], list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop(0)
        if any(layer is s for s in seen):
            continue
        seen.append(layer)
        stack.extend(getattr(layer, "layers", []) or [])
        if hasattr(layer, "layer") and not isinstance(layer.layer, (list, tuple)):  # Bidirectional ...
            stack.append(layer.layer)
    return seen


# ------------------------------------------------------------------------------------------------ runners


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


# ------------------------------------------------------------------------------------------------ all formats


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
        _write_archive(split.preprocessor, directory / "preprocessor")
        paths["preprocessor"] = directory / "preprocessor"
    for quantization in TFLITE_QUANTIZATIONS:
        if f"tflite_{quantization}" in formats:
            paths[f"tflite_{quantization}"] = export_tflite(split.core, directory / f"model_{quantization}.tflite",
                                                            quantization)
    if "onnx" in formats:
        paths["onnx"] = export_onnx(split.core, directory / "model.onnx")
    return paths


def load_runner(fmt: str, path):
    """The runner of one exported format: `SavedModelRunner`, `TFLiteRunner` or `ONNXRunner`."""
    check_choice("fmt", fmt, FORMATS)
    if fmt == "saved_model":
        return SavedModelRunner(path)
    if fmt == "onnx":
        return ONNXRunner(path)
    return TFLiteRunner(path)


def keras_logits(model, features: dict, batch_size: int = 64) -> dict:
    """The Keras model's logits in inference mode, `{head: (n, k)}`, computed in batches."""
    import keras

    specs = input_specs(model)
    n = len(next(iter(features.values())))
    parts = []
    for start in range(0, n, batch_size):
        batch = {}
        for name, (_, dtype) in specs.items():
            values = np.asarray(features[name][start:start + batch_size])
            batch[name] = keras.ops.convert_to_tensor(values.astype(str) if dtype == "string" else values.astype(dtype))
        parts.append({h: keras.ops.convert_to_numpy(v)
                      for h, v in _as_output_dict(model, model(batch, training=False)).items()})
    return {head: np.concatenate([p[head] for p in parts]) for head in parts[0]}


def compare_logits(reference: np.ndarray, other: np.ndarray) -> dict:
    """How close two `(n, k)` logits arrays are: `{"max_abs_diff", "top1_agreement", "unexplained_flips", "n"}`.

    `max_abs_diff` is `eps = max_ik |z_ik - z'_ik|` and `top1_agreement` the fraction of rows with the same
    argmax (see the module docstring). A row can change its top class only if its reference margin (top logit
    minus the runner-up) is at most `2 eps`; `unexplained_flips` counts the rows that changed with a larger
    margin, so it must be 0 whatever the model: a flip on a near-tie is quantization, any other is a bug.

    Example:
    >>> compare_logits(np.array([[1.0, 0.0], [0.0, 0.1]]), np.array([[1.0, 0.5], [0.1, 0.0]]))
    {'max_abs_diff': 0.5, 'top1_agreement': 0.5, 'unexplained_flips': 0, 'n': 2}
    """
    reference, other = np.asarray(reference, np.float64), np.asarray(other, np.float64)
    if reference.shape != other.shape:
        raise ValueError(f"Logits to compare must have the same shape. Received: {reference.shape} and {other.shape}")
    eps = float(np.abs(reference - other).max())
    flipped = reference.argmax(-1) != other.argmax(-1)
    top2 = np.sort(reference, axis=-1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    return {"max_abs_diff": round(eps, 10), "top1_agreement": float(1.0 - flipped.mean()),
            "unexplained_flips": int((flipped & (margin > 2 * eps + 1e-12)).sum()), "n": int(len(reference))}


def parity_report(model, paths: dict, data) -> dict:
    """Runs every exported format on `data` and compares its logits with the Keras model's (main head).

    Args:
        model: keras.Model. The model the exports came from.
        paths: dict `{format: path}` as `export_all` returns (`"preprocessor"` is used, not reported).
        data: MultimodalData or dict of arrays. The examples, e.g. the test split.

    Returns:
        `{format: {"max_abs_diff", "top1_agreement", "unexplained_flips", "n", "passed"}}`; `passed` applies
        `FLOAT_TOLERANCE` to the float formats and `MIN_TOP1_AGREEMENT` to the quantized ones (`tflite_float16`
        is held to the agreement rule: half-precision weights move logits by more than 1e-4).
    """
    features = dict(getattr(data, "features", data))
    head = head_names(model)[0]
    reference = keras_logits(model, features)[head]
    split = split_preprocessing(model)
    core_features = split.core_inputs(features)
    report = {}
    for fmt, path in paths.items():
        if fmt == "preprocessor":
            continue
        runner = load_runner(fmt, path)
        outputs = runner(features if fmt == "saved_model" else core_features)
        numbers = compare_logits(reference, outputs[head])
        numbers["passed"] = (numbers["max_abs_diff"] <= FLOAT_TOLERANCE if fmt in FLOAT_FORMATS
                             else numbers["top1_agreement"] >= MIN_TOP1_AGREEMENT)
        report[fmt] = numbers
    return report


# ------------------------------------------------------------------------------------------------ measuring


def size_on_disk(path) -> int:
    """Bytes of a file, or of every file under a directory."""
    path = pathlib.Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def gzip_size(path) -> int:
    """Bytes of a file once gzip-compressed (level 9): what pruning's zeros save in a download."""
    import gzip

    return len(gzip.compress(pathlib.Path(path).read_bytes(), compresslevel=9))


def latency_ms(run, example: dict, repeats: int = 50, warmup: int = 5) -> dict:
    """Single-example latency of `run(example)`: `{"p50", "p95", "mean"}` in milliseconds over `repeats` calls.

    Example:
    >>> sorted(latency_ms(lambda x: x, {}, repeats=3, warmup=1))
    ['mean', 'p50', 'p95']
    """
    repeats, warmup = check_int("repeats", repeats), check_int("warmup", warmup, minimum=0)
    for _ in range(warmup):
        run(example)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(example)
        times.append((time.perf_counter() - start) * 1000.0)
    return {"p50": float(np.percentile(times, 50)), "p95": float(np.percentile(times, 95)),
            "mean": float(np.mean(times))}


def environment() -> dict:
    """Versions of the converters and runtimes, for benchmark reports."""
    import importlib.metadata as md

    versions = {}
    for package in ("tensorflow", "keras", "tf2onnx", "onnx", "onnxruntime"):
        try:
            versions[package] = md.version(package)
        except md.PackageNotFoundError:
            versions[package] = None
    versions["cpu_count"] = os.cpu_count()
    return versions
