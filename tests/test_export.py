"""Export to SavedModel, TFLite (float32, float16, int8) and ONNX, each checked against the Keras model.

One AV-MNIST fused classifier (image + audio, built with `preprocessor=None` so that the audio encoder computes
its mel spectrogram inside the model: the hardest case for the converters) is trained for one epoch on the
offline fixture and exported once per session; every format then runs on the test split. A small moving-toys
model with its tokenizer inside (`TextVectorization`, string ops) checks the cut into preprocessing and a
numeric core, which TFLite and ONNX need; the default model, whose `MultimodalPreprocessor` sits outside its
numeric graph, is exported end to end with no cut at all.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmkeras import export


@pytest.fixture(scope="session")
def avmnist(tmp_path_factory):
    from mmkeras.data.avmnist import load_avmnist, prepare_fixture

    cache = prepare_fixture(tmp_path_factory.mktemp("avmnist"), fixture_images=(240, 60), progress=False)
    return load_avmnist(cache, degrade=True)


@pytest.fixture(scope="session")
def trained(avmnist):
    import keras

    from mmkeras.models import build_fusion_classifier
    from mmkeras.training import fit_classifier

    keras.utils.set_random_seed(0)
    model = build_fusion_classifier(avmnist["train"], preprocessor=None)  # the mel inside the model
    fit_classifier(model, avmnist["train"], epochs=1, batch_size=32)
    return model


@pytest.fixture(scope="session")
def exported(trained, avmnist, tmp_path_factory):
    from mmkeras.data.avmnist import AVMNIST_SCHEMA

    folder = tmp_path_factory.mktemp("exports")
    return export.export_all(trained, folder, schema=AVMNIST_SCHEMA, examples=avmnist["test"])


@pytest.fixture(scope="session")
def report(trained, exported, avmnist):
    return export.parity_report(trained, exported, avmnist["test"])


def test_every_format_is_written(exported):
    assert set(exported) == set(export.FORMATS)  # no preprocessor: no string input, the mel inside the model
    for fmt, path in exported.items():
        assert export.size_on_disk(path) > 10_000, fmt


@pytest.mark.parametrize("fmt", export.FLOAT_FORMATS)
def test_float_formats_match_keras_within_1e_4(report, fmt):
    assert report[fmt]["n"] == 60
    assert report[fmt]["max_abs_diff"] <= export.FLOAT_TOLERANCE
    assert report[fmt]["top1_agreement"] == 1.0
    assert report[fmt]["passed"]


@pytest.mark.parametrize("fmt", ["tflite_float16", "tflite_int8"])
def test_quantized_formats_agree_on_the_top_class(report, fmt):
    """>= 99 % agreement on the test split. The tiny fixture model is barely trained, so its logits are close to
    ties; a flip is only acceptable on a tie closer than the quantization error, which `unexplained_flips` checks
    whatever the seed."""
    assert report[fmt]["unexplained_flips"] == 0
    assert report[fmt]["top1_agreement"] >= export.MIN_TOP1_AGREEMENT
    assert 0 < report[fmt]["max_abs_diff"] < 1.0  # quantized: close but not equal
    assert report[fmt]["passed"]


def test_quantization_shrinks_the_file(exported):
    sizes = {q: export.size_on_disk(exported[f"tflite_{q}"]) for q in export.TFLITE_QUANTIZATIONS}
    assert sizes["int8"] < sizes["float16"] < sizes["float32"]
    assert sizes["int8"] < 0.5 * sizes["float32"]


def test_saved_model_metadata_describes_the_inputs(exported):
    directory = exported["saved_model"]
    metadata = export.read_metadata(directory)
    assert metadata["inputs"] == {
        "image": {"shape": [28, 28, 1], "dtype": "float32", "kind": "image"},
        "audio": {"shape": [8000], "dtype": "float32", "kind": "audio", "sample_rate": 8000},
    }
    assert metadata["label"] == "digit" and metadata["class_names"] == [str(d) for d in range(10)]
    assert metadata["examples"] == 10
    with np.load(directory / export.EXAMPLES_FILE) as examples:
        assert examples["image"].shape == (10, 28, 28, 1) and examples["audio"].shape == (10, 8000)
        assert examples["label"].shape == (10,)
    assert json.loads((directory / export.METADATA_FILE).read_text())["signature"] == "serving_default"


def test_saved_model_serves_in_inference_mode(exported, avmnist):
    """Keras's model.export() would leave the image encoder's random augmentation on; ours must not."""
    runner = export.SavedModelRunner(exported["saved_model"])
    features = {m: avmnist["test"].features[m][:8] for m in ("image", "audio")}
    first, second = runner(features)["digit"], runner(features)["digit"]
    np.testing.assert_array_equal(first, second)


def _stored_values(saved_model_dir):
    import tensorflow as tf

    names = tf.train.list_variables(str(saved_model_dir / "variables" / "variables"))
    return sum(int(np.prod(shape)) for name, shape in names if name != "_CHECKPOINTABLE_OBJECT_GRAPH")


def test_saved_model_stores_each_weight_once(trained, exported, captioned, tmp_path):
    """keras-team/keras#23553: ExportArchive.track() wrote every weight twice; export_saved_model must not."""
    weights = sum(int(np.prod(v.shape)) for v in trained.weights)
    stored = _stored_values(exported["saved_model"])
    assert weights <= stored < 1.01 * weights + 16, (stored, weights)  # + a few seed-generator states
    model, _ = captioned  # a string model: its lookup table must survive the change
    directory = export.export_saved_model(model, tmp_path / "text_model")
    assert _stored_values(directory) < 1.01 * sum(int(np.prod(v.shape)) for v in model.weights) + 16


