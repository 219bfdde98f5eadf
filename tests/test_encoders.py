"""Every encoder: shapes (eager, symbolic, batch of one), config and .keras round trip, gradients, bad args.

The numeric encoders (`preprocessed=True`: token ids, log-mel spectrograms) run on every backend; those that
read caption strings hold a TensorFlow tokenizer and are tested on TensorFlow only (`needs_tf_strings`).
"""

from __future__ import annotations

import keras
import keras_hub
import numpy as np
import pytest

from mmkeras import testing
from mmkeras.data import SCHEMA, VOCABULARY, ModalitySpec
from mmkeras.encoders import (
    BertTextEncoder,
    build_audio_encoder,
    build_bert_text_encoder,
    build_encoder,
    build_encoders,
    build_image_encoder,
    build_pretrained_image_encoder,
    build_text_encoder,
    build_vector_encoder,
    build_video_encoder,
    learn_vocabulary,
)

needs_tf_strings = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="reads caption strings: its tokenizer is a TensorFlow op (the preprocessed=True encoders run anywhere)")

PREPROCESSED = {  # numeric encoders fed by mmkeras.preprocessing: the inputs are the preprocessed batch
    "text_rnn_ids": (lambda: build_text_encoder("rnn", VOCABULARY, preprocessed=True), "text", (8, 64)),
    "text_transformer_ids": (lambda: build_text_encoder("transformer", VOCABULARY, preprocessed=True), "text",
                             (8, 32)),
    "text_transformer_sequence_ids": (lambda: build_text_encoder("transformer", VOCABULARY, sequence_output=True,
                                                                 preprocessed=True), "text", (8, 12, 32)),
    "text_bag_sequence_ids": (lambda: build_text_encoder("bag", VOCABULARY, sequence_output=True, preprocessed=True),
                              "text", (8, 12, 32)),
    "audio_rnn_log_mel": (lambda: build_audio_encoder("rnn", preprocessed=True), "audio", (8, 32)),
    "audio_cnn_log_mel": (lambda: build_audio_encoder("cnn", preprocessed=True), "audio", (8, 32)),
    "image_cnn_preprocessed": (lambda: build_image_encoder(preprocessed=True), "image", (8, 64)),
}

CASES = {
    "text_rnn": (lambda: build_text_encoder("rnn", VOCABULARY), "text", (8, 64)),
    "text_rnn_sequence": (lambda: build_text_encoder("rnn", VOCABULARY, sequence_output=True), "text", (8, 12, 64)),
    "text_transformer": (lambda: build_text_encoder("transformer", VOCABULARY), "text", (8, 32)),
    "text_transformer_sequence": (lambda: build_text_encoder("transformer", VOCABULARY, sequence_output=True), "text",
                                  (8, 12, 32)),
    "text_bag": (lambda: build_text_encoder("bag", VOCABULARY), "text", (8, 32)),
    "text_bert_tiny": (lambda: build_bert_text_encoder(vocabulary=VOCABULARY), "text", (8, 32)),
    "text_bert_tiny_sequence": (lambda: build_bert_text_encoder(vocabulary=VOCABULARY, sequence_output=True), "text",
                                (8, 16, 32)),
    "image_cnn": (lambda: build_image_encoder(), "image", (8, 64)),
    "audio_rnn": (lambda: build_audio_encoder("rnn"), "audio", (8, 32)),
    "audio_cnn": (lambda: build_audio_encoder("cnn"), "audio", (8, 32)),
    "audio_rnn_sequence": (lambda: build_audio_encoder("rnn", sequence_output=True), "audio", (8, 32, 32)),
    "video_cnn_lstm": (lambda: build_video_encoder(), "video", (8, 32)),
    "video_cnn_lstm_sequence": (lambda: build_video_encoder(sequence_output=True), "video", (8, 8, 32)),
}


def _case(name):
    return pytest.param(name, marks=needs_tf_strings) if name.startswith("text_") else name


