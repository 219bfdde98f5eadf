"""ConcatenationFusion and FusionClassifier: layer contract, sequences with masks, mixed precision, the task
model's compile defaults and heads, any modality names, and bad arguments."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mmkeras import testing
from mmkeras.data import MODALITIES, VOCABULARY, MultimodalData
from mmkeras.encoders import build_audio_encoder, build_image_encoder, build_text_encoder
from mmkeras.fusion import FUSIONS, ConcatenationFusion, get_fusion, masked_mean
from mmkeras.models import FusionClassifier, build_fusion_classifier
from mmkeras.training import evaluate_classifier, fit_classifier


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


def test_dropout_acts_without_a_projection_too():
    z = [np.ones((64, 32), "float32")]
    dropped = keras.ops.convert_to_numpy(ConcatenationFusion(dropout=0.5)(z, training=True))
    assert 0.3 < (dropped == 0).mean() < 0.7
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(ConcatenationFusion(dropout=0.5)(z)), z[0])


def test_projection_computes_relu_of_affine_map():
    layer = ConcatenationFusion(output_dim=2)
    a, b = np.array([[1.0, -2.0]], "float32"), np.array([[0.5]], "float32")
    out = keras.ops.convert_to_numpy(layer([a, b]))
    kernel, bias = (keras.ops.convert_to_numpy(w) for w in layer.projection.weights)
    np.testing.assert_allclose(out, np.maximum(np.concatenate([a, b], -1) @ kernel + bias, 0), rtol=1e-6)


def test_activation_is_serialized():
    config = ConcatenationFusion(4, activation="tanh").get_config()
    assert config["activation"] == "tanh"
    assert ConcatenationFusion.from_config(config).activation is keras.activations.tanh


def test_sequences_are_pooled_over_their_valid_steps():
    sequence = np.array([[[1.0], [3.0], [100.0]]], "float32")  # (1, 3, 1); the last step is padding
    mask = np.array([[True, True, False]])
    vector = np.array([[7.0]], "float32")
    out = keras.ops.convert_to_numpy(ConcatenationFusion()([sequence, vector], padding_masks=[mask, None]))
    np.testing.assert_allclose(out, [[2.0, 7.0]])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(masked_mean(sequence)), [[104.0 / 3]], rtol=1e-6)


def test_mixed_precision():
    inputs = [np.ones((2, 3), "float32"), np.ones((2, 5), "float32")]
    testing.check_mixed_precision(lambda dtype: ConcatenationFusion(4, dropout=0.1, dtype=dtype), inputs)
    testing.check_mixed_precision(lambda dtype: ConcatenationFusion(dtype=dtype), inputs)


@pytest.mark.parametrize(
    "kwargs,call,match",
    [
        ({"output_dim": 0}, None, r"output_dim=0"),
        ({"dropout": -0.1}, None, r"dropout=-0.1"),
        ({}, lambda layer: layer([np.ones((2, 3, 4, 5), "float32")]), r"\(batch, steps, features\)"),
        ({}, lambda layer: layer(np.ones((2, 3), "float32")), r"non-empty list"),
        ({}, lambda layer: layer([np.ones((2, 3), "float32")], padding_masks=[None, None]), r"one entry per"),
    ],
)
def test_fusion_bad_arguments(kwargs, call, match):
    with pytest.raises(ValueError, match=match):
        layer = ConcatenationFusion(**kwargs)
        call(layer)


def test_fusion_registry():
    assert isinstance(get_fusion("concat", output_dim=3), ConcatenationFusion) and "concat" in FUSIONS
    with pytest.raises(ValueError, match="fusion='magic'"):
        get_fusion("magic")


@pytest.mark.parametrize("modalities", [["text"], ["image"], ["audio"], ["video"], list(MODALITIES)])
def test_fusion_classifier_contract(modalities, batch, tiny_data, tmp_path):
    model = build_fusion_classifier(modalities)
    raw = {m: batch[m] for m in modalities}
    inputs = testing.model_inputs(model, raw)  # what the call reads: token ids, log-mel spectrograms, pixels
    assert isinstance(model, FusionClassifier) and sorted(model.input) == sorted(modalities)
    testing.check_shapes(model, inputs, (8, 8))
    testing.check_config_round_trip(model)
    testing.check_save_load(model, raw, tmp_path)  # like predict: raw data, through the saved preprocessor
    testing.check_gradients(model, inputs)
    testing.check_loss_decreases(model, raw, tiny_data.labels["label"])  # fit and evaluate preprocess


def test_heads_return_logits_in_float32_under_mixed_precision(batch):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = build_fusion_classifier(["image", "audio"], aux_heads={"shape": 2})
        outputs = model(testing.model_inputs(model, {m: batch[m] for m in ("image", "audio")}), training=False)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert {k: keras.backend.standardize_dtype(v.dtype) for k, v in outputs.items()} == {"label": "float32",
                                                                                          "shape": "float32"}
    assert model.get_layer("fusion").compute_dtype == "float16"


def test_outputs_are_logits(batch):
    model = build_fusion_classifier(["image", "audio"])
    logits = keras.ops.convert_to_numpy(model.predict({m: batch[m] for m in ("image", "audio")}, verbose=0))
    assert not np.allclose(logits.sum(-1), 1.0), "the head returns logits, not probabilities"
    assert model.get_layer("label").activation is keras.activations.linear


def test_compile_defaults_and_loss_weights(tiny_data):
    model = build_fusion_classifier(["text", "image"], aux_heads={"shape": 2, "color": 2})
    model.compile(loss_weights={"shape": 0.5})
    assert model.compiled and model.loss["label"].get_config()["from_logits"]
    assert model._compile_config.config["loss_weights"] == {"label": 1.0, "shape": 0.5, "color": 1.0}
    with pytest.raises(ValueError, match="loss_weights"):
        model.compile(loss_weights={"size": 2.0})


def test_sequence_encoders_feed_the_fusion_with_their_masks(batch, tmp_path):
    from mmkeras.data.synthetic import SCHEMA
    from mmkeras.preprocessing import build_preprocessor

    encoders = {"text": build_text_encoder("transformer", VOCABULARY, sequence_output=True, preprocessed=True),
                "audio": build_audio_encoder(sequence_output=True, preprocessed=True)}
    model = FusionClassifier(encoders, heads={"label": 8}, preprocessor=build_preprocessor(SCHEMA, list(encoders)))
    raw = {m: batch[m] for m in encoders}
    inputs = testing.model_inputs(model, raw)
    testing.check_shapes(model, inputs, (8, 8))
    testing.check_save_load(model, raw, tmp_path)
    testing.check_gradients(model, inputs)


def test_any_modality_names_and_classes_build_train_and_evaluate(tmp_path):
    """The issue's test: {"left": ..., "right": ...} with 3 classes, through the package's builder and helper."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 240)
    left = rng.normal(size=(240, 16, 16)).astype("float32") * 0.3 + y[:, None, None] * 0.5  # grayscale "images"
    right = rng.normal(size=(240, 6)).astype("float32") - y[:, None]  # a feature vector
    data = MultimodalData({"left": left, "right": right}, {"label": y})
    train, test = data.select(slice(0, 180)), data.select(slice(180, None))
    keras.utils.set_random_seed(0)
    model = build_fusion_classifier(train, name="stereo")
    assert sorted(model.input) == ["left", "right"] and model.output.shape == (None, 3)
    assert model.get_layer("left_encoder") is not model.get_layer("right_encoder")  # one encoder per modality
    result = fit_classifier(model, train, test, epochs=6, batch_size=32)
    assert result.history["loss"][-1] < result.history["loss"][0]
    report = evaluate_classifier(model, test)
    assert report["confusion_matrix"].shape == (3, 3) and report["accuracy"] > 0.6, report["accuracy"]
    testing.check_save_load(model, test.inputs(), tmp_path)


def test_custom_encoders_are_used(batch):
    image_encoder = build_image_encoder(output_dim=16, name="my_image_encoder")
    model = build_fusion_classifier({"image": image_encoder, "audio": build_audio_encoder()}, num_classes=8)
    assert model.get_layer("my_image_encoder") is image_encoder


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"encoders": {}, "num_classes": 8}, r"non-empty dict"),
        ({"encoders": ["smell"]}, r"modalities=\('smell',\)"),
        ({"encoders": ["text", "text"]}, r"distinct"),
        ({"encoders": {"image": "not a model"}, "num_classes": 8}, r"encoders\['image'\]"),
        ({"encoders": ["image"], "num_classes": 1}, r"heads\['label'\]=1"),
        ({"encoders": ["image"], "aux_heads": {"shape": 0}}, r"heads\['shape'\]=0"),
        ({"encoders": ["image"], "dropout": 1.0}, r"dropout=1.0"),
        ({"encoders": ["image"], "fusion": "magic"}, r"fusion='magic'"),
        ({"encoders": {"image": build_image_encoder()}, "image": {"output_dim": 3}}, r"default encoders only"),
    ],
)
def test_classifier_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_fusion_classifier(**kwargs)
