"""Every encoder: shapes (eager, symbolic, batch of one), config and .keras round trip, gradients, bad args."""

from __future__ import annotations

import keras
import keras_hub
import numpy as np
import pytest

from mmkeras import testing
from mmkeras.encoders import (
    BertTextEncoder,
    build_audio_encoder,
    build_bert_text_encoder,
    build_encoder,
    build_image_encoder,
    build_pretrained_image_encoder,
    build_text_encoder,
    build_video_encoder,
)

CASES = {
    "text_rnn": (lambda: build_text_encoder("rnn"), "text", (8, 64)),
    "text_rnn_sequence": (lambda: build_text_encoder("rnn", sequence_output=True), "text", (8, 12, 64)),
    "text_transformer": (lambda: build_text_encoder("transformer"), "text", (8, 32)),
    "text_bert_tiny": (lambda: build_bert_text_encoder(), "text", (8, 32)),
    "image_cnn": (lambda: build_image_encoder(), "image", (8, 64)),
    "audio_rnn": (lambda: build_audio_encoder("rnn"), "audio", (8, 32)),
    "audio_cnn": (lambda: build_audio_encoder("cnn"), "audio", (8, 32)),
    "audio_rnn_sequence": (lambda: build_audio_encoder("rnn", sequence_output=True), "audio", (8, 32, 32)),
    "video_cnn_lstm": (lambda: build_video_encoder(), "video", (8, 32)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_encoder_contract(case, batch, tmp_path):
    build, modality, expected = CASES[case]
    encoder = build()
    inputs = batch[modality]
    if not isinstance(encoder, BertTextEncoder):  # a subclassed model has no symbolic inputs of its own
        assert encoder.inputs[0].name == modality
    testing.check_shapes(encoder, inputs, expected)
    testing.check_config_round_trip(encoder)
    testing.check_save_load(encoder, inputs, tmp_path)
    testing.check_gradients(encoder, inputs)


@pytest.mark.parametrize("modality", ["text", "image", "audio", "video"])
def test_build_encoder_dispatches(modality):
    assert build_encoder(modality).inputs[0].name == modality


def test_same_seed_same_features(batch):
    outputs = []
    for _ in range(2):
        keras.utils.set_random_seed(3)
        outputs.append(keras.ops.convert_to_numpy(build_audio_encoder()(batch["audio"])))
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_augmentation_only_in_training(batch):
    encoder = build_image_encoder()
    first = keras.ops.convert_to_numpy(encoder(batch["image"], training=False))
    second = keras.ops.convert_to_numpy(encoder(batch["image"], training=False))
    np.testing.assert_array_equal(first, second)


def _tiny_bert_preset(folder):
    """A tiny random BERT saved as a keras-hub preset folder, exactly as `save_to_preset` writes one."""
    encoder = build_bert_text_encoder(sequence_length=16)
    backbone = next(layer for layer in encoder.layers if isinstance(layer, keras_hub.models.Backbone))
    preprocessor = next(layer for layer in encoder.layers if isinstance(layer, keras_hub.models.Preprocessor))
    backbone.save_to_preset(str(folder))
    preprocessor.save_to_preset(str(folder))
    return backbone


def test_bert_loads_a_local_preset(batch, tmp_path):
    original = _tiny_bert_preset(tmp_path / "tiny_bert")
    encoder = build_bert_text_encoder(str(tmp_path / "tiny_bert"), sequence_length=16, trainable=False)
    loaded = next(layer for layer in encoder.layers if isinstance(layer, keras_hub.models.Backbone))
    for saved, restored in zip(original.weights, loaded.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(saved), keras.ops.convert_to_numpy(restored))
    assert not encoder.trainable_weights
    testing.check_shapes(encoder, batch["text"], (8, 32))
    testing.check_save_load(encoder, batch["text"], tmp_path)


def _tiny_resnet_preset(folder):
    backbone = keras_hub.models.ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 16],
        stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], block_type="basic_block",
        use_pre_activation=False, image_shape=(None, None, 3),
    )
    backbone.save_to_preset(str(folder))
    keras_hub.layers.ResNetImageConverter(image_size=(32, 32), scale=1 / 255.0).save_to_preset(str(folder))
    return backbone


