"""The SavedModel export: a TensorFlow SavedModel plus `metadata.json`, the *model directory* that
`mmkeras serve MODEL_DIR` loads.

**One trap, avoided.** Keras's `model.export()` traces `model(inputs)` *without* `training=False`, and Keras 3's
random augmentation layers (`RandomTranslation`, `RandomZoom`, in the course's image encoder) default to
`training=True`: the exported model translates and zooms every image it serves. Measured with Keras 3.15.1:
the course's AV-MNIST model exported that way gave logits up to 0.02 away from `model(x, training=False)`,
different at every call (a one-layer `RandomTranslation` model: 0.58 apart between two identical calls).
`write_archive` therefore builds the serving endpoint itself with `keras.export.ExportArchive`, the class
`model.export()` uses, around `model(inputs, training=False)`.

Reading a model directory (`read_metadata`) needs neither TensorFlow nor Keras: `mmkeras serve` checks the
directory before it starts them.
"""

from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np

from mmkeras._validation import check_int
from mmkeras.export.graph import (
    as_output_dict,
    describe_inputs,
    head_names,
    input_specs,
    preprocessor_of,
    run_inference,
    tensor_specs,
)

METADATA_FILE = "metadata.json"
"""The description of a SavedModel export, written inside its directory (see `export_saved_model`)."""
EXAMPLES_FILE = "examples.npz"
"""Optional bundled examples of a SavedModel export: one array per input, plus `label` (see `export_saved_model`)."""
METADATA_VERSION = 1


def track_tf_variables_once(archive) -> None:
    """Makes `archive` store each weight once (keras-team/keras#23553, open in Keras 3.15).

    On TensorFlow, `ExportArchive.track(model)` keeps the `keras.Variable` wrappers, while the endpoint's traced
    function captures the `tf.Variable`s they wrap: two Python objects per weight, which the checkpoint's
    de-duplication by object identity cannot merge, so `variables/` held every weight twice (`variables/N` and
    `_all_variables/M`) and a process loading the SavedModel restored two buffers per weight. Tracking the
    underlying `tf.Variable`s instead leaves one object per weight. This reads and replaces lists on
    `ExportArchive`'s private `_tf_trackable`; it does nothing on a Keras without them.
    """
    trackable = getattr(archive, "_tf_trackable", None)
    for name in ("variables", "trainable_variables", "non_trainable_variables"):
        tracked = getattr(trackable, name, None)
        if isinstance(tracked, list | tuple):  # TensorFlow's ListWrapper is a list
            setattr(trackable, name, [getattr(v, "value", v) for v in tracked])


def write_archive(model, directory, batch_size: int | None = None, heads=None) -> None:
    """A SavedModel whose `serving_default` signature takes the named inputs and returns `{head: logits}`,
    always in inference mode (see "One trap, avoided" in the module docstring).

    A model with a preprocessor (`model.preprocessor`) is exported end to end: the signature takes the raw
    inputs (caption strings, waveforms, pixels) and runs `model(preprocessor(inputs))`, the preprocessor's
    TensorFlow ops (tokenizer table included) inside the SavedModel. A `MultimodalPreprocessor` alone is
    exported as a signature from raw inputs to `{modality: preprocessed}` (what a TFLite app runs first).

    Args:
        model: keras.Model with named inputs, or a `MultimodalPreprocessor`.
        directory: str or Path. Where TensorFlow writes the SavedModel.
        batch_size: int or None. A fixed batch size for the signature (TFLite wants 1), or `None` (any).
        heads: sequence of str or None. The output names; `None` reads them from the model (`head_names`).
    """
    import keras

    specs = tensor_specs(input_specs(model), batch_size)
    preprocessor = preprocessor_of(model)
    if preprocessor is model:
        def serve(inputs):
            return model(inputs)
    else:
        heads = tuple(heads) if heads is not None else head_names(model)

        def serve(inputs):
            return as_output_dict(run_inference(model, inputs), heads)

    archive = keras.export.ExportArchive()
    archive.track(model)
    if preprocessor is not None and preprocessor is not model:
        archive.track(preprocessor)
    track_tf_variables_once(archive)
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
    outputs = as_output_dict(model.output, heads)
    head_info = {}
    for head in heads:
        k = int(outputs[head].shape[-1])
        names = None
        if schema is not None and head in schema.label_names:
            names = schema.label(head).class_names
        head_info[head] = {"num_classes": k, "class_names": list(names) if names else [str(i) for i in range(k)]}
    if directory.exists():
        shutil.rmtree(directory)
    write_archive(model, directory)
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