@pytest.mark.parametrize("case", [_case(name) for name in sorted(CASES)] + sorted(PREPROCESSED))
def test_encoder_contract(case, batch, preprocessed_batch, tmp_path):
    build, modality, expected = CASES[case] if case in CASES else PREPROCESSED[case]
    encoder = build()
    inputs = batch[modality] if case in CASES else preprocessed_batch[modality]
    if not isinstance(encoder, BertTextEncoder):  # a subclassed model has no symbolic inputs of its own
        assert encoder.inputs[0].name == modality
    testing.check_shapes(encoder, inputs, expected)
    testing.check_config_round_trip(encoder)
    testing.check_save_load(encoder, inputs, tmp_path)
    # In sequence mode BERT's pooler (a Dense on [CLS]) is not used: no gradient reaches it, by design.
    testing.check_gradients(encoder, inputs, unused=("pooled_dense",) if case.endswith("bert_tiny_sequence") else ())


def test_sequence_outputs_carry_the_padding_mask(batch, preprocessed_batch, tiny_data):
    encoder = build_text_encoder("rnn", VOCABULARY, sequence_output=True, preprocessed=True)
    outputs = encoder(preprocessed_batch["text"])
    words = np.array([len(caption.split()) for caption in tiny_data.features["text"].astype(str)])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(outputs["padding_mask"]).sum(-1), words)
    frames = build_audio_encoder(sequence_output=True)(batch["audio"])
    assert keras.ops.convert_to_numpy(frames["padding_mask"]).all()


def test_bag_of_words_tokens_depend_on_their_own_word_only():
    encoder = build_text_encoder("bag", VOCABULARY, sequence_output=True, dropout=0.0)
    out = encoder(keras.ops.convert_to_tensor(["a red toy moves left", "the blue toy moves right"]))
    tokens = keras.ops.convert_to_numpy(out["sequence"])
    np.testing.assert_allclose(tokens[0, 2], tokens[1, 2])  # "toy" is "toy" wherever it stands and whatever follows
    np.testing.assert_allclose(tokens[0, 3], tokens[1, 3])  # "moves"
    assert not np.allclose(tokens[0, 1], tokens[1, 1])  # "red" is not "blue"
    rnn = build_text_encoder("rnn", VOCABULARY, sequence_output=True, dropout=0.0)
    states = keras.ops.convert_to_numpy(rnn(keras.ops.convert_to_tensor(["a red toy moves left",
                                                                           "the blue toy moves right"]))["sequence"])
    assert not np.allclose(states[0, 2], states[1, 2])  # a GRU state of "toy" carries the whole caption


@pytest.mark.parametrize("modality", ["text", "image", "audio", "video"])
def test_build_encoder_from_the_schema(modality):
    encoder = build_encoder(SCHEMA.modality(modality))
    assert encoder.name == f"{modality}_encoder" and encoder.inputs[0].name == modality


def test_encoders_for_any_modality_names():
    schema_data = {"left_cam": np.zeros((4, 28, 28), "float32"), "right_cam": np.zeros((4, 28, 28), "float32"),
                   "notes": np.array(["a cat sat", "the cat ran", "a dog", "dog ran far"]),
                   "mic": np.zeros((4, 2000), "float32"), "tab": np.zeros((4, 7), "float32")}
    from mmkeras.data import DataSchema, MultimodalData

    schema = DataSchema.infer(schema_data)
    schema = DataSchema(tuple(ModalitySpec("mic", (2000,), kind="audio", sample_rate=16000) if m.name == "mic" else m
                              for m in schema.modalities))
    data = MultimodalData(schema_data, None, schema=schema)
    from mmkeras.preprocessing import build_preprocessor

    encoders = build_encoders(data, preprocessed=True, mic={"kind": "cnn"})
    assert {k: e.name for k, e in encoders.items()} == {k: f"{k}_encoder" for k in schema_data}
    inputs = build_preprocessor(data, mic={"kind": "cnn"})(schema_data)
    for name, encoder in encoders.items():
        out = encoder(inputs[name], training=False)
        assert out.shape[0] == 4, name
    assert set(learn_vocabulary(schema_data["notes"])) == {"a", "cat", "sat", "the", "ran", "dog", "far"}
    assert build_vector_encoder((7,)).output_shape == (None, 32)


