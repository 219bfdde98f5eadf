"""The time-series kind: its encoder (contract, per-example normalisation, short series, bad arguments), the
uint8 image rescaling, and a user's own EEG + notes trained end to end without hand-written encoders."""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

from mmkeras import testing
from mmkeras.data import DataSchema, ModalitySpec, MultimodalData
from mmkeras.encoders import (
    ChannelStandardization,
    build_encoder,
    build_encoders,
    build_image_encoder,
    build_timeseries_encoder,
)
from mmkeras.models import FusionClassifier, build_fusion_classifier
from mmkeras.training import evaluate_classifier, fit_classifier


def _series(n=8, steps=128, channels=4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, steps, channels)) * 3 + rng.normal(size=(n, 1, channels)) * 5).astype("float32")


CASES = {  # (builder, input shape of one sample, expected output shape for a batch of 8)
    "cnn": (lambda: build_timeseries_encoder((128, 4)), (128, 4), (8, 32)),
    "rnn": (lambda: build_timeseries_encoder((32, 4), kind="rnn", hidden_dim=16), (32, 4), (8, 16)),
    "cnn_sequence": (lambda: build_timeseries_encoder((128, 4), sequence_output=True), (128, 4), (8, 16, 32)),
    "rnn_sequence": (lambda: build_timeseries_encoder((16, 3), "rnn", sequence_output=True), (16, 3), (8, 16, 32)),
    "one_channel": (lambda: build_timeseries_encoder((64,), keep_statistics=False), (64,), (8, 32)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_encoder_contract(case, tmp_path):
    build, shape, expected = CASES[case]
    encoder = build()
    inputs = _series(8, shape[0], shape[1] if len(shape) == 2 else 1).reshape((8, *shape))
    assert encoder.inputs[0].name == "timeseries"
    testing.check_shapes(encoder, inputs, expected)
    testing.check_config_round_trip(encoder)
    testing.check_save_load(encoder, inputs, tmp_path)
    testing.check_gradients(encoder, inputs)
    if case.endswith("sequence"):
        assert keras.ops.convert_to_numpy(encoder(inputs)["padding_mask"]).all()


@pytest.mark.parametrize("kind", ["cnn", "rnn"])
def test_a_sample_gets_the_same_features_alone_or_in_a_batch(kind):
    encoder = build_timeseries_encoder((48, 4), kind=kind)
    series = _series(steps=48)
    together = keras.ops.convert_to_numpy(encoder(series, training=False))
    for i in range(3):
        alone = keras.ops.convert_to_numpy(encoder(series[i : i + 1], training=False))
        np.testing.assert_allclose(alone[0], together[i], atol=1e-5)


def test_channel_standardization_is_per_example_and_per_channel():
    layer = ChannelStandardization()
    testing.check_config_round_trip(layer)
    series = _series(4, 50, 3)
    out = keras.ops.convert_to_numpy(layer(series))  # (4, 50, 9)
    assert out.shape == (4, 50, 9)
    mean, std = series.mean(axis=1, keepdims=True), series.std(axis=1, keepdims=True)
    np.testing.assert_allclose(out[..., :3], (series - mean) / std, atol=1e-4)
    np.testing.assert_allclose(out[:, 0, 3:6], np.sign(mean[:, 0]) * np.log1p(np.abs(mean[:, 0])), atol=1e-5)
    np.testing.assert_allclose(out[:, 0, 6:], np.log(std[:, 0]), atol=1e-5)
    np.testing.assert_array_equal(out[:, :1, 3:] * np.ones((1, 50, 1)), out[..., 3:])  # constant over the steps
    # signals in volts (EEG, ~1e-5) keep their shape: epsilon does not swamp them
    small = keras.ops.convert_to_numpy(layer(series * 1e-5))
    np.testing.assert_allclose(small[..., :3], out[..., :3], atol=1e-2)  # 0.1 % off for sigma = 3e-5
    # a constant channel (a missing sensor sends zeros) stays finite, in float16 too
    series[:, :, 1] = 0.0
    testing.check_mixed_precision(lambda dtype: ChannelStandardization(dtype=dtype), series)
    for dtype in ("float32", "mixed_float16"):
        out = keras.ops.convert_to_numpy(ChannelStandardization(dtype=dtype)(series))
        assert np.isfinite(out).all() and not out[..., 1].any(), dtype


def test_statistics_keep_what_the_standardization_removes():
    """Two recordings that differ only in the level of one channel (lying vs standing): the standardised signal
    is the same, so only the kept statistics can tell them apart."""
    base = _series(1, 64, 3)
    shifted = base.copy()
    shifted[..., 0] += 9.81
    pair = np.concatenate([base, shifted])
    blind = keras.ops.convert_to_numpy(build_timeseries_encoder((64, 3), keep_statistics=False)(pair))
    np.testing.assert_allclose(blind[0], blind[1], atol=1e-5)
    seeing = keras.ops.convert_to_numpy(build_timeseries_encoder((64, 3))(pair))
    assert np.abs(seeing[0] - seeing[1]).max() > 1e-3


def test_short_series_never_pool_below_one_step():
    for steps, pooled in [(1, 1), (2, 1), (3, 1), (7, 1), (9, 1), (17, 2)]:
        outputs = build_timeseries_encoder((steps, 2), sequence_output=True)(_series(2, steps, 2))
        assert outputs["sequence"].shape == (2, pooled, 32), steps
        assert build_timeseries_encoder((steps, 2))(_series(2, steps, 2)).shape == (2, 32), steps


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda: build_timeseries_encoder((128, 4, 1)), r"\(steps, channels\).*input_shape=\(128, 4, 1\)"),
        (lambda: build_timeseries_encoder((None, 4)), r"known sizes.*input_shape=\(None, 4\)"),
        (lambda: build_timeseries_encoder((0, 4)), r"input_shape=\(0, 4\)"),
        (lambda: build_timeseries_encoder((128, 4), kind="lstm"), r"kind='lstm'"),
        (lambda: build_timeseries_encoder((128, 4), hidden_dim=0), r"hidden_dim=0"),
        (lambda: build_timeseries_encoder((128, 4), kernel_size=2.5), r"kernel_size=2.5"),
        (lambda: build_timeseries_encoder((128, 4), dropout=1.0), r"dropout=1.0"),
        (lambda: build_timeseries_encoder((128, 4), sequence_output="yes"), r"sequence_output='yes'"),
        (lambda: ChannelStandardization(epsilon=0), r"epsilon=0"),
        (lambda: ChannelStandardization(keep_statistics=1), r"keep_statistics=1"),
        (lambda: build_image_encoder(rescale=-1), r"rescale=-1"),
        (lambda: ModalitySpec("eeg", (4, 8, 8), kind="timeseries"), r"\(steps, channels\).*'eeg'"),
    ],
)
def test_bad_arguments_raise(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_build_encoders_gives_a_time_series_its_encoder():
    data = MultimodalData({"eeg": _series(6, 128, 4), "notes": np.array(["calm today", "tense"] * 3)})
    encoders = build_encoders(data, eeg={"kind": "rnn", "hidden_dim": 8})
    assert encoders["eeg"].name == "eeg_encoder" and encoders["eeg"].input_shape == (None, 128, 4)
    assert encoders["eeg"].get_layer("gru").units == 8
    declared = MultimodalData({"eeg": _series(6, 100, 30)}, kinds={"eeg": "timeseries"})  # ambiguous: declared
    assert build_encoders(declared)["eeg"].get_layer("channel_standardization").output.shape == (None, 100, 90)


# === uint8 images ===


def test_uint8_images_are_rescaled_like_floats_in_0_1():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(4, 16, 16, 3)).astype("uint8")
    spec = DataSchema.infer({"cam": pixels}).modality("cam")
    assert (spec.dtype, spec.kind) == ("uint8", "image")
    encoder = build_encoder(spec)
    assert encoder.get_layer("rescaling").scale == pytest.approx(1 / 255)
    plain = build_image_encoder((16, 16, 3))  # the same layers without the rescaling, which has no weights
    plain.set_weights(encoder.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(encoder(pixels, training=False)),
                               keras.ops.convert_to_numpy(plain(pixels.astype("float32") / 255, training=False)),
                               atol=1e-5)
    assert "rescaling" not in [layer.name for layer in build_encoder(spec, rescale=None).layers]  # yours wins


