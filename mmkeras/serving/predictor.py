"""The model behind the service: `Predictor` loads a model directory, checks its `metadata.json` against the
SavedModel's signature, and turns checked input arrays into answers (`softmax_dict`).

**Metadata is checked, not trusted.** `metadata.json` tells the service and its clients what the model takes and
what it answers, and the service believes it on every request. An edited or stale file (3 class names for a
10-class head, a `label` that is no output, an input dtype the signature does not have) would otherwise start
fine and then answer 500 to every request, or worse, answer 200 with wrong labels. So `check_metadata` compares
it, before the graph is loaded, with the signature read from `saved_model.pb` (`read_signature`: parsing the
protobuf runs none of the model's code) and fails with one message that lists every mismatch.

Example:
>>> import numpy as np
>>> softmax_dict(np.array([0.0, 0.0]), ["a", "b"])
{'a': 0.5, 'b': 0.5}
"""

from __future__ import annotations

import pathlib

import numpy as np

NUMERIC_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                  "uint64")
"""The input dtypes the service can parse from JSON numbers; `"string"` inputs take captions."""


class ModelOutputError(RuntimeError):
    """The model answered something the service cannot turn into probabilities (NaN logits): a server error."""


def softmax_dict(logits, class_names) -> dict:
    """`{class name: softmax(logits)_k}`, rounded to 6 digits, for one example's finite logits `(k,)`."""
    z = np.asarray(logits, np.float64)
    p = np.exp(z - z.max())
    p /= p.sum()
    return {str(name): round(float(v), 6) for name, v in zip(class_names, p)}


def read_signature(model_dir, name: str) -> dict:
    """Signature `name` of the SavedModel in `model_dir`, read from `saved_model.pb` without loading the graph.

    Returns:
        `{"inputs": {input: (dtype, shape)}, "outputs": {output: (dtype, shape)}}`, dtypes as names
        (`"float32"`, `"string"`), shapes as lists with `-1` for unknown sizes (the batch axis), `None` for an
        unknown rank.

    Raises:
        ValueError: the file cannot be parsed or has no signature `name` (the message lists those it has).
    """
    import tensorflow as tf
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import saved_model_pb2

    path = pathlib.Path(model_dir) / "saved_model.pb"
    saved_model = saved_model_pb2.SavedModel()
    try:
        saved_model.ParseFromString(path.read_bytes())
    except DecodeError as error:
        raise ValueError(f"{path} is not a SavedModel protobuf ({error}).") from None
    signatures = {key: sig for graph in saved_model.meta_graphs for key, sig in graph.signature_def.items()}
    if not isinstance(name, str) or name not in signatures:
        raise ValueError(f"{path} has no signature {name!r} (the \"signature\" of metadata.json). "
                         f"It has: {sorted(k for k in signatures if not k.startswith('__'))}")

    def describe(tensors):
        return {key: (tf.dtypes.as_dtype(info.dtype).name,
                      None if info.tensor_shape.unknown_rank else [d.size for d in info.tensor_shape.dim])
                for key, info in tensors.items()}

    return {"inputs": describe(signatures[name].inputs), "outputs": describe(signatures[name].outputs)}


def _is_str_list(value) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def metadata_problems(metadata: dict, signature: dict) -> list[str]:
    """Every way `metadata` disagrees with `signature` (from `read_signature`) or misses what the service needs.

    Example:
    >>> signature = {"inputs": {"x": ("float32", [-1, 2])}, "outputs": {"y": ("float32", [-1, 3])}}
    >>> meta = {"model_name": "m", "inputs": {"x": {"shape": [2], "dtype": "float32"}}, "label": "y",
    ...         "class_names": ["a", "b", "c"]}
    >>> metadata_problems(meta, signature)
    []
    >>> metadata_problems(dict(meta, class_names=["a", "b"], label="z"), signature)
    ["label 'z' is not an output of the signature (outputs: ['y'])"]
    >>> metadata_problems(dict(meta, class_names=["a", "b"]), signature)
    ["class_names has 2 names, but output 'y' has 3 classes"]
    """
    problems = []
    if not isinstance(metadata.get("model_name"), str):
        problems.append(f"model_name must be a string, not {type(metadata.get('model_name')).__name__}")
    inputs = metadata.get("inputs")
    if not isinstance(inputs, dict) or not inputs:
        return problems + ["inputs must be an object {name: {shape, dtype}} with at least one input"]
    if set(inputs) != set(signature["inputs"]):
        problems.append(f"inputs {sorted(inputs)} are not the signature's inputs {sorted(signature['inputs'])}")
    for name in sorted(set(inputs) & set(signature["inputs"])):
        spec, (dtype, shape) = inputs[name], signature["inputs"][name]
        if not isinstance(spec, dict):
            problems.append(f"inputs[{name!r}] must be an object {{shape, dtype}}")
            continue
        if spec.get("dtype") not in (*NUMERIC_DTYPES, "string"):
            problems.append(f"inputs[{name!r}].dtype must be one of {[*NUMERIC_DTYPES, 'string']}, "
                            f"not {spec.get('dtype')!r}")
        elif spec["dtype"] != dtype:
            problems.append(f"inputs[{name!r}].dtype is {spec['dtype']!r}, but the signature takes {dtype!r}")
        example = spec.get("shape")
        if not (isinstance(example, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                  for d in example)):
            problems.append(f"inputs[{name!r}].shape must be a list of sizes >= 0, not {example!r}")
        elif shape is not None and (len(shape) != len(example) + 1 or
                                    any(s not in (-1, d) for s, d in zip(shape[1:], example))):
            problems.append(f"inputs[{name!r}].shape is {example}, but the signature takes {shape} "
                            f"(batch axis first)")
    label, names = metadata.get("label"), metadata.get("class_names")
    if label not in signature["outputs"]:
        problems.append(f"label {label!r} is not an output of the signature (outputs: {sorted(signature['outputs'])})")
    elif not _is_str_list(names) or not names:
        problems.append("class_names must be a non-empty list of strings")
    else:
        dtype, shape = signature["outputs"][label]
        classes = shape[-1] if shape else None
        if not dtype.startswith("float"):
            problems.append(f"output {label!r} must hold float logits, not {dtype}")
        if shape is not None and len(shape) != 2:
            problems.append(f"output {label!r} must be (batch, classes), not {shape}")
        elif classes not in (None, -1) and classes != len(names):
            problems.append(f"class_names has {len(names)} names, but output {label!r} has {classes} classes")
    return problems


