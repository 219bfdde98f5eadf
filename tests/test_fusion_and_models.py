"""ConcatenationFusion and the fusion classifier: layer contract, model contract, training, bad arguments."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mmkeras import testing
from mmkeras.data import MODALITIES
from mmkeras.encoders import build_audio_encoder, build_image_encoder
from mmkeras.fusion import ConcatenationFusion
from mmkeras.models import build_fusion_classifier


def _fusion_model(layer, dims=(3, 5)):
    inputs = [keras.Input(shape=(d,), name=f"z{i}") for i, d in enumerate(dims)]
    return keras.Model(inputs, layer(inputs))


@pytest.mark.parametrize("output_dim,expected", [(None, 8), (6, 6)])
def test_concatenation_fusion_layer(output_dim, expected, tmp_path):
    layer = ConcatenationFusion(output_dim=output_dim, dropout=0.1)
    testing.check_config_round_trip(layer)
    model = _fusion_model(layer)
    inputs = [np.random.default_rng(0).normal(size=(4, d)).astype("float32") for d in (3, 5)]
    testing.check_shapes(model, inputs, (4, expected))
    testing.check_save_load(model, inputs, tmp_path)
    if output_dim is not None:
        testing.check_gradients(model, inputs)


def test_concatenation_without_projection_is_concatenation():
    a, b = np.ones((2, 3), "float32"), np.full((2, 2), 2.0, "float32")
    out = keras.ops.convert_to_numpy(ConcatenationFusion()([a, b]))
    np.testing.assert_array_equal(out, np.concatenate([a, b], axis=-1))


def test_projection_computes_relu_of_affine_map():
    layer = ConcatenationFusion(output_dim=2)
    a, b = np.array([[1.0, -2.0]], "float32"), np.array([[0.5]], "float32")
    out = keras.ops.convert_to_numpy(layer([a, b]))
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in layer.projection.weights)
    np.testing.assert_allclose(out, np.maximum(np.concatenate([a, b], -1) @ kernel + bias, 0), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs,call,match",
    [
        ({"output_dim": 0}, None, r"output_dim=0"),
        ({"dropout": -0.1}, None, r"dropout=-0.1"),
        ({}, lambda layer: layer([np.ones((2, 3, 4), "float32")]), r"pool sequences first"),
        ({}, lambda layer: layer(np.ones((2, 3), "float32")), r"non-empty list"),
    ],
)
def test_fusion_bad_arguments(kwargs, call, match):
    with pytest.raises(ValueError, match=match):
        layer = ConcatenationFusion(**kwargs)
        call(layer)


@pytest.mark.parametrize("modalities", [["text"], ["image"], ["audio"], ["video"], list(MODALITIES)])
def test_fusion_classifier_contract(modalities, batch, tiny_data, tmp_path):
    model = build_fusion_classifier(modalities)
    inputs = {m: batch[m] for m in modalities}
    assert sorted(model.input) == sorted(modalities)
    testing.check_shapes(model, inputs, (8, 8))
    testing.check_save_load(model, inputs, tmp_path)
    testing.check_gradients(model, inputs)
    testing.check_loss_decreases(model, inputs, tiny_data.labels["label"])


def test_probabilities_sum_to_one(batch):
    model = build_fusion_classifier(["image", "audio"])
    out = keras.ops.convert_to_numpy(model({m: batch[m] for m in ("image", "audio")}))
    np.testing.assert_allclose(out.sum(-1), 1.0, rtol=1e-5)


def test_aux_heads(batch, tiny_data, tmp_path):
    model = build_fusion_classifier(["image", "video"], aux_heads={"shape": 2, "color": 2})
    inputs = {m: batch[m] for m in ("image", "video")}
    outputs = model(inputs)
    assert {k: tuple(v.shape) for k, v in outputs.items()} == {"label": (8, 8), "shape": (8, 2), "color": (8, 2)}
    testing.check_save_load(model, inputs, tmp_path)
    testing.check_gradients(model, inputs)


def test_custom_encoders_are_used(batch):
    image_encoder = build_image_encoder(output_dim=16, name="my_image_encoder")
    model = build_fusion_classifier({"image": image_encoder, "audio": build_audio_encoder()})
    assert model.get_layer("my_image_encoder") is image_encoder


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"encoders": {}}, r"non-empty dict"),
        ({"encoders": ["smell"]}, r"modalities=\('smell',\)"),
        ({"encoders": ["text", "text"]}, r"distinct"),
        ({"encoders": {"image": "not a model"}}, r"encoders\['image'\]"),
        ({"encoders": ["image"], "num_classes": 1}, r"num_classes=1"),
        ({"encoders": ["image"], "aux_heads": {"shape": 0}}, r"aux_heads"),
    ],
)
def test_classifier_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_fusion_classifier(**kwargs)
