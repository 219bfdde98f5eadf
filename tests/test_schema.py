"""The schema: any modality names, shapes and labels, inferred or declared; bad data gets a clear error."""

from __future__ import annotations

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
