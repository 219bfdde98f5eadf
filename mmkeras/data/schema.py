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

KINDS = ("text", "image", "audio", "video", "vector", "timeseries")
"""What kind of signal a modality is; it picks the default encoder (`mmkeras.encoders.build_encoders`)."""

DTYPES = ("float32", "int32", "uint8", "string")
"""The dtypes a modality may declare. `"uint8"` is kept as such (not widened to `"int32"`): it marks 0-255 pixels,
which the default image encoder rescales to [0, 1]."""

IMAGE_MIN_SIDE = 8
"""A 2-D sample is inferred as an image only if both sides have at least this many pixels (the default image
encoder halves them three times)."""
IMAGE_MAX_ASPECT = 2
"""... and, unless it holds uint8 pixels, if its longer side is at most this many times its shorter side."""
TIMESERIES_MIN_STEPS_PER_CHANNEL = 4
"""A 2-D sample `(steps, channels)` is inferred as a time series if it has at least this many steps per channel."""


def _infer_2d_kind(name: str, shape: tuple, dtype: str) -> str:
    """`(a, b)`: an image if both sides >= 8 and (uint8, or roughly square: max <= 2 min), a time series if
    `a >= 4 b`; anything else could be either, and is refused with the fix."""
    a, b = shape
    if min(a, b) >= IMAGE_MIN_SIDE and (dtype == "uint8" or max(a, b) <= IMAGE_MAX_ASPECT * min(a, b)):
        return "image"
    if a >= TIMESERIES_MIN_STEPS_PER_CHANNEL * b:
        return "timeseries"
    transposed = (" If the first axis holds the channels, put the steps first: `np.swapaxes(x, 1, 2)`."
                  if b >= TIMESERIES_MIN_STEPS_PER_CHANNEL * a else "")
    raise ValueError(
        f"Cannot tell what modality {name!r} is: samples of shape {shape} ({dtype}) could be a time series "
        f"(steps, channels) or a grayscale image (height, width).{transposed} Say which: "
        f"`MultimodalData(features, labels, kinds={{{name!r}: 'timeseries'}})` or `kinds={{{name!r}: 'image'}}` "
        f"(in a schema: `ModalitySpec({name!r}, {shape}, kind='timeseries')`). Inferred without asking: "
        f"an image has both sides >= {IMAGE_MIN_SIDE} and is at most {IMAGE_MAX_ASPECT} times as long as wide "
        f"(any shape for uint8 pixels); a time series has at least {TIMESERIES_MIN_STEPS_PER_CHANNEL} times more "
        f"steps than channels."
    )


def _infer_kind(name: str, shape: tuple, dtype: str) -> str | None:
    if dtype == "string":
        return "text"
    if len(shape) == 2:
        return _infer_2d_kind(name, shape, dtype)
    return {1: "vector", 3: "image", 4: "video"}.get(len(shape))