def test_audio_sample_rate_is_never_guessed():
    with pytest.raises(ValueError, match="together"):
        build_audio_encoder(num_samples=16000)
    encoder = build_audio_encoder(num_samples=np.int64(16000), sample_rate=16000)
    assert encoder.input_shape == (None, 16000)


def test_same_seed_same_features(batch):
    outputs = []
    for _ in range(2):
        keras.utils.set_random_seed(3)
        outputs.append(keras.ops.convert_to_numpy(build_audio_encoder()(batch["audio"])))
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_augmentation_only_in_training(batch):
    encoder = build_image_encoder(dropout=0.0)  # no dropout: any change in training comes from augmentation
    first = keras.ops.convert_to_numpy(encoder(batch["image"], training=False))
    second = keras.ops.convert_to_numpy(encoder(batch["image"], training=False))
    np.testing.assert_array_equal(first, second)
    augmented = keras.ops.convert_to_numpy(encoder(batch["image"], training=True))
    assert not np.allclose(augmented, first), "training=True must translate and zoom the images"
    plain = build_image_encoder(dropout=0.0, augment=False)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(plain(batch["image"], training=True)),
                                  keras.ops.convert_to_numpy(plain(batch["image"], training=False)))


@needs_tf_strings
def test_bert_loads_a_local_preset(batch, tmp_path):
    original = testing.save_tiny_preset("bert", tmp_path / "tiny_bert", vocabulary=VOCABULARY)
    encoder = build_bert_text_encoder(str(tmp_path / "tiny_bert"), sequence_length=16, trainable=False)
    loaded = next(layer for layer in encoder.layers if isinstance(layer, keras_hub.models.Backbone))
    for saved, restored in zip(original.weights, loaded.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(saved), keras.ops.convert_to_numpy(restored))
    assert not encoder.trainable_weights
    testing.check_shapes(encoder, batch["text"], (8, 32))
    testing.check_save_load(encoder, batch["text"], tmp_path)


@pytest.mark.parametrize("kind", ["resnet", "vit"])
def test_pretrained_image_encoder_from_local_preset(kind, batch, tmp_path):
    features = 16
    original = testing.save_tiny_preset(kind, tmp_path / "preset")
    encoder = build_pretrained_image_encoder(str(tmp_path / "preset"))
    loaded = encoder.get_layer("backbone").layer
    assert isinstance(loaded, keras_hub.models.Backbone)
    for saved, restored in zip(original.weights, loaded.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(saved), keras.ops.convert_to_numpy(restored))
    assert not encoder.trainable_weights, "the backbone is frozen by default"
    testing.check_shapes(encoder, batch["image"], (8, features))
    testing.check_save_load(encoder, batch["image"], tmp_path)
    testing.check_gradients(build_pretrained_image_encoder(str(tmp_path / "preset"), trainable=True), batch["image"])


def test_fine_tuned_backbone_keeps_its_batch_norm_statistics(batch, tmp_path):
    """trainable=True trains the weights, but BatchNormalization stays in inference mode (training=False)."""
    testing.save_tiny_preset("resnet", tmp_path / "preset")
    encoder = build_pretrained_image_encoder(str(tmp_path / "preset"), trainable=True)
    norms = [w for w in encoder.non_trainable_weights if "moving_mean" in w.path]
    assert norms, "the tiny ResNet has BatchNormalization layers"
    before = [keras.ops.convert_to_numpy(w).copy() for w in norms]
    encoder(batch["image"], training=True)
    for old, new in zip(before, norms):
        np.testing.assert_array_equal(old, keras.ops.convert_to_numpy(new))


