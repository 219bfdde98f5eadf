"""fit_classifier / evaluate_classifier: one head, several heads, plain pairs of arrays, a tf.data pipeline,
a model compiled by its user (also inside a tf.distribute strategy scope), bad arguments."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mmkeras.data import make_synthetic, to_dataset
from mmkeras.models import build_fusion_classifier
from mmkeras.training import (
    evaluate_classifier,
    fit_classifier,
    predict_classes,
    predict_proba,
    train_and_evaluate,
)


@pytest.fixture(scope="module")
def small():
    return make_synthetic(96, seed=4), make_synthetic(32, seed=5)


def test_fit_lowers_the_training_loss_and_reports_validation(small):
    train, val = small
    result = fit_classifier(build_fusion_classifier(["text"]), train, val, epochs=4, batch_size=32)
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert len(result.history["val_accuracy"]) == 4 and result.seconds > 0


def test_smoke_mode_trains_eagerly_and_a_full_run_compiles(small, monkeypatch):
    train = small[0].select(np.arange(32))
    monkeypatch.setenv("MMKERAS_SMOKE", "1")
    smoke = build_fusion_classifier(["audio"])
    result = fit_classifier(smoke, train, epochs=2, batch_size=16)
    assert smoke.run_eagerly and result.history["loss"][-1] < result.history["loss"][0]
    monkeypatch.setenv("MMKERAS_SMOKE", "0")
    full = build_fusion_classifier(["audio"])
    fit_classifier(full, train, epochs=1, batch_size=16)
    assert not full.run_eagerly
    forced = build_fusion_classifier(["audio"])
    fit_classifier(forced, train, epochs=1, batch_size=16, run_eagerly=True)
    assert forced.run_eagerly


def test_fit_several_heads(small):
    train, _ = small
    model = build_fusion_classifier(["text"], aux_heads={"color": 2, "direction": 2})
    result = fit_classifier(model, train, epochs=2)
    assert {"label_accuracy", "color_accuracy", "direction_accuracy"} <= set(result.history)
    assert predict_proba(model, train).shape == (96, 8)
    assert predict_classes(model, train, head="color").shape == (96,)
    assert evaluate_classifier(model, train, head="direction")["confusion_matrix"].shape == (2, 2)


def test_predictions_are_consistent(small):
    train, val = small
    model = build_fusion_classifier(["audio"])
    report = evaluate_classifier(model, val)
    classes = predict_classes(model, val)
    probabilities = predict_proba(model, val)
    assert classes.dtype.kind == "i" and classes.shape == (32,)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(probabilities.argmax(-1), classes)
    assert report["accuracy"] == pytest.approx(np.mean(classes == val.labels["label"]))
    assert report["confusion_matrix"].sum() == len(val)


def test_plain_arrays_and_tf_data_are_accepted(small):
    train, _ = small
    features = {"image": train.features["image"]}
    model = build_fusion_classifier(["image"])
    fit_classifier(model, (features, train.labels["label"]), epochs=1)
    fit_classifier(model, to_dataset(train, ["image"], batch_size=32), epochs=1)
    assert evaluate_classifier(model, (features, {"label": train.labels["label"]}))["confusion_matrix"].sum() == 96


def test_a_compiled_model_keeps_its_compile_settings(small):
    train, _ = small
    model = build_fusion_classifier(["image"])
    optimizer = keras.optimizers.SGD(0.01)
    model.compile(optimizer=optimizer)
    fit_classifier(model, train, epochs=1)
    assert model.optimizer is optimizer and int(optimizer.iterations) == 2  # 96 samples, batch 64


def test_built_and_compiled_in_a_strategy_scope(small):
    import tensorflow as tf

    train, val = small
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = build_fusion_classifier(["audio", "text"])
        model.compile()
    assert model.distribute_strategy is strategy
    result = fit_classifier(model, train, val, epochs=2, batch_size=32)
    assert len(result.history["loss"]) == 2 and np.isfinite(result.history["loss"]).all()
    report = evaluate_classifier(model, val)  # the same predictions outside the strategy scope
    assert report["accuracy"] == pytest.approx(np.mean(predict_classes(model, val) == val.labels["label"]))


def test_uncompiled_model_is_compiled_in_its_strategy_scope(small):
    import tensorflow as tf

    train, _ = small
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = build_fusion_classifier(["audio"])
    fit_classifier(model, train, epochs=1)
    assert model.optimizer.iterations.path is not None and model.compiled


def test_train_and_evaluate_is_reproducible(small):
    train, val = small
    a = train_and_evaluate(["audio"], train, val, seed=3, epochs=2)
    b = train_and_evaluate(["audio"], train, val, seed=3, epochs=2)
    assert a.history["loss"] == b.history["loss"] and a.report["accuracy"] == b.report["accuracy"]


@pytest.mark.parametrize(
    "kwargs,match",
    [({"epochs": 0}, "epochs=0"), ({"learning_rate": -1.0}, "learning_rate=-1.0"), ({"batch_size": 1.5}, "1.5"),
     ({"run_eagerly": "yes"}, "run_eagerly")],
)
def test_bad_arguments(small, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_classifier(build_fusion_classifier(["audio"]), small[0], **kwargs)


def test_bad_data_and_heads(small):
    model = build_fusion_classifier(["audio"])
    with pytest.raises(ValueError, match="MultimodalData or a pair"):
        fit_classifier(model, [1, 2, 3])
    with pytest.raises(ValueError, match="head='size'"):
        predict_classes(build_fusion_classifier(["audio"], aux_heads={"shape": 2}), small[1], head="size")
    with pytest.raises(ValueError, match="no label 'label'"):
        evaluate_classifier(model, ({"audio": small[1].features["audio"]}, None))


def test_missing_modalities_are_evaluated_one_by_one(small, tmp_path):
    from mmkeras import testing
    from mmkeras.missing import evaluate_missing, without_modality

    train, val = small
    blind = without_modality(val, "text")
    assert set(blind.features["text"]) == {""} and np.array_equal(blind.features["audio"], val.features["audio"])
    model = build_fusion_classifier(["text", "audio"], modality_dropout=0.3)
    fit_classifier(model, train, epochs=1)
    results = evaluate_missing(model, val)
    assert sorted(results) == ["audio", "none", "text"]
    assert results["none"] == evaluate_classifier(model, val)["accuracy"]
    assert results["text"] == evaluate_classifier(model, blind)["accuracy"]  # the caption removed, nothing else
    testing.check_save_load(model, val.inputs(["text", "audio"]), tmp_path)
    # Trained with modality dropout, the model reads a removed modality as zero features, whatever its encoder
    # makes of a blank input: scrambling the text encoder's weights must not change the answers without text.
    before = model.predict(blind.inputs(["text", "audio"]), verbose=0)
    for weight in model.encoders["text"].trainable_weights:
        weight.assign(np.random.default_rng(0).normal(size=weight.shape).astype("float32"))
    np.testing.assert_allclose(model.predict(blind.inputs(["text", "audio"]), verbose=0), before, atol=1e-5)
    assert not np.allclose(model.predict(val.inputs(["text", "audio"]), verbose=0), before, atol=1e-3)


def test_modality_presence_reads_zeros_and_empty_captions_as_missing():
    from mmkeras.missing import ModalityPresence

    presence = ModalityPresence()
    images = np.ones((3, 4, 4, 3), "float32")
    images[1] = 0.0
    assert keras.ops.convert_to_numpy(presence(images)).tolist() == [1.0, 0.0, 1.0]
    captions = np.array(["a red toy", "", "  "], dtype=object)
    assert keras.ops.convert_to_numpy(presence(captions)).tolist() == [1.0, 0.0, 0.0]


def test_uncertainty_weighting_learns_different_weights_per_task(tmp_path):
    from mmkeras import testing
    from mmkeras.losses import WeightHistory

    train = make_synthetic(400, seed=8)
    model = build_fusion_classifier(["text"], aux_heads={"color": 2, "direction": 2})
    with pytest.raises(ValueError, match="several heads"):
        type(model)(model.encoders, heads={"label": 8}, loss_weighting="uncertainty")
    model = type(model)(model.encoders, heads=model.heads, loss_weighting="uncertainty",
                        preprocessor=model.preprocessor)  # its encoders read token ids
    history = WeightHistory()
    result = fit_classifier(model, train, epochs=4, learning_rate=2e-2, callbacks=[history])
    assert {"label_loss", "color_loss", "direction_loss"} <= set(result.history)
    weights = history.history[-1]
    assert len(history.history) == 4 and weights["label"] < min(weights["color"], weights["direction"]), weights
    testing.check_save_load(model, train.select(slice(0, 4)).inputs(["text"]), tmp_path)
