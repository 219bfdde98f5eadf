"""Preprocessing out of the model graph (keras-hub's split): `MultimodalPreprocessor` + numeric encoders.

These tests also run under JAX (`tests/test_backends.py`): the preprocessor runs in TensorFlow whatever the
backend, the model it feeds is numeric.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mmkeras.data import make_synthetic, to_dataset
from mmkeras.encoders import DecibelFloor, build_encoders, mel_spectrogram_layer
from mmkeras.models import FusionClassifier, build_fusion_classifier
from mmkeras.preprocessing import LogMelSpectrogram, MultimodalPreprocessor, PixelRescaling, build_preprocessor

MODALITIES = ["text", "image", "audio", "video"]


@pytest.fixture(scope="module")
def data():
    return make_synthetic(48, seed=5)


def _numpy(x):
    return keras.ops.convert_to_numpy(x)


def test_log_mel_is_the_in_graph_front_end_per_example():
    rng = np.random.default_rng(0)
    loudness = np.array([[1.0], [0.01], [0.3]], "float32")  # a quiet clip beside loud ones
    waves = (rng.normal(size=(3, 4000)) * loudness).astype("float32")
    ours = _numpy(LogMelSpectrogram(8000)(waves))  # (3, frames, mels)
    graph = _numpy(DecibelFloor()(mel_spectrogram_layer(8000)(keras.ops.convert_to_tensor(waves))))
    np.testing.assert_allclose(ours, graph.transpose(0, 2, 1), atol=1e-3)  # dB
    alone = np.concatenate([_numpy(LogMelSpectrogram(8000)(waves[i:i + 1])) for i in range(3)])
    np.testing.assert_allclose(alone, ours, atol=1e-4)  # a clip's features do not depend on its batch


def test_a_silent_clip_stays_zero_so_it_reads_as_missing():
    from mmkeras.fusion import ModalityPresence

    waves = np.zeros((2, 4000), "float32")
    waves[1, 100] = 0.5
    mel = _numpy(LogMelSpectrogram(8000)(waves))
    assert np.all(mel[0] == 0) and np.any(mel[1] != 0)
    assert _numpy(ModalityPresence()(mel)).tolist() == [0.0, 1.0]


def test_preprocessor_outputs_what_the_numeric_encoders_read(data):
    preprocessor = build_preprocessor(data)
    encoders = build_encoders(data, preprocessed=True)
    outputs = preprocessor(data.features)
    assert keras.backend.standardize_dtype(outputs["text"].dtype) == "int32"
    for name, encoder in encoders.items():
        assert tuple(outputs[name].shape[1:]) == tuple(encoder.input_shape[1:]), name
        assert tuple(encoder(outputs[name]).shape) == (48, encoder.output_shape[-1])
    assert isinstance(preprocessor.steps["audio"], LogMelSpectrogram) and preprocessor.steps["video"] is None
    for name in ("text", "audio", "video"):  # one modality alone gives what the whole dict gives
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(preprocessor.preprocess(name, data.features[name])),
                                      keras.ops.convert_to_numpy(outputs[name]))
    with pytest.raises(ValueError, match=r"prepares \[.*\]\. Received: modality='label'"):
        preprocessor.preprocess("label", data.features["text"])


def test_uint8_pixels_are_rescaled_by_the_preprocessor():
    from mmkeras.data import MultimodalData

    pixels = np.full((4, 16, 16, 3), 255, "uint8")
    data = MultimodalData({"cam": pixels}, {"label": np.arange(4) % 2})
    preprocessor = build_preprocessor(data)
    assert isinstance(preprocessor.steps["cam"], PixelRescaling)
    assert float(np.max(_numpy(preprocessor(data.features)["cam"]))) == 1.0
    assert "rescaling" not in [layer.name for layer in build_encoders(data, preprocessed=True)["cam"].layers]


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="the in-graph model reads caption strings")
def test_the_split_model_computes_what_the_in_graph_model_computes(data):
    """The same weights give the same logits whether the preprocessing runs in tf.data or inside the model."""
    keras.utils.set_random_seed(1)
    split = FusionClassifier.from_data(data, modalities=MODALITIES)
    whole = FusionClassifier.from_data(data, modalities=MODALITIES, preprocessor=None)
    whole.set_weights(split.get_weights())
    x = {m: data.features[m][:8] for m in MODALITIES}
    np.testing.assert_allclose(split.predict(x, verbose=0), _numpy(whole(x, training=False)), atol=1e-4)


def test_fit_on_arrays_shuffles_them_as_keras_does(data):
    """keras-hub batches arrays in order and ignores `shuffle`; a TaskModel shuffles them first, as Keras does."""
    import warnings

    modalities = ["text", "vector"] if "vector" in data.features else ["text"]
    x = {m: data.features[m][:8] for m in modalities}
    y = data.labels["label"][:8]

    def weights_after_one_epoch(shuffle):
        keras.utils.set_random_seed(0)
        model = build_fusion_classifier(data, modalities=modalities)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # no "shuffle=True ... will be ignored"
            model.fit(x, y, batch_size=2, epochs=1, shuffle=shuffle, verbose=0)
        return np.concatenate([np.ravel(w) for w in model.get_weights()])

    assert not np.allclose(weights_after_one_epoch(True), weights_after_one_epoch(False))  # the order mattered
    np.testing.assert_array_equal(weights_after_one_epoch(True), weights_after_one_epoch(True))  # seeded


def test_fit_evaluate_predict_take_raw_data_and_the_call_takes_numbers(data):
    keras.utils.set_random_seed(0)
    model = build_fusion_classifier(data, modalities=["text", "audio"])
    model.compile()
    history = model.fit(to_dataset(data, batch_size=16), epochs=3, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    raw = {m: data.features[m][:6] for m in ("text", "audio")}
    predicted = model.predict(raw, verbose=0)
    called = _numpy(model(model.preprocessor(raw), training=False))
    np.testing.assert_allclose(predicted, called, atol=1e-5)
    one_by_one = np.concatenate([model.predict({m: v[i:i + 1] for m, v in raw.items()}, verbose=0) for i in range(6)])
    np.testing.assert_allclose(one_by_one, predicted, atol=1e-5)
    with pytest.raises(ValueError, match="does not apply preprocessing"):
        model(raw)


def test_preprocessor_survives_saving(data, tmp_path):
    import mmkeras

    model = build_fusion_classifier(data, modalities=["text", "image"])
    path = tmp_path / "split.keras"
    model.save(path)
    loaded = mmkeras.load_model(path)
    assert isinstance(loaded.preprocessor, MultimodalPreprocessor)
    raw = {m: data.features[m][:4] for m in ("text", "image")}
    np.testing.assert_allclose(loaded.predict(raw, verbose=0), model.predict(raw, verbose=0), atol=1e-6)
    clone = MultimodalPreprocessor.from_config(model.preprocessor.get_config())
    np.testing.assert_array_equal(_numpy(clone(raw)["text"]), _numpy(model.preprocessor(raw)["text"]))


def test_bad_inputs_and_arguments_are_named(data):
    preprocessor = build_preprocessor(data, modalities=["text", "audio"])
    with pytest.raises(ValueError, match=r"Missing modalities \['audio'\]"):
        preprocessor({"text": ["a red toy"]})
    with pytest.raises(ValueError, match=r"must be a batch of shape \(batch, 4000\).*Received shape: \(4000,\)"):
        preprocessor({"text": ["a"], "audio": np.zeros(4000, "float32")})
    with pytest.raises(ValueError, match="takes a dict"):
        preprocessor(np.zeros((1, 4000)))
    with pytest.raises(ValueError, match="must name the same modalities"):
        MultimodalPreprocessor({"a": None}, {"b": {"shape": [3], "dtype": "float32"}})
    with pytest.raises(ValueError, match=r"input_specs\['a'\] must be"):
        MultimodalPreprocessor({"a": None}, {"a": {"shape": [3], "dtype": "float64"}})
    with pytest.raises(ValueError, match="must be a keras Layer or None"):
        MultimodalPreprocessor({"a": "tokenize"}, {"a": {"shape": [], "dtype": "string"}})
    with pytest.raises(ValueError, match="exactly the model's modalities"):
        FusionClassifier(build_encoders(data, ["audio"], preprocessed=True), heads={"label": 8},
                         preprocessor=preprocessor)
    with pytest.raises(ValueError, match="rescaled in the preprocessor"):
        from mmkeras.encoders import build_image_encoder

        build_image_encoder(preprocessed=True, rescale=1 / 255)
    with pytest.raises(ValueError, match="preprocessor"):
        build_fusion_classifier(data, preprocessor="yes")