@dataclasses.dataclass(frozen=True)
class ModalitySpec:
    """One modality: its name (the key everywhere), per-sample shape, dtype and kind.

    Args:
        name: str. The key of this modality in feature dicts, model inputs and encoder names.
        shape: tuple. The shape of one sample, e.g. `(32, 32, 3)`; `()` for a caption string.
        dtype: str. `"float32"`, `"int32"`, `"uint8"` (0-255 pixels: the default image encoder rescales them
            to [0, 1]) or `"string"`. Defaults to `"float32"`.
        kind: str or None. One of `KINDS`. `None` infers it: strings are text, `(d,)` a feature vector,
            `(h, w, c)` an image, `(frames, h, w, c)` a video. A 2-D sample `(a, b)` is an image `(h, w)`
            if both sides are >= 8 and it is roughly square (`max <= 2 min`; any aspect ratio for uint8),
            a time series `(steps, channels)` if `a >= 4 b` (an EEG `(128, 4)`, an accelerometer `(500, 3)`);
            anything else is refused with a message that says how to declare it. A waveform is `(samples,)`
            like a vector, so audio must be declared: `kind="audio"` with its `sample_rate`. A time series
            may also be `(steps,)`, one channel, when declared.
        sample_rate: int or None. Samples per second, for `kind="audio"` (the mel filters depend on it).
        vocabulary: tuple of str or None. For text: the words a tokenizer should know. `None` lets
            `mmkeras.encoders.build_encoders` learn them from the training captions.

    Example:
    >>> ModalitySpec("speech", (16000,), kind="audio", sample_rate=16000).kind
    'audio'
    >>> ModalitySpec("eeg", (128, 4)).kind, ModalitySpec("scan", (28, 28)).kind
    ('timeseries', 'image')
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
        if self.dtype not in DTYPES:
            raise ValueError(f"`dtype` of modality {self.name!r} must be one of {DTYPES}. "
                             f"Received: dtype={self.dtype!r}")
        if self.kind is not None and self.kind not in KINDS:
            raise ValueError(f"`kind` of modality {self.name!r} must be one of {KINDS}. Received: kind={self.kind!r}")
        kind = self.kind if self.kind is not None else _infer_kind(self.name, shape, self.dtype)
        if kind is None:
            raise ValueError(
                f"Cannot tell what kind of signal modality {self.name!r} is from shape={shape}, dtype={self.dtype!r}: "
                f"pass kind= one of {KINDS}. Received: kind={self.kind!r}"
            )
        object.__setattr__(self, "kind", kind)
        if kind == "audio":
            if self.sample_rate is None:
                raise ValueError(f"Modality {self.name!r} is audio: pass its `sample_rate` (the mel filter bank "
                                 f"depends on it), e.g. `MultimodalData(..., specs={{{self.name!r}: {{'kind': 'audio', "
                                 f"'sample_rate': 16000}}}})`. Received: sample_rate=None")
            object.__setattr__(self, "sample_rate", check_int("sample_rate", self.sample_rate))
        if kind == "text" and (self.dtype != "string" or shape != ()):
            raise ValueError(f"A text modality holds one string per sample: shape=() and dtype='string'. "
                             f"Received for {self.name!r}: shape={shape}, dtype={self.dtype!r}")
        if kind == "timeseries" and (self.dtype == "string" or len(shape) not in (1, 2)):
            raise ValueError(f"A time series holds numbers of shape (steps, channels), or (steps,) for one channel. "
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
    def infer(cls, features: dict, labels: dict | None = None, kinds: dict | None = None,
              specs: dict | None = None) -> DataSchema:
        """A schema read off arrays: shapes and dtypes from `features`, class counts from `labels` (max + 1).

        Args:
            features: dict `{modality: array (n, *shape)}`.
            labels: dict `{label: int array (n,)}` or None.
            kinds: dict `{modality: kind}` or None. Declares the kind of chosen modalities (one of `KINDS`);
                their shape and dtype are still read off the arrays. The others are inferred.
            specs: dict `{modality: ModalitySpec or dict}` or None. A whole spec for chosen modalities, or a
                dict of `ModalitySpec` arguments whose shape and dtype default to the array's, e.g.
                `{"mic": {"kind": "audio", "sample_rate": 16000}}`.

        Example:
        >>> schema = DataSchema.infer({"eeg": np.zeros((2, 100, 30)), "notes": np.array(["a", "b"])},
        ...                           kinds={"eeg": "timeseries"})
        >>> [(m.name, m.kind, m.shape) for m in schema.modalities]
        [('eeg', 'timeseries', (100, 30)), ('notes', 'text', ())]
        """
        kinds = _check_per_modality("kinds", kinds, features)
        specs = _check_per_modality("specs", specs, features)
        both = sorted(set(kinds) & set(specs))
        if both:
            raise ValueError(f"Declare each modality in `kinds` or in `specs`, not both. Received both for {both}")
        modalities = []
        for name, array in features.items():
            array = np.asarray(array)
            if array.ndim == 0:
                raise ValueError(f"features[{name!r}] must be an array with one sample per row. "
                                 f"Received: a scalar {array!r}")
            spec = specs.get(name)
            if isinstance(spec, ModalitySpec):
                if spec.name != name:
                    raise ValueError(f"specs[{name!r}] describes modality {spec.name!r}. Received: {spec!r}")
                modalities.append(spec)
                continue
            fields = ("shape", "dtype", "kind", "sample_rate", "vocabulary")
            if spec is not None and (not isinstance(spec, dict) or set(spec) - set(fields)):
                raise ValueError(f"specs[{name!r}] must be a ModalitySpec or a dict of its arguments {fields}. "
                                 f"Received: {spec!r}")
            arguments = {"shape": tuple(array.shape[1:]), "dtype": _dtype_of(array), "kind": kinds.get(name)}
            modalities.append(ModalitySpec(name, **(arguments | (spec or {}))))
        label_specs = []
        for name, y in (labels or {}).items():
            y = np.asarray(y)
            label_specs.append(LabelSpec(name, max(2, int(y.max()) + 1) if y.size else 2))
        return cls(tuple(modalities), tuple(label_specs))


def _dtype_of(array: np.ndarray) -> str:
    """The schema dtype of an array: strings, uint8 (pixels) kept as such, other integers as int32, else float32."""
    if array.dtype.kind in "OUS":
        return "string"
    if array.dtype == np.uint8:
        return "uint8"
    return "int32" if array.dtype.kind in "iu" else "float32"


def _check_per_modality(argument: str, values, features: dict) -> dict:
    """`values` (a dict keyed by modality, or None) as a dict, its keys checked against the features'."""
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"`{argument}` must be a dict keyed by modality name, e.g. {{'eeg': 'timeseries'}}. "
                         f"Received: {argument}={values!r}")
    unknown = [name for name in values if name not in features]
    if unknown:
        raise ValueError(f"`{argument}` names modalities the features do not have: {unknown}. Expected names from "
                         f"{list(features)}. Received: {argument}={values!r}")
    return dict(values)