def test_tflite_runs_batch_size_one_with_named_inputs_and_builtin_ops_only(exported):
    runner = export.TFLiteRunner(exported["tflite_float32"])
    assert {name: list(d["shape"]) for name, d in runner.input_details.items()} == {
        "image": [1, 28, 28, 1], "audio": [1, 8000]}
    for quantization in export.TFLITE_QUANTIZATIONS:  # no Flex (SELECT_TF_OPS) op: the mel's RFFT is builtin
        assert b"Flex" not in exported[f"tflite_{quantization}"].read_bytes()


def test_read_metadata_rejects_a_directory_without_a_model(tmp_path):
    with pytest.raises(ValueError, match="not a model directory: expected saved_model.pb"):
        export.read_metadata(tmp_path)


def test_compare_logits_rejects_different_shapes():
    with pytest.raises(ValueError, match=r"same shape. Received: \(2, 3\) and \(2, 4\)"):
        export.compare_logits(np.zeros((2, 3)), np.zeros((2, 4)))


def test_prune_weights_zeroes_the_smallest_kernel_weights(trained, exported, avmnist, tmp_path):
    import keras

    clone = export.copy_model(trained)
    dense_before = keras.ops.convert_to_numpy(clone.get_layer("digit").kernel)
    report = export.prune_weights(clone, sparsity=0.5)
    assert len(report) >= 4 and all(0.5 <= fraction < 0.52 for fraction in report.values())
    dense_after = keras.ops.convert_to_numpy(clone.get_layer("digit").kernel)
    kept = dense_after != 0
    assert np.abs(dense_before[kept]).min() >= np.abs(dense_before[~kept]).max()  # the largest ones survive
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(trained.get_layer("digit").kernel), dense_before)
    path = export.export_tflite(clone, tmp_path / "pruned.tflite", "float32")
    assert export.gzip_size(path) < 0.9 * export.gzip_size(exported["tflite_float32"])  # zeros compress
    logits = export.TFLiteRunner(path)({m: avmnist["test"].features[m][:4] for m in ("image", "audio")})["digit"]
    assert logits.shape == (4, 10) and np.isfinite(logits).all()


def test_copy_model_keeps_an_encoder_shared_by_two_modalities():
    """One encoder object serves `left` and `right` (review 04, 3.12): `from_config(get_config())` built it
    twice and failed on the repeated name; the copy must keep one shared encoder, with its own weights."""
    import keras

    from mmkeras.models import FusionClassifier

    keras.utils.set_random_seed(0)
    features = keras.Input((6,), name="features")
    encoder = keras.Model(features, keras.layers.Dense(4, name="projection")(features), name="shared_encoder")
    model = FusionClassifier({"left": encoder, "right": encoder}, heads={"label": 3})
    x = {m: np.random.default_rng(i).normal(size=(5, 6)).astype("float32") for i, m in enumerate(("left", "right"))}
    copy = export.copy_model(model)
    assert type(copy) is type(model) and copy.count_params() == model.count_params()
    assert copy.encoders["left"] is copy.encoders["right"] and copy.encoders["left"] is not encoder
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(copy(x)), keras.ops.convert_to_numpy(model(x)))
    export.prune_weights(copy, 0.5)  # the copy's weights are its own
    assert not np.any(keras.ops.convert_to_numpy(encoder.get_layer("projection").kernel) == 0)


