"""fit_classifier / evaluate_classifier: one head, several heads, the history, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

from mmkeras.data import make_synthetic
from mmkeras.models import build_fusion_classifier
from mmkeras.training import evaluate_classifier, fit_classifier, predict_classes


@pytest.fixture(scope="module")
def small():
    return make_synthetic(96, seed=4), make_synthetic(32, seed=5)


def test_fit_lowers_the_training_loss_and_reports_validation(small):
    train, val = small
    result = fit_classifier(build_fusion_classifier(["text"]), train, val, epochs=4, batch_size=32)
    assert result.history["loss"][-1] < result.history["loss"][0]
    assert len(result.history["val_accuracy"]) == 4 and result.seconds > 0


def test_fit_several_heads(small):
    train, _ = small
    model = build_fusion_classifier(["text"], aux_heads={"color": 2, "direction": 2})
    result = fit_classifier(model, train, epochs=2, label_keys=["label", "color", "direction"])
    assert {"label_accuracy", "color_accuracy", "direction_accuracy"} <= set(result.history)
    assert predict_classes(model, train).shape == (96, 8)


def test_evaluate_reports_consistent_metrics(small):
    train, val = small
    model = build_fusion_classifier(["audio"])
    report = evaluate_classifier(model, val)
    predictions = predict_classes(model, val).argmax(-1)
    assert report["accuracy"] == pytest.approx(np.mean(predictions == val.labels["label"]))
    assert report["confusion_matrix"].sum() == len(val)


@pytest.mark.parametrize("kwargs,match", [({"epochs": 0}, "epochs=0"), ({"learning_rate": -1.0}, "learning_rate=-1.0")])
def test_bad_arguments(small, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fit_classifier(build_fusion_classifier(["audio"]), small[0], **kwargs)