def _as_feature(spec: ModalitySpec, array) -> np.ndarray:
    array = np.asarray(array)
    if spec.dtype == "string":
        if array.dtype.kind not in "OUS":
            raise ValueError(f"Modality {spec.name!r} holds strings. Received an array of dtype {array.dtype}")
        return array
    if array.dtype.kind not in "fiub":
        raise ValueError(f"Modality {spec.name!r} holds numbers ({spec.dtype}). Received dtype {array.dtype}")
    if spec.dtype == "uint8" and array.dtype != np.uint8 and (
        array.dtype.kind not in "iub" or (array.size and (array.min() < 0 or array.max() > 255))
    ):
        raise ValueError(f"Modality {spec.name!r} holds uint8 pixels (0-255). Received an array of dtype {array.dtype}"
                         + (f" with values in [{array.min()}, {array.max()}]" if array.size else ""))
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
        kinds: dict `{modality: kind}` or None. With `schema=None`: the kind of chosen modalities, when the
            arrays' shapes do not tell it (`{"eeg": "timeseries"}`); the rest is inferred.
        specs: dict `{modality: ModalitySpec or dict}` or None. With `schema=None`: the whole spec of chosen
            modalities, e.g. `{"mic": {"kind": "audio", "sample_rate": 16000}}` (shape and dtype default to
            the array's); the rest is inferred.

    Example:
    >>> import numpy as np
    >>> data = MultimodalData({"a": np.ones((4, 3))}, {"y": np.array([0, 1, 1, 0])})
    >>> len(data), data.select([0, 1]).labels["y"].tolist()
    (4, [0, 1])
    >>> eeg = MultimodalData({"eeg": np.zeros((4, 100, 30))}, kinds={"eeg": "timeseries"})
    >>> eeg.schema.modality("eeg").kind
    'timeseries'
    """

    features: dict
    labels: dict = dataclasses.field(default_factory=dict)
    meta: dict = dataclasses.field(default_factory=dict)
    schema: DataSchema | None = None
    kinds: dataclasses.InitVar[dict | None] = None
    specs: dataclasses.InitVar[dict | None] = None

    def __post_init__(self, kinds, specs):
        if not isinstance(self.features, dict) or not self.features:
            raise ValueError(f"`features` must be a non-empty dict {{modality: array}}. "
                             f"Received: {type(self.features).__name__}")
        labels = {} if self.labels is None else self.labels
        meta = {} if self.meta is None else self.meta
        if not isinstance(labels, dict) or not isinstance(meta, dict):
            raise ValueError(f"`labels` and `meta` must be dicts of arrays. Received: labels={type(labels).__name__}, "
                             f"meta={type(meta).__name__}")
        if self.schema is not None and (kinds or specs):
            raise ValueError("Pass either a `schema` or `kinds`/`specs` to infer one, not both. Received: "
                             f"kinds={kinds!r}, specs={specs!r} with a schema")
        schema = self.schema or DataSchema.infer(self.features, labels, kinds=kinds, specs=specs)
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
        """The features as model inputs, `{modality: tensor}`, ready for `model.predict(data.inputs())`,
        or for a model that reads raw inputs (`model(data.inputs())`).

        Keras takes NumPy arrays for numbers, but a batch of strings must be a `tf.string` tensor: this does
        the conversion for every modality at once.
        """
        import tensorflow as tf  # strings need TensorFlow tensors; imported only when asked for

        names = self.schema.select_modalities(modalities)
        return {m: tf.constant(self.features[m].astype(str) if self.schema.modality(m).dtype == "string"
                               else self.features[m]) for m in names}
