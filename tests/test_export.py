"""Export to SavedModel, TFLite (float32, float16, int8) and ONNX, each checked against the Keras model.

One AV-MNIST fused classifier (image + audio, the audio encoder computing a mel spectrogram inside the model) is
trained for one epoch on the offline fixture and exported once per session; every format then runs on the test
split. A small moving-toys model with a caption (`TextVectorization`, string ops) checks the split into
preprocessing and a numeric core, which TFLite and ONNX need.
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
    model = build_fusion_classifier(avmnist["train"])
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
    assert set(exported) == set(export.FORMATS)  # no preprocessor: AV-MNIST has no string input
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
    model = build_fusion_classifier(["text", "image"])
    fit_classifier(model, splits["train"], epochs=1, batch_size=32)
    return model, splits["test"]


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