def test_a_fusion_classifier_takes_uint8_pixels_as_they_come():
    rng = np.random.default_rng(0)
    data = MultimodalData({"cam": rng.integers(0, 256, size=(8, 16, 16)).astype("uint8"),
                           "tab": rng.normal(size=(8, 5)).astype("float32")}, {"label": np.arange(8) % 2})
    model = build_fusion_classifier(data)
    logits = keras.ops.convert_to_numpy(model(data.inputs(), training=False))
    as_floats = {"cam": data.features["cam"].astype("float32"), "tab": data.features["tab"]}
    np.testing.assert_allclose(logits, keras.ops.convert_to_numpy(model(as_floats, training=False)), atol=1e-5)


def test_integer_images_of_unknown_range_warn_unless_told():
    spec = ModalitySpec("cam", (16, 16), dtype="int32")
    with pytest.warns(UserWarning, match=r"'cam'.*unknown range.*cam=\{'rescale': 1 / 255\}"):
        build_encoder(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert build_encoder(spec, rescale=1 / 255).get_layer("rescaling") is not None
        build_encoder(spec, rescale=None)
    with pytest.warns(UserWarning, match=r"Video modality 'clip' holds integers \(uint8\)"):
        build_encoder(ModalitySpec("clip", (4, 16, 16, 1), dtype="uint8"))


# === the "Done when": anyone's data ===


def make_eeg_and_notes(n=600, seed=0) -> MultimodalData:
    """A user's own data, as in the newcomer review: `eeg` (128 steps x 4 channels) and free-text `notes`.

    A brain state `e` in 0..4 sets channel 0's level and channel 1's rhythm (2 + 2e cycles per recording); the
    notes say whether the person was calm or agitated (`mood`). The label is `(e + mood) % 5`: the EEG alone
    can reach 0.5 at best (it cannot tell `e` from `e + 1`), the notes alone 0.2 (chance).
    """
    rng = np.random.default_rng(seed)
    e, mood = rng.integers(0, 5, n), rng.integers(0, 2, n)
    t = np.arange(128) / 128
    eeg = rng.normal(scale=0.5, size=(n, 128, 4)).astype("float32")  # (n, steps, channels)
    eeg[:, :, 0] += 0.5 * e[:, None]
    eeg[:, :, 1] += np.sin(2 * np.pi * (2 + 2 * e[:, None]) * t + rng.uniform(0, 2 * np.pi, (n, 1)))
    openers = ["today", "patient seems", "after lunch", "in the morning", "note:"]
    words = [["calm", "relaxed", "quiet", "rested"], ["agitated", "restless", "tense", "anxious"]]
    notes = np.array([f"{rng.choice(openers)} {rng.choice(words[m])}" for m in mood])
    return MultimodalData({"eeg": eeg, "notes": notes}, {"label": (e + mood) % 5})


def test_own_eeg_and_notes_train_without_hand_written_encoders():
    data = make_eeg_and_notes()
    assert [(m.name, m.kind) for m in data.schema.modalities] == [("eeg", "timeseries"), ("notes", "text")]
    train, test = data.select(slice(0, 500)), data.select(slice(500, None))
    keras.utils.set_random_seed(0)
    model = build_fusion_classifier(train)
    assert model.output.shape == (None, 5) and model.get_layer("eeg_encoder").get_layer("conv1") is not None
    fit_classifier(model, train, epochs=10, batch_size=32)
    accuracy = evaluate_classifier(model, test)["accuracy"]
    assert accuracy > 0.7, f"test accuracy {accuracy:.2f}: chance is 0.2, either modality alone at most 0.5"


def test_own_encoder_beside_the_defaults_and_a_zoo_fusion():
    data = make_eeg_and_notes(n=40)
    series = keras.Input(shape=(128, 4), name="eeg")
    x = keras.layers.Conv1D(16, 7, activation="relu")(series)
    my_encoder = keras.Model(series, keras.layers.GlobalMaxPooling1D()(x), name="my_eeg_encoder")
    encoders = build_encoders(data, ["notes"]) | {"eeg": my_encoder}
    model = FusionClassifier(encoders, heads={"label": 5}, fusion="gated")
    assert keras.ops.convert_to_numpy(model(data.inputs(["notes", "eeg"]), training=False)).shape == (40, 5)