def test_pretrained_encoder_takes_grayscale(tmp_path):
    testing.save_tiny_preset("resnet", tmp_path / "preset")
    encoder = build_pretrained_image_encoder(str(tmp_path / "preset"), input_shape=(28, 28))
    assert encoder(np.zeros((2, 28, 28), "float32")).shape == (2, 16)


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: build_text_encoder(kind="lstm", vocabulary=VOCABULARY), r"kind.*Received: kind='lstm'"),
        (lambda: build_text_encoder(vocabulary=VOCABULARY, embedding_dim=0), r"embedding_dim=0"),
        (lambda: build_text_encoder(vocabulary=VOCABULARY, dropout=1.5), r"dropout=1.5"),
        (lambda: build_text_encoder(vocabulary=[]), r"vocabulary=\[\]"),
        (lambda: build_text_encoder(), r"vocabulary=None"),
        (lambda: build_text_encoder(vocabulary=["a", "a"]), r"distinct"),
        (lambda: build_bert_text_encoder(preset=""), r"preset=''"),
        (lambda: build_bert_text_encoder(), r"vocabulary=None"),
        (lambda: build_bert_text_encoder(vocabulary=VOCABULARY, tiny_config={"depth": 2}), r"tiny_config"),
        (lambda: build_image_encoder(input_shape=(32,)), r"input_shape=\(32,\)"),
        (lambda: build_image_encoder(output_dim=-1), r"output_dim=-1"),
        (lambda: build_image_encoder(filters=()), r"filters=\(\)"),
        (lambda: build_pretrained_image_encoder(None), r"preset=None"),
        (lambda: build_audio_encoder(kind="transformer"), r"kind='transformer'"),
        (lambda: build_audio_encoder(fft_length=8000), r"fft_length=8000"),
        (lambda: build_audio_encoder(kind="cnn", sequence_output=True), r"kind='cnn'"),
        (lambda: build_video_encoder(input_shape=(32, 32, 1)), r"input_shape=\(32, 32, 1\)"),
        (lambda: build_video_encoder(hidden_dim=2.5), r"hidden_dim=2.5"),
        (lambda: build_encoder("smell"), r"ModalitySpec"),
        (lambda: build_encoders(SCHEMA, smell={}), r"smell"),
    ],
)
def test_bad_arguments_raise(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@needs_tf_strings
def test_bert_encoder_inside_a_fusion_classifier_round_trips(batch, tmp_path):
    from mmkeras.models import build_fusion_classifier

    model = build_fusion_classifier({"text": build_bert_text_encoder(vocabulary=VOCABULARY),
                                     "audio": build_audio_encoder()}, num_classes=8)
    inputs = {"text": batch["text"], "audio": batch["audio"]}
    testing.check_shapes(model, inputs, (8, 8))
    testing.check_save_load(model, inputs, tmp_path)
    testing.check_gradients(model, inputs)


@pytest.mark.parametrize("preprocessed", [False, True])
@pytest.mark.parametrize("modality", ["text", "image", "audio", "video"])
def test_a_sample_gets_the_same_features_alone_or_in_a_batch(modality, preprocessed, batch, preprocessed_batch):
    if modality == "text" and not preprocessed and keras.backend.backend() != "tensorflow":
        pytest.skip("reads caption strings: its tokenizer is a TensorFlow op")
    encoder = build_encoder(SCHEMA.modality(modality), preprocessed=preprocessed)
    x = preprocessed_batch[modality] if preprocessed else batch[modality]
    together = keras.ops.convert_to_numpy(encoder(x, training=False))
    for i in range(3):
        alone = keras.ops.convert_to_numpy(encoder(x[i : i + 1], training=False))
        np.testing.assert_allclose(alone[0], together[i], atol=1e-4)


def test_bert_encoder_refuses_a_backbone_without_pooled_output_at_once():
    """A preset whose backbone has no pooled [CLS] vector fails when the encoder is built, not when it is called."""
    inputs = keras.Input(shape=(4,))
    not_bert = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    preprocessor = build_bert_text_encoder(vocabulary=VOCABULARY).preprocessor
    with pytest.raises(ValueError, match=r"'pooled_output' and 'sequence_output'.*Received: Functional"):
        BertTextEncoder(not_bert, preprocessor)