def _mel_layers(**options):
    import keras

    reference = keras.layers.MelSpectrogram(fft_length=256, sequence_stride=128, sampling_rate=8000, num_mel_bins=32,
                                            min_freq=20.0, max_freq=4000, top_db=1000.0, name="mel_spectrogram")
    return reference, export.PortableMelSpectrogram.from_layer(reference, **options)


def _op_types(layer):
    import tensorflow as tf

    graph = tf.function(lambda x: layer(x)).get_concrete_function(tf.TensorSpec((None, 4000), tf.float32)).graph
    return [op.type for op in graph.get_operations()]


def test_portable_mel_spectrogram_computes_the_same_numbers_with_converter_friendly_ops():
    """The subclass export swaps in: no RFFT for ONNX, the mel matrix in several float blocks for int8."""
    import keras

    from mmkeras.testing import check_config_round_trip, check_save_load

    waves = np.random.default_rng(0).normal(size=(3, 4000)).astype("float32")
    reference, portable = _mel_layers(dft_as_matmul=True, float_mel_blocks=True)
    assert portable.name == "mel_spectrogram" and portable.get_config()["float_mel_blocks"] is True
    expected = keras.ops.convert_to_numpy(reference(waves))  # (batch, mel_bins, frames), dB
    np.testing.assert_allclose(keras.ops.convert_to_numpy(portable(waves)), expected, atol=1e-3)
    assert "RFFT" in _op_types(reference) and "RFFT" not in _op_types(portable)
    _, blocks_only = _mel_layers(dft_as_matmul=False, float_mel_blocks=True)
    assert "RFFT" in _op_types(blocks_only)
    assert _op_types(blocks_only).count("MatMul") > _op_types(reference).count("MatMul")
    check_config_round_trip(portable)
    check_save_load(keras.Sequential([keras.Input((4000,)), portable]), waves, atol=1e-3)


def test_portable_spectrograms_leave_the_trained_model_untouched(trained):
    import keras

    from mmkeras.export.spectrogram import with_portable_spectrograms

    portable = with_portable_spectrograms(trained, dft_as_matmul=True)
    kinds = {type(layer) for layer in export.all_layers(trained)}
    assert keras.layers.MelSpectrogram in kinds and export.PortableMelSpectrogram not in kinds
    assert export.PortableMelSpectrogram in {type(layer) for layer in export.all_layers(portable)}
    assert {id(v) for v in portable.weights} == {id(v) for v in trained.weights}  # shared, not copied
    assert with_portable_spectrograms(trained) is trained  # nothing to change: no clone


def test_dft_as_matmul_refuses_a_window_it_cannot_reproduce():
    with pytest.raises(ValueError, match=r"windows \('hann', 'hamming', None\).*window='kaiser'"):
        export.PortableMelSpectrogram(window="kaiser")
    assert export.PortableMelSpectrogram(window="kaiser", dft_as_matmul=False).window == "kaiser"


def test_importing_the_package_starts_neither_tensorflow_nor_keras():
    """`mmkeras serve` reads metadata.json before it starts TensorFlow; every name of the old module remains."""
    import os
    import pathlib
    import subprocess
    import sys

    check = "import sys, mmkeras.export; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(pathlib.Path(export.__file__).parents[2])))
    assert done.stdout.strip() == "False False", done.stderr
    assert all(getattr(export, name) is not None for name in export.__all__)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="`quantization` must be one of"):
        export.export_tflite(None, "x.tflite", quantization="int4")
    with pytest.raises(ValueError, match="`sparsity` must be a number in"):
        export.prune_weights(None, sparsity=1.0)


# ------------------------------------------------------------------ a model with captions: preprocessing + core


@pytest.fixture(scope="session")
def captioned():
    import keras

    from mmkeras.data import load_splits
    from mmkeras.models import build_fusion_classifier
    from mmkeras.training import fit_classifier

    splits = load_splits(64, 8, 24, seed=3)
    keras.utils.set_random_seed(0)
    model = build_fusion_classifier(["text", "image"], preprocessor=None)  # the tokenizer inside the model
    fit_classifier(model, splits["train"], epochs=1, batch_size=32)
    return model, splits["test"]