def _tiny_vit_preset(folder):
    backbone = keras_hub.models.ViTBackbone(
        image_shape=(32, 32, 3), patch_size=8, num_layers=1, num_heads=2, hidden_dim=16, mlp_dim=32
    )
    backbone.save_to_preset(str(folder))
    keras_hub.layers.ViTImageConverter(image_size=(32, 32), scale=1 / 255.0).save_to_preset(str(folder))
    return backbone


@pytest.mark.parametrize("make_preset,features", [(_tiny_resnet_preset, 16), (_tiny_vit_preset, 16)])
def test_pretrained_image_encoder_from_local_preset(make_preset, features, batch, tmp_path):
    original = make_preset(tmp_path / "preset")
    encoder = build_pretrained_image_encoder(str(tmp_path / "preset"))
    loaded = next(layer for layer in encoder.layers if isinstance(layer, keras_hub.models.Backbone))
    for saved, restored in zip(original.weights, loaded.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(saved), keras.ops.convert_to_numpy(restored))
    assert not encoder.trainable_weights, "the backbone is frozen by default"
    testing.check_shapes(encoder, batch["image"], (8, features))
    testing.check_save_load(encoder, batch["image"], tmp_path)
    testing.check_gradients(build_pretrained_image_encoder(str(tmp_path / "preset"), trainable=True), batch["image"])


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: build_text_encoder(kind="lstm"), r"kind.*Received: kind='lstm'"),
        (lambda: build_text_encoder(embedding_dim=0), r"embedding_dim=0"),
        (lambda: build_text_encoder(dropout=1.5), r"dropout=1.5"),
        (lambda: build_text_encoder(vocabulary=[]), r"vocabulary=\[\]"),
        (lambda: build_bert_text_encoder(preset=""), r"preset=''"),
        (lambda: build_bert_text_encoder(tiny_config={"depth": 2}), r"tiny_config"),
        (lambda: build_image_encoder(input_shape=(32, 32)), r"input_shape=\(32, 32\)"),
        (lambda: build_image_encoder(output_dim=-1), r"output_dim=-1"),
        (lambda: build_image_encoder(filters=()), r"filters=\(\)"),
        (lambda: build_pretrained_image_encoder(None), r"preset=None"),
        (lambda: build_audio_encoder(kind="transformer"), r"kind='transformer'"),
        (lambda: build_audio_encoder(fft_length=8000), r"fft_length=8000"),
        (lambda: build_audio_encoder(kind="cnn", sequence_output=True), r"kind='cnn'"),
        (lambda: build_video_encoder(input_shape=(32, 32, 1)), r"input_shape=\(32, 32, 1\)"),
        (lambda: build_video_encoder(hidden_dim=2.5), r"hidden_dim=2.5"),
        (lambda: build_encoder("smell"), r"modality='smell'"),
    ],
)
def test_bad_arguments_raise(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_bert_encoder_inside_a_fusion_classifier_round_trips(batch, tmp_path):
    from mmkeras.models import build_fusion_classifier

    model = build_fusion_classifier({"text": build_bert_text_encoder(), "audio": build_audio_encoder()})
    inputs = {"text": batch["text"], "audio": batch["audio"]}
    testing.check_shapes(model, inputs, (8, 8))
    testing.check_save_load(model, inputs, tmp_path)
    testing.check_gradients(model, inputs)


@pytest.mark.parametrize("modality", ["text", "image", "audio", "video"])
def test_a_sample_gets_the_same_features_alone_or_in_a_batch(modality, batch):
    encoder = build_encoder(modality)
    together = keras.ops.convert_to_numpy(encoder(batch[modality], training=False))
    for i in range(3):
        alone = keras.ops.convert_to_numpy(encoder(batch[modality][i : i + 1], training=False))
        np.testing.assert_allclose(alone[0], together[i], atol=1e-4)
