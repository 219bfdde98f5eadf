"""What a multimodal dataset holds, said once: its modalities (name, per-sample shape, dtype, kind) and its
labels (name, number of classes), and the container that carries arrays together with that description.

Everything downstream reads the schema, never a particular dataset: `to_dataset`, the encoder factory
(`mmkeras.encoders.build_encoders`), `build_fusion_classifier` and the training helpers work for the embedded
"moving toys", for AV-MNIST, and for your own `{"left_cam": ..., "right_cam": ...}` with 3 classes alike.

Example:
>>> import numpy as np
>>> data = MultimodalData(
...     {"left": np.zeros((6, 28, 28), "float32"), "right": np.zeros((6, 20), "float32")},
...     {"label": np.array([0, 1, 2, 0, 1, 2])},
... )
>>> [(m.name, m.kind, m.shape) for m in data.schema.modalities]
[('left', 'image', (28, 28)), ('right', 'vector', (20,))]
>>> data.schema.label("label").num_classes
3
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mmkeras._validation import check_int, check_name, check_words

KINDS = ("text", "image", "audio", "video", "vector")
"""What kind of signal a modality is; it picks the default encoder (`mmkeras.encoders.build_encoders`)."""


def _infer_kind(shape: tuple, dtype: str) -> str | None:
    if dtype == "string":
        return "text"
    return {1: "vector", 2: "image", 3: "image", 4: "video"}.get(len(shape))


@dataclasses.dataclass(frozen=True)
class ModalitySpec:
    """One modality: its name (the key everywhere), per-sample shape, dtype and kind.

    Args:
        name: str. The key of this modality in feature dicts, model inputs and encoder names.
        shape: tuple. The shape of one sample, e.g. `(32, 32, 3)`; `()` for a caption string.
        dtype: str. `"float32"`, `"int32"` or `"string"`. Defaults to `"float32"`.
        kind: str or None. One of `KINDS`. `None` infers it: strings are text, `(d,)` a feature vector,
            `(h, w)` or `(h, w, c)` an image, `(frames, h, w, c)` a video. A waveform is `(samples,)` like a
            vector, so audio must be declared: `kind="audio"` with its `sample_rate`.
        sample_rate: int or None. Samples per second, for `kind="audio"` (the mel filters depend on it).
        vocabulary: tuple of str or None. For text: the words a tokenizer should know. `None` lets
            `mmkeras.encoders.build_encoders` learn them from the training captions.

    Example:
    >>> ModalitySpec("speech", (16000,), kind="audio", sample_rate=16000).kind
    'audio'
    """

    name: str
    shape: tuple
    dtype: str = "float32"
    kind: str | None = None
    sample_rate: int | None = None
    vocabulary: tuple | None = None

    def __post_init__(self):
        check_name("name", self.name)
        if self.vocabulary is not None:
            object.__setattr__(self, "vocabulary", tuple(check_words("vocabulary", self.vocabulary)))
        try:
            shape = tuple(int(d) for d in self.shape)
        except (TypeError, ValueError):
            shape = None
        if shape is None or any(d <= 0 for d in shape):
            raise ValueError(f"`shape` of modality {self.name!r} must be a tuple of positive ints. "
                             f"Received: shape={self.shape!r}")
        object.__setattr__(self, "shape", shape)
        if self.dtype not in ("float32", "int32", "string"):
            raise ValueError(f"`dtype` of modality {self.name!r} must be 'float32', 'int32' or 'string'. "
                             f"Received: dtype={self.dtype!r}")
        kind = self.kind if self.kind is not None else _infer_kind(shape, self.dtype)
        if kind not in KINDS:
            raise ValueError(
                f"Cannot tell what kind of signal modality {self.name!r} is from shape={shape}, dtype={self.dtype!r}: "
                f"pass kind= one of {KINDS}. Received: kind={self.kind!r}"
            )
        object.__setattr__(self, "kind", kind)
        if kind == "audio":
            if self.sample_rate is None:
                raise ValueError(f"Modality {self.name!r} is audio: pass its `sample_rate` (the mel filter bank "
                                 "depends on it). Received: sample_rate=None")
            object.__setattr__(self, "sample_rate", check_int("sample_rate", self.sample_rate))
        if kind == "text" and (self.dtype != "string" or shape != ()):
            raise ValueError(f"A text modality holds one string per sample: shape=() and dtype='string'. "
                             f"Received for {self.name!r}: shape={shape}, dtype={self.dtype!r}")


@dataclasses.dataclass(frozen=True)
class LabelSpec:
    """One label (one classification head): its name and number of classes, optionally the class names.

    Example:
    >>> LabelSpec("digit", 10).num_classes
    10
    """

    name: str
    num_classes: int
    class_names: tuple | None = None

    def __post_init__(self):
        check_name("name", self.name)
        object.__setattr__(self, "num_classes", check_int("num_classes", self.num_classes, minimum=2))
        if self.class_names is not None:
            names = tuple(str(c) for c in self.class_names)
            if len(names) != self.num_classes:
                raise ValueError(f"Label {self.name!r} has {self.num_classes} classes but {len(names)} class "
                                 f"names. Received: class_names={self.class_names!r}")
            object.__setattr__(self, "class_names", names)


@dataclasses.dataclass(frozen=True)
class DataSchema:
    """The modalities and labels of a dataset, in order. A schema with no labels describes unlabeled data
    (image-text pairs for contrastive learning, images for a GAN).

    Example:
    >>> schema = DataSchema((ModalitySpec("image", (32, 32, 3)),), (LabelSpec("label", 8),))
    >>> schema.modality_names, schema.label_names
    (('image',), ('label',))
    """

    modalities: tuple
    labels: tuple = ()

    def __post_init__(self):
        modalities, labels = tuple(self.modalities), tuple(self.labels)
        if not modalities or not all(isinstance(m, ModalitySpec) for m in modalities):
            raise ValueError(f"`modalities` must be a non-empty list of ModalitySpec. Received: {self.modalities!r}")
        if not all(isinstance(label, LabelSpec) for label in labels):
            raise ValueError(f"`labels` must be a list of LabelSpec. Received: {self.labels!r}")
        names = [m.name for m in modalities] + [label.name for label in labels]
        if len(set(names)) != len(names):
            raise ValueError(f"Modality and label names must be distinct. Received: {names}")
        object.__setattr__(self, "modalities", modalities)
        object.__setattr__(self, "labels", labels)

    @property
    def modality_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.modalities)

    @property
    def label_names(self) -> tuple[str, ...]:
        return tuple(label.name for label in self.labels)

    def modality(self, name: str) -> ModalitySpec:
        for spec in self.modalities:
            if spec.name == name:
                return spec
        raise ValueError(f"Unknown modality. Expected one of {self.modality_names}. Received: {name!r}")

    def label(self, name: str) -> LabelSpec:
        for spec in self.labels:
            if spec.name == name:
                return spec
        raise ValueError(f"Unknown label. Expected one of {self.label_names or '(this data has no labels)'}. "
                         f"Received: {name!r}")

    def select_modalities(self, names=None) -> tuple[str, ...]:
        """Validates a list of modality names; returns them in the schema's order. `None` means all.

        Raises:
            ValueError: for an empty list, a repeated name or a name the schema does not have.
        """
        if names is None:
            return self.modality_names
        names = (names,) if isinstance(names, str) else tuple(names)
        unknown = [m for m in names if m not in self.modality_names]
        if unknown or not names or len(set(names)) != len(names):
            raise ValueError(f"`modalities` must be a non-empty list of distinct names from {self.modality_names}. "
                             f"Received: modalities={names!r}")
        return tuple(m for m in self.modality_names if m in names)

    @classmethod
    def infer(cls, features: dict, labels: dict | None = None) -> DataSchema:
        """A schema read off arrays: shapes and dtypes from `features`, class counts from `labels` (max + 1)."""
        modalities = []
        for name, array in features.items():
            array = np.asarray(array)
            dtype = "string" if array.dtype.kind in "OUS" else ("int32" if array.dtype.kind in "iu" else "float32")
            modalities.append(ModalitySpec(name, tuple(array.shape[1:]), dtype))
        label_specs = []
        for name, y in (labels or {}).items():
            y = np.asarray(y)
            label_specs.append(LabelSpec(name, max(2, int(y.max()) + 1) if y.size else 2))
        return cls(tuple(modalities), tuple(label_specs))


def _as_feature(spec: ModalitySpec, array) -> np.ndarray:
    array = np.asarray(array)
    if spec.dtype == "string":
        if array.dtype.kind not in "OUS":
            raise ValueError(f"Modality {spec.name!r} holds strings. Received an array of dtype {array.dtype}")
        return array
    if array.dtype.kind not in "fiub":
        raise ValueError(f"Modality {spec.name!r} holds numbers ({spec.dtype}). Received dtype {array.dtype}")
    return array.astype(spec.dtype, copy=False)


@dataclasses.dataclass(frozen=True)
class MultimodalData:
    """Samples of several modalities as NumPy arrays, with their labels, per-sample notes and schema.

    Every array's first axis is the sample axis, the same length everywhere.

    Args:
        features: dict `{modality: array (n, *shape)}`; strings for text.
        labels: dict `{label: int array (n,)}`, or `None` for unlabeled data.
        meta: dict `{name: array (n,)}` of per-sample notes the model never sees (e.g. which sensor failed).
        schema: DataSchema or None. `None` infers it from the arrays (class counts from the largest label).

    Example:
    >>> import numpy as np
    >>> data = MultimodalData({"a": np.ones((4, 3))}, {"y": np.array([0, 1, 1, 0])})
    >>> len(data), data.select([0, 1]).labels["y"].tolist()
    (4, [0, 1])
    """

    features: dict
    labels: dict = dataclasses.field(default_factory=dict)
    meta: dict = dataclasses.field(default_factory=dict)
    schema: DataSchema | None = None

    def __post_init__(self):
        if not isinstance(self.features, dict) or not self.features:
            raise ValueError(f"`features` must be a non-empty dict {{modality: array}}. "
                             f"Received: {type(self.features).__name__}")
        labels = {} if self.labels is None else self.labels
        meta = {} if self.meta is None else self.meta
        if not isinstance(labels, dict) or not isinstance(meta, dict):
            raise ValueError(f"`labels` and `meta` must be dicts of arrays. Received: labels={type(labels).__name__}, "
                             f"meta={type(meta).__name__}")
        schema = self.schema or DataSchema.infer(self.features, labels)
        if not isinstance(schema, DataSchema):
            raise ValueError(f"`schema` must be a DataSchema or None. Received: {schema!r}")
        if set(self.features) != set(schema.modality_names) or set(labels) != set(schema.label_names):
            raise ValueError(
                f"The arrays do not match the schema: features {sorted(self.features)} vs modalities "
                f"{list(schema.modality_names)}, labels {sorted(labels)} vs {list(schema.label_names)}"
            )
        features = {m.name: _as_feature(m, self.features[m.name]) for m in schema.modalities}
        sizes = {f"features[{k!r}]": len(v) for k, v in features.items()}
        sizes |= {f"labels[{k!r}]": len(np.asarray(v)) for k, v in labels.items()}
        sizes |= {f"meta[{k!r}]": len(np.asarray(v)) for k, v in meta.items()}
        if len(set(sizes.values())) != 1:
            raise ValueError(f"Every array must hold the same number of samples. Received: {sizes}")
        for spec in schema.modalities:
            if tuple(features[spec.name].shape[1:]) != spec.shape:
                raise ValueError(f"features[{spec.name!r}] must have samples of shape {spec.shape}. "
                                 f"Received: array of shape {features[spec.name].shape}")
        checked_labels = {}
        for spec in schema.labels:
            y = np.asarray(labels[spec.name])
            if y.ndim != 1 or (y.size and (y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= spec.num_classes)):
                raise ValueError(
                    f"labels[{spec.name!r}] must be a 1-D array of class ids in [0, {spec.num_classes}). Received: "
                    f"shape {y.shape}, dtype {y.dtype}" + (f", values in [{y.min()}, {y.max()}]" if y.size else "")
                )
            checked_labels[spec.name] = y.astype(np.int32, copy=False)
        object.__setattr__(self, "features", features)
        object.__setattr__(self, "labels", checked_labels)
        object.__setattr__(self, "meta", {k: np.asarray(v) for k, v in meta.items()})
        object.__setattr__(self, "schema", schema)

    def __len__(self) -> int:
        return int(len(next(iter(self.features.values()))))

    def select(self, index) -> MultimodalData:
        """The samples at `index` (an int array, a bool mask or a slice) as a new `MultimodalData`."""

        def pick(d):
            return {k: v[index] for k, v in d.items()}

        return MultimodalData(pick(self.features), pick(self.labels), pick(self.meta), self.schema)

    def inputs(self, modalities=None) -> dict:
        """The features as model inputs, `{modality: tensor}`, ready for `model(data.inputs())`.

        Keras takes NumPy arrays for numbers, but a batch of strings must be a `tf.string` tensor: this does
        the conversion for every modality at once.
        """
        import tensorflow as tf  # strings need TensorFlow tensors; imported only when asked for

        names = self.schema.select_modalities(modalities)
        return {m: tf.constant(self.features[m].astype(str) if self.schema.modality(m).dtype == "string"
                               else self.features[m]) for m in names}