@pytest.fixture(scope="session")
def preprocessed(tmp_path_factory):
    """The default: a MultimodalPreprocessor (tokenizer, log-mel) and a numeric model, exported to every format."""
    import keras

    from mmkeras.data import load_splits
    from mmkeras.data.synthetic import SCHEMA
    from mmkeras.models import build_fusion_classifier
    from mmkeras.training import fit_classifier

    splits = load_splits(64, 8, 24, seed=4)
    keras.utils.set_random_seed(0)
    model = build_fusion_classifier(["text", "image", "audio"])
    fit_classifier(model, splits["train"], epochs=1, batch_size=32)
    paths = export.export_all(model, tmp_path_factory.mktemp("preprocessed"), schema=SCHEMA,
                              examples=splits["test"])
    return model, splits["test"], paths


def test_a_model_with_a_preprocessor_exports_end_to_end_without_a_cut(preprocessed):
    """Every format matches Keras; the SavedModel takes captions and waveforms; TFLite and ONNX run the model's
    own numeric graph after the exported preprocessor (no graph rebuilt around token ids)."""
    model, test, paths = preprocessed
    split = export.split_preprocessing(model)
    assert split.preprocessor is model.preprocessor and split.string_inputs == ("text",)
    assert [layer.name for layer in split.core.layers if layer.name.endswith("_encoder")] == [
        layer.name for layer in model.layers if layer.name.endswith("_encoder")]  # the same layers, shared
    report = export.parity_report(model, paths, test)
    assert set(report) == set(export.FORMATS)
    assert all(numbers["passed"] for numbers in report.values()), report
    metadata = export.read_metadata(paths["saved_model"])
    assert metadata["inputs"]["text"] == {"shape": [], "dtype": "string", "kind": "text"}
    assert metadata["inputs"]["audio"] == {"shape": [4000], "dtype": "float32", "kind": "audio",
                                           "sample_rate": 8000}
    details = export.TFLiteRunner(paths["tflite_float32"]).input_details
    assert {name: list(d["shape"]) for name, d in details.items()} == {
        "text": [1, 12], "image": [1, 32, 32, 3], "audio": [1, 32, 32]}  # token ids and log-mel frames
    import tensorflow as tf

    loaded = tf.saved_model.load(str(paths["preprocessor"]))  # the exported preprocessor alone
    ids = loaded.signatures["serving_default"](text=tf.constant(["a red circle moves left"]),
                                               image=tf.zeros((1, 32, 32, 3)), audio=tf.zeros((1, 4000)))
    assert ids["text"].dtype == tf.int32 and ids["audio"].shape == (1, 32, 32)


def test_split_preprocessing_gives_the_same_logits(captioned):
    import keras

    model, test = captioned
    split = export.split_preprocessing(model)
    assert split.string_inputs == ("text",)
    assert sorted(split.core.input) == ["image", "text_token_ids"]
    core_inputs = split.core_inputs(test.features)
    assert core_inputs["text_token_ids"].shape == (24, 12) and core_inputs["text_token_ids"].dtype == np.int64
    full = export.keras_logits(model, test.features)["label"]
    core = keras.ops.convert_to_numpy(split.core(core_inputs, training=False))
    assert np.abs(full - core).max() < 1e-5


def test_string_model_exports_its_core_to_tflite_and_onnx(captioned, tmp_path):
    from mmkeras.data.synthetic import SCHEMA

    model, test = captioned
    paths = export.export_all(model, tmp_path, schema=SCHEMA, formats=("saved_model", "tflite_float32", "onnx"))
    assert (tmp_path / "preprocessor" / "saved_model.pb").is_file()
    report = export.parity_report(model, paths, test)
    assert set(report) == {"saved_model", "tflite_float32", "onnx"}
    for fmt, numbers in report.items():
        assert numbers["max_abs_diff"] <= export.FLOAT_TOLERANCE, (fmt, numbers)
    assert export.read_metadata(paths["saved_model"])["inputs"]["text"] == {"shape": [], "dtype": "string",
                                                                            "kind": "text"}


def test_string_inputs_are_refused_by_tflite_and_onnx(captioned, tmp_path):
    model, _ = captioned
    with pytest.raises(ValueError, match=r"TFLite builtin ops cannot read strings.*\['text'\]"):
        export.export_tflite(model, tmp_path / "m.tflite")
    with pytest.raises(ValueError, match=r"ONNX has no TensorFlow string ops.*\['text'\]"):
        export.export_onnx(model, tmp_path / "m.onnx")
