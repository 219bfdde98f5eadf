"""Decision-level fusion and ensembles: each combination rule on hand-made numbers, learned weights, members."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from mmkeras import testing
from mmkeras.data import make_synthetic
from mmkeras.ensemble import DecisionFusion, combine_predictions, fit_decision_weights, member_logits
from mmkeras.models import build_fusion_classifier
from mmkeras.training import fit_classifier

LOGITS = np.log(np.array([[[0.6, 0.4], [0.2, 0.8]],
                          [[0.6, 0.4], [0.3, 0.7]],
                          [[0.1, 0.9], [0.9, 0.1]]]))  # (3 members, 2 samples, 2 classes)


def test_probability_averaging():
    expected = (np.array([[0.6, 0.4], [0.2, 0.8]]) + np.array([[0.6, 0.4], [0.3, 0.7]])
                + np.array([[0.1, 0.9], [0.9, 0.1]])) / 3
    np.testing.assert_allclose(combine_predictions(LOGITS, "probabilities"), expected)


def test_logit_averaging_is_a_normalised_geometric_mean():
    p = np.exp(LOGITS)
    geometric = np.prod(p ** (1 / 3), axis=0)
    np.testing.assert_allclose(combine_predictions(LOGITS, "logits"), geometric / geometric.sum(-1, keepdims=True))


def test_majority_and_weighted_voting():
    np.testing.assert_allclose(combine_predictions(LOGITS, "vote"), [[2 / 3, 1 / 3], [1 / 3, 2 / 3]])
    weighted = combine_predictions(LOGITS, "vote", weights=[1, 1, 3])
    assert weighted.argmax(-1).tolist() == [1, 0], "a heavy member outvotes two light ones"


def test_decision_fusion_layer_and_learned_weights():
    layer = DecisionFusion(3)
    testing.check_config_round_trip(layer)
    out = keras.ops.convert_to_numpy(layer(np.transpose(LOGITS, (1, 0, 2)).astype("float32")))
    np.testing.assert_allclose(np.exp(out) / np.exp(out).sum(-1, keepdims=True),
                               combine_predictions(LOGITS, "logits"), rtol=1e-5)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 300)
    good = np.eye(4)[labels] * 3 + rng.normal(size=(300, 4))  # an informative member
    noise = rng.normal(size=(2, 300, 4)) * 3  # two members that know nothing
    weights = fit_decision_weights(np.concatenate([good[None], noise]), labels)
    assert weights.shape == (3,) and weights[0] > 0.8, weights


def test_members_are_real_models():
    train, test = make_synthetic(128, seed=1), make_synthetic(32, seed=2)
    models = []
    for modality in ("image", "audio"):
        keras.utils.set_random_seed(0)
        model = build_fusion_classifier([modality])
        fit_classifier(model, train, epochs=1)
        models.append(model)
    logits = member_logits(models, test)
    assert logits.shape == (2, 32, 8)
    assert combine_predictions(logits).shape == (32, 8)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: combine_predictions(LOGITS, "median"), r"method='median'"),
        (lambda: combine_predictions(LOGITS[0], "vote"), r"\(members, samples, classes\)"),
        (lambda: combine_predictions(LOGITS, weights=[1, 2]), r"3 non-negative numbers"),
        (lambda: combine_predictions(LOGITS, weights=[0, 0, 0]), r"not all zero"),
        (lambda: DecisionFusion(0), r"members=0"),
        (lambda: member_logits([], None), r"non-empty list"),
        (lambda: fit_decision_weights(LOGITS, [0, 1, 1]), r"labels \(n,\)"),
    ],
)
def test_bad_arguments_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()