def check_metadata(model_dir, metadata: dict) -> None:
    """Raises one `ValueError` listing every mismatch between `metadata.json` and the SavedModel of `model_dir`."""
    signature = read_signature(model_dir, metadata.get("signature"))
    problems = metadata_problems(metadata, signature)
    if problems:
        raise ValueError(f"{pathlib.Path(model_dir) / 'metadata.json'} does not match the SavedModel's signature "
                         f"{metadata.get('signature')!r}: " + "; ".join(problems) + ". Export the model again "
                         "with mmkeras.export.export_saved_model, or correct the file.")


class Predictor:
    """The model of a model directory, with its metadata and examples: `predictor(arrays) -> answers`.

    The metadata is checked against the SavedModel (`check_metadata`) before the graph is loaded, and the bundled
    examples against the metadata. Loading the graph runs the model directory's code with the rights of this
    process (see "A model directory is a program" in `mmkeras.serving`): load only directories you trust.

    Args:
        model_dir: str or Path. A directory written by `mmkeras.export.export_saved_model`.

    Raises:
        ValueError: not a model directory, or its `metadata.json` or `examples.npz` disagree with the model.
    """

    def __init__(self, model_dir):
        from mmkeras.export import EXAMPLES_FILE, SavedModelRunner, read_metadata

        self.model_dir = pathlib.Path(model_dir)
        check_metadata(self.model_dir, read_metadata(self.model_dir))
        self.runner = SavedModelRunner(self.model_dir)
        self.metadata = self.runner.metadata
        self.examples = {}
        if (self.model_dir / EXAMPLES_FILE).is_file():
            with np.load(self.model_dir / EXAMPLES_FILE) as archive:  # allow_pickle=False: arrays only
                self.examples = {key: archive[key] for key in archive.files}
            self._check_examples(self.model_dir / EXAMPLES_FILE)

    def _check_examples(self, path) -> None:
        specs, names = self.metadata["inputs"], self.metadata["class_names"]
        sizes = {len(self.examples[n]) for n in specs if n in self.examples}
        problems = [f"{n!r} has shape {list(self.examples[n].shape[1:])}, expected {specs[n]['shape']}"
                    for n in specs if n in self.examples and list(self.examples[n].shape[1:]) != specs[n]["shape"]]
        if len(sizes) > 1:
            problems.append(f"the inputs hold different numbers of examples {sorted(sizes)}")
        label = self.examples.get("label")
        if label is not None and (label.ndim != 1 or not np.issubdtype(label.dtype, np.integer) or
                                  np.any(label < 0) or np.any(label >= len(names))):
            problems.append(f"'label' must hold class indices in [0, {len(names)})")
        if problems:
            raise ValueError(f"{path} does not match metadata.json: " + "; ".join(problems))

    @property
    def num_examples(self) -> int:
        names = [n for n in self.metadata["inputs"] if n in self.examples]
        return len(self.examples[names[0]]) if names else 0

    def example_label(self, index: int) -> str | None:
        """The class name of bundled example `index`, or None when the examples carry no labels."""
        if "label" not in self.examples:
            return None
        return self.metadata["class_names"][int(self.examples["label"][index])]

    def example(self, index: int) -> dict:
        """Bundled example `index` as a request body, plus its `label` (a class name) when known."""
        answer = {"inputs": {name: self.examples[name][index].tolist() for name in self.metadata["inputs"]}}
        if "label" in self.examples:
            answer["label"] = self.example_label(index)
        return answer

    def __call__(self, arrays: dict) -> list[dict]:
        """Answers for a checked batch `{name: (batch, ...) array}` (from `parse_inputs`), one per example.

        Raises:
            ModelOutputError: the model returned NaN or infinite logits.
        """
        logits = self.runner(arrays)[self.metadata["label"]]  # (batch, num_classes)
        if not np.all(np.isfinite(logits)):
            raise ModelOutputError("The model returned NaN or infinite logits for this input; no probabilities "
                                   "can be computed from them.")
        names = self.metadata["class_names"]
        return [{"label": names[int(z.argmax())], "class_id": int(z.argmax()), "probabilities": softmax_dict(z, names)}
                for z in logits]
