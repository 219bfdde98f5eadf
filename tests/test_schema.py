"""The schema: any modality names, shapes and labels, inferred or declared; bad data gets a clear error."""

from __future__ import annotations

import re

import numpy as np
import pytest

from mmkeras.data import SCHEMA, DataSchema, LabelSpec, ModalitySpec, MultimodalData, make_synthetic, to_dataset


def test_inference_reads_names_shapes_kinds_and_classes():
    data = MultimodalData(
        {"caption": np.array(["a", "b", "c"]), "cam": np.zeros((3, 8, 8)), "clip": np.zeros((3, 4, 8, 8, 1)),
         "tab": np.zeros((3, 5), "int64")},
        {"y": np.array([0, 2, 1]), "z": np.array([1, 0, 1])},
    )
    kinds = {m.name: (m.kind, m.shape, m.dtype) for m in data.schema.modalities}
    assert kinds == {"caption": ("text", (), "string"), "cam": ("image", (8, 8), "float32"),
                     "clip": ("video", (4, 8, 8, 1), "float32"), "tab": ("vector", (5,), "int32")}
    assert [(label.name, label.num_classes) for label in data.schema.labels] == [("y", 3), ("z", 2)]


def test_unlabeled_data_feeds_features_only():
    data = MultimodalData({"image": np.zeros((5, 4, 4, 3)), "text": np.array(["x"] * 5)})
    assert data.schema.labels == () and len(data) == 5
    element = next(iter(to_dataset(data, batch_size=5)))
    assert sorted(element) == ["image", "text"]


def test_the_toys_carry_their_schema():
    data = make_synthetic(4)
    assert data.schema is SCHEMA
    assert SCHEMA.modality("audio").sample_rate == 8000 and SCHEMA.label("label").class_names[5] == "red cross right"


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: ModalitySpec("mic", (16000,), kind="audio"), r"sample_rate=None"),
        (lambda: ModalitySpec("x", (2, 3, 4, 5, 6)), r"pass kind="),
        (lambda: ModalitySpec("x", (0, 3)), r"shape=\(0, 3\)"),
        (lambda: ModalitySpec("", (3,)), r"name=''"),
        (lambda: ModalitySpec("t", (4,), "string"), r"shape=\(\) and dtype='string'"),
        (lambda: LabelSpec("y", 1), r"num_classes=1"),
        (lambda: LabelSpec("y", 2, ("a",)), r"2 classes but 1 class names"),
        (lambda: DataSchema((ModalitySpec("a", (3,)), ModalitySpec("a", (4,)))), r"distinct"),
        (lambda: MultimodalData({"a": np.zeros((3, 2))}, {"y": np.array([0, 1])}), r"same number of samples"),
        (lambda: MultimodalData({"a": np.zeros((3, 2))}, {"y": np.array([0.5, 1, 0])}), r"class ids"),
        (lambda: MultimodalData({"a": np.zeros((2, 2))}, {"y": np.array([0, 5])},
                                schema=DataSchema((ModalitySpec("a", (2,)),), (LabelSpec("y", 3),))), r"\[0, 3\)"),
        (lambda: MultimodalData({"a": np.zeros((2, 3))}, None,
                                schema=DataSchema((ModalitySpec("a", (2,)),))), r"shape \(2,\)"),
        (lambda: MultimodalData({"b": np.zeros((2, 2))}, None,
                                schema=DataSchema((ModalitySpec("a", (2,)),))), r"do not match the schema"),
        (lambda: MultimodalData({"a": np.array(["x", "y"])}, None,
                                schema=DataSchema((ModalitySpec("a", (), "float32", kind="vector"),))), r"numbers"),
        (lambda: SCHEMA.select_modalities(["smell"]), r"smell"),
        (lambda: SCHEMA.label("size"), r"Received: 'size'"),
    ],
)
def test_bad_schema_or_data_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# === What a 2-D sample is: time series, image, or "tell me" ===


