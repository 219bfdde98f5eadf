"""`MultimodalPreprocessor`: raw named inputs -> what a numeric model reads, in TensorFlow, in `tf.data`.

keras-hub splits every task into a *preprocessor* (tokenizers, audio and image converters; TensorFlow ops run
in `tf.data`) and a numeric *backbone*; its `Task.fit`, `evaluate` and `predict` map the preprocessor over the
data. The course's task models (`mmkeras.task.TaskModel`) are keras-hub `Task`s and do the same with this layer:

    {"text": "a red toy ...", "audio": waveform, "image": uint8 pixels}
        -> {"text": token ids (L,), "audio": log-mel (frames, mels), "image": float32 in [0, 1]}
"""

from __future__ import annotations

import keras
import numpy as np

from mmkeras._validation import check_name
from mmkeras.preprocessing.tensors import to_backend

RAW_DTYPES = ("float32", "int32", "int64", "uint8", "string")


def _check_specs(input_specs) -> dict:
    if not isinstance(input_specs, dict) or not input_specs:
        raise ValueError(f"`input_specs` must be a non-empty dict {{modality: {{'shape': [...], 'dtype': ...}}}}. "
                         f"Received: input_specs={input_specs!r}")
    specs = {}
    for name, spec in input_specs.items():
        check_name("input_specs key", name)
        if isinstance(spec, dict):
            shape, dtype = spec.get("shape"), spec.get("dtype")
        elif isinstance(spec, list | tuple) and len(spec) == 2:
            shape, dtype = spec
        else:
            shape = dtype = None
        if shape is None or dtype not in RAW_DTYPES:
            raise ValueError(f"input_specs[{name!r}] must be {{'shape': one example's shape, 'dtype': one of "
                             f"{RAW_DTYPES}}}. Received: {spec!r}")
        specs[name] = {"shape": [int(d) for d in shape], "dtype": str(dtype)}
    return specs