INFERRED_2D = [  # (shape of one sample, dtype, inferred kind)
    ((128, 4), "float32", "timeseries"),  # the newcomer's EEG: 128 steps x 4 channels
    ((500, 3), "float32", "timeseries"),  # an accelerometer
    ((1000, 64), "float32", "timeseries"),  # a 64-channel EEG
    ((64, 8), "float32", "timeseries"),  # 8 steps per channel
    ((12, 3), "int64", "timeseries"),  # integer sensor readings
    ((128, 4), "uint8", "timeseries"),  # too thin to be a picture, even in uint8
    ((28, 28), "float32", "image"),  # a grayscale digit
    ((20, 20), "float32", "image"),  # the README's camera
    ((8, 8), "float32", "image"),
    ((32, 16), "float32", "image"),  # at most twice as long as wide
    ((64, 8), "uint8", "image"),  # uint8 pixels: any aspect ratio
]


def test_a_2d_sample_is_inferred_only_when_its_shape_tells():
    features = {f"x{i}": np.zeros((2, *shape), dtype) for i, (shape, dtype, _) in enumerate(INFERRED_2D)}
    kinds = [m.kind for m in MultimodalData(features).schema.modalities]
    assert kinds == [kind for _, _, kind in INFERRED_2D]


@pytest.mark.parametrize(
    "shape,extra",
    [
        ((100, 30), ""),  # 3.3 x longer than wide: a long picture, or 30 channels?
        ((6, 6), ""),  # too small for the image encoder, too short for a time series
        ((4, 128), r"np.swapaxes\(x, 1, 2\)"),  # channels first
    ],
)
def test_an_ambiguous_2d_sample_is_refused_with_the_fix(shape, extra):
    message = (rf"'eeg'.*shape {re.escape(str(shape))}.*{extra}.*kinds=\{{'eeg': 'timeseries'\}}"
               r".*kinds=\{'eeg': 'image'\}")
    with pytest.raises(ValueError, match=message):
        MultimodalData({"eeg": np.zeros((2, *shape), "float32")}, {"label": np.array([0, 1])})


def test_kinds_and_specs_declare_chosen_modalities_the_rest_is_inferred():
    features = {"eeg": np.zeros((4, 100, 30), "float32"), "mic": np.zeros((4, 800), "float32"),
                "scan": np.zeros((4, 100, 30), "float32"), "notes": np.array(["a b"] * 4)}
    data = MultimodalData(features, {"y": np.array([0, 1, 2, 0])}, kinds={"eeg": "timeseries", "scan": "image"},
                          specs={"mic": {"kind": "audio", "sample_rate": 8000}})
    assert [(m.name, m.kind, m.shape) for m in data.schema.modalities] == [
        ("eeg", "timeseries", (100, 30)), ("mic", "audio", (800,)), ("scan", "image", (100, 30)), ("notes", "text", ())]
    assert data.schema.modality("mic").sample_rate == 8000
    spec = ModalitySpec("eeg", (100, 30), kind="timeseries")
    assert MultimodalData({"eeg": features["eeg"]}, specs={"eeg": spec}).schema.modality("eeg") is spec
    explicit = MultimodalData({"eeg": np.zeros((2, 128, 4))}, kinds={"eeg": "image"})  # you know best
    assert explicit.schema.modality("eeg").kind == "image"
    assert data.select([0, 1]).schema is data.schema


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: MultimodalData({"eeg": np.zeros((2, 9))}, kinds={"eeg": "signal"}),
         r"one of \(.*'timeseries'.*kind='signal'"),
        (lambda: MultimodalData({"eeg": np.zeros((2, 9))}, kinds={"egg": "vector"}), r"\['egg'\].*\['eeg'\]"),
        (lambda: MultimodalData({"eeg": np.zeros((2, 9))}, kinds=["eeg"]), r"dict keyed by modality"),
        (lambda: MultimodalData({"eeg": np.zeros((2, 9))}, kinds={"eeg": "vector"}, specs={"eeg": {"kind": "vector"}}),
         r"not both"),
        (lambda: MultimodalData({"eeg": np.zeros((2, 9))}, specs={"eeg": ModalitySpec("other", (9,))}), r"'other'"),
        (lambda: MultimodalData({"eeg": np.zeros((2, 9))}, specs={"eeg": {"name": "x"}}), r"dict of its arguments"),
        (lambda: MultimodalData({"eeg": np.zeros((2, 9))}, schema=DataSchema((ModalitySpec("eeg", (9,)),)),
                                kinds={"eeg": "vector"}), r"either a `schema` or `kinds`"),
        (lambda: MultimodalData({"mic": np.zeros((2, 9))}, kinds={"mic": "audio"}),
         r"specs=\{'mic': \{'kind': 'audio', 'sample_rate'"),
        (lambda: MultimodalData({"x": np.full((2, 3), 300)}, specs={"x": {"dtype": "uint8"}}), r"\[300, 300\]"),
        (lambda: MultimodalData({"x": np.zeros((2, 3))}, specs={"x": {"dtype": "uint8"}}), r"uint8 pixels.*float64"),
        (lambda: ModalitySpec("x", (3,), dtype="float64"), r"dtype='float64'"),
    ],
)
def test_bad_kinds_or_specs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_dtypes_are_recorded_faithfully():
    arrays = {"u8": np.zeros((2, 8, 8, 3), "uint8"), "i64": np.zeros((2, 5), "int64"),
              "u16": np.zeros((2, 5), "uint16"), "f64": np.zeros((2, 5)), "flags": np.zeros((2, 5), bool)}
    dtypes = {m.name: m.dtype for m in DataSchema.infer(arrays).modalities}
    assert dtypes == {"u8": "uint8", "i64": "int32", "u16": "int32", "f64": "float32", "flags": "float32"}
    data = MultimodalData({"cam": np.arange(2 * 64, dtype="int64").reshape(2, 8, 8)}, specs={"cam": {"dtype": "uint8"}})
    assert data.features["cam"].dtype == np.uint8