@keras.saving.register_keras_serializable(package="mmkeras")
class MultimodalPreprocessor(keras.layers.Layer):
    """Turns raw inputs `{modality: x_m}` into the inputs of a numeric model, one step per modality.

    `x_m -> step_m(x_m)`, or `x_m` cast to float32 for a modality without a step (time series, vectors,
    videos, float images). Every step works on each example alone (no statistic over the batch), so a
    prediction depends on its own input only; the steps are deterministic (augmentation, which must run in
    `fit` only, stays in the model as `mmkeras.encoders.TrainingOnly` layers, because keras-hub's `Task` maps
    one preprocessing function over training, validation and prediction alike).

    Runs in TensorFlow, whatever the Keras backend: inside `tf.data` (where `TaskModel.fit`/`evaluate`/`predict`
    put it) or eagerly on NumPy arrays, lists of strings or tensors.

    Args:
        steps: dict `{modality: keras Layer or None}`. E.g. `{"text": caption_tokenizer(vocabulary),
            "audio": LogMelSpectrogram(8000), "image": None}`.
        input_specs: dict `{modality: {"shape": one example's shape, "dtype": str}}`: the raw inputs, which
            an export's serving signature takes (`()` and `"string"` for a caption). Same keys as `steps`.
        **kwargs: passed on to `keras.layers.Layer`.

    Example:
    >>> import numpy as np
    >>> from mmkeras.encoders.text import caption_tokenizer
    >>> preprocessor = MultimodalPreprocessor(
    ...     {"text": caption_tokenizer(["red", "toy"], 4), "signal": None},
    ...     {"text": {"shape": [], "dtype": "string"}, "signal": {"shape": [3], "dtype": "float32"}})
    >>> out = preprocessor({"text": ["a red toy"], "signal": np.ones((1, 3))})
    >>> keras.ops.convert_to_numpy(out["text"]).tolist(), out["signal"].dtype.name
    ([[1, 2, 3, 0]], 'float32')
    """

    def __init__(self, steps, input_specs, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(steps, dict) or not steps:
            raise ValueError(f"`steps` must be a non-empty dict {{modality: keras Layer or None}}. "
                             f"Received: steps={steps!r}")
        for name, step in steps.items():
            check_name("steps key", name)
            if step is not None and not isinstance(step, keras.layers.Layer):
                raise ValueError(f"steps[{name!r}] must be a keras Layer or None. Received: {step!r}")
        self.input_specs = _check_specs(input_specs)
        if set(self.input_specs) != set(steps):
            raise ValueError(f"`steps` and `input_specs` must name the same modalities. Received: steps for "
                             f"{sorted(steps)}, input_specs for {sorted(self.input_specs)}")
        self.steps = dict(steps)
        self._convert_input_args = False  # TensorFlow tensors (strings too), as keras-hub's preprocessing layers
        self._allow_non_tensor_positional_args = True
        self.built = True

    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(self.steps)

    def call(self, inputs):
        if not isinstance(inputs, dict):
            raise ValueError(f"MultimodalPreprocessor takes a dict {{modality: batch}} with keys "
                             f"{list(self.steps)}. Received: {type(inputs).__name__}")
        missing = [m for m in self.steps if m not in inputs]
        if missing:
            raise ValueError(f"Missing modalities {missing}: this preprocessor (and its model) reads "
                             f"{list(self.steps)}. Received keys: {sorted(inputs)}")
        return to_backend({name: self._prepare(name, inputs[name]) for name in self.steps})

    def preprocess(self, modality, values):
        """One modality's step alone: e.g. the token ids of captions, `preprocess("text", ["a red toy"])`.

        For a model that encodes one modality at a time (a dual encoder's `encode_text`, attention maps).

        Example:
        >>> from mmkeras.encoders.text import caption_tokenizer
        >>> preprocessor = MultimodalPreprocessor({"text": caption_tokenizer(["red", "toy"], 3)},
        ...                                      {"text": {"shape": [], "dtype": "string"}})
        >>> keras.ops.convert_to_numpy(preprocessor.preprocess("text", ["red toy"])).tolist()
        [[2, 3, 0]]
        """
        if modality not in self.steps:
            raise ValueError(f"This preprocessor prepares {list(self.steps)}. Received: modality={modality!r}")
        return to_backend(self._prepare(modality, values))

    def _prepare(self, name, x):
        """`step(x)` for one modality's batch, as a TensorFlow tensor (`x` cast to float32 without a step)."""
        import tensorflow as tf

        step, dtype = self.steps[name], self.input_specs[name]["dtype"]
        if dtype == "string":
            x = tf.convert_to_tensor(np.asarray(x).astype(str) if isinstance(x, list | np.ndarray) else x)
        else:
            x = tf.convert_to_tensor(x)
            if not x.dtype.is_floating and not x.dtype.is_integer:
                raise ValueError(f"Modality {name!r} must be numbers ({dtype}). Received dtype: {x.dtype.name}")
        rank = len(self.input_specs[name]["shape"]) + 1
        if x.shape.rank is not None and x.shape.rank != rank:
            raise ValueError(f"Modality {name!r} must be a batch of shape (batch, "
                             f"{', '.join(map(str, self.input_specs[name]['shape']))}). Received shape: "
                             f"{tuple(x.shape)}")
        if step is None:
            return tf.cast(x, tf.float32)
        y = step(x if dtype == "string" else tf.cast(x, tf.float32))
        if not tf.is_tensor(y):  # a Keras layer called eagerly on JAX hands back a JAX array
            y = tf.convert_to_tensor(np.asarray(y))
        return tf.cast(y, tf.int32) if y.dtype.is_integer else y  # token ids: int32 on any backend

    def describe(self) -> str:
        """One line per modality: the raw input, and the step that turns it into the model's input.

        Example:
        >>> print(MultimodalPreprocessor({"x": None}, {"x": {"shape": [3], "dtype": "uint8"}}, name="pre").describe())
        Preprocessor 'pre' (TensorFlow, in tf.data):
          x: uint8 (3,) -> float32 as it is
        """
        lines = [f"Preprocessor {self.name!r} (TensorFlow, in tf.data):"]
        for name, step in self.steps.items():
            spec = self.input_specs[name]
            what = "float32 as it is" if step is None else type(step).__name__
            lines.append(f"  {name}: {spec['dtype']} {tuple(spec['shape'])} -> {what}")
        return "\n".join(lines)

    def compute_output_spec(self, inputs):
        raise NotImplementedError("MultimodalPreprocessor runs on data (tf.data, NumPy), not on symbolic inputs.")

    def get_config(self):
        return super().get_config() | {
            "steps": {m: None if s is None else keras.saving.serialize_keras_object(s) for m, s in self.steps.items()},
            "input_specs": self.input_specs,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["steps"] = {m: None if s is None else keras.saving.deserialize_keras_object(s)
                           for m, s in config["steps"].items()}
        return cls(**config)


def check_preprocessor(preprocessor, modalities, allow_none: bool = True):
    """Validates a model's `preprocessor` argument: a `MultimodalPreprocessor` for exactly `modalities` (or None).

    Example:
    >>> check_preprocessor(None, ["image", "text"]) is None
    True
    """
    if preprocessor is None and allow_none:
        return None
    if not isinstance(preprocessor, MultimodalPreprocessor):
        raise ValueError(f"`preprocessor` must be a mmkeras.preprocessing.MultimodalPreprocessor"
                         f"{' or None' if allow_none else ''}. Received: preprocessor={preprocessor!r}")
    if set(preprocessor.modalities) != set(modalities):
        raise ValueError(f"The preprocessor must prepare exactly the model's modalities {sorted(modalities)}. "
                         f"Received: a preprocessor for {sorted(preprocessor.modalities)}")
    return preprocessor