def test_the_course_datasets_infer_as_before():
    """The toys, the captioned scenes and AV-MNIST declare only what cannot be inferred (audio): re-inferring
    every other modality from its shape and dtype gives the kind they have always had."""
    from mmkeras.data import SCENE_SCHEMA
    from mmkeras.data.avmnist import AVMNIST_SCHEMA

    expected = {"text": "text", "image": "image", "audio": "audio", "video": "video"}
    for schema in (SCHEMA, SCENE_SCHEMA, AVMNIST_SCHEMA):
        for spec in schema.modalities:
            assert spec.kind == expected[spec.name]
            if spec.kind != "audio":
                assert ModalitySpec(spec.name, spec.shape, spec.dtype).kind == spec.kind, (schema, spec)
    toys = make_synthetic(4)
    inferred = DataSchema.infer(toys.features, toys.labels, specs={"audio": SCHEMA.modality("audio")})

    def described(schema):
        return [(m.name, m.shape, m.dtype, m.kind) for m in schema.modalities]

    assert described(inferred) == described(SCHEMA)


# === Names: what Keras and TensorFlow accept, refused at once rather than in fit ===


def test_modality_names_must_be_ascii_scope_names():
    for name, match in [
        ("left cam", r"Try 'left_cam'"),
        ("深度", r"ASCII.*'depth'.*Received: name='深度'"),
        ("cámara", r"Try 'camara'"),
        ("_private", r"not starting with '_'"),
        ("a/b", r"Try 'a_b'"),
    ]:
        with pytest.raises(ValueError, match=match):
            ModalitySpec(name, (3,))
        with pytest.raises(ValueError, match=match):
            MultimodalData({name: np.zeros((2, 3))})
        with pytest.raises(ValueError, match=match):
            LabelSpec(name, 2)


def test_unusual_but_valid_names_train():
    """The names check lets through only what TensorFlow accepts: these reach a compiled `fit` step."""
    import keras

    from mmkeras.models import build_fusion_classifier

    rng = np.random.default_rng(0)
    data = MultimodalData({"x-ray": rng.normal(size=(16, 4)), "0.cam": rng.normal(size=(16, 3))},
                          {"label.main": np.arange(16) % 2})
    model = build_fusion_classifier(data)
    model.compile()
    history = model.fit(data.inputs(), data.labels["label.main"], epochs=1, batch_size=8, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    keras.backend.clear_session()
