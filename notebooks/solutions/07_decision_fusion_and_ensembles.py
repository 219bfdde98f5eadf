"""Solutions to the exercises of notebook 07 (decision-level fusion and ensembles).

Run: `python notebooks/solutions/07_decision_fusion_and_ensembles.py` (add `MMKERAS_SMOKE=1` for a quick run;
the full run trains the four unimodal members and two more audio models on the notebook's splits: several
minutes on 2 CPU cores).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf  # only for its logger

import mmkeras
from mmkeras.data import MODALITIES
from mmkeras.ensemble import combine_predictions, fit_decision_weights, member_logits
from mmkeras.evidence import paired_difference
from mmkeras.training import train_and_evaluate

tf.get_logger().setLevel("ERROR")  # hide TensorFlow's notes about re-tracing when several models predict in a row
SMOKE = mmkeras.config.is_smoke()
SIZES = mmkeras.config.by_mode(full=(3000, 500, 1000), smoke=(128, 32, 64))  # the notebook's sizes
EPOCHS = mmkeras.config.by_mode(full=8, smoke=1)

_cache = {}


def splits() -> dict:
    """The train / val / test splits, generated once."""
    if "splits" not in _cache:
        _cache["splits"] = mmkeras.load_splits(*SIZES)
    return _cache["splits"]


def trained(modality: str, seed: int = 0):
    """One unimodal member trained with the notebook's recipe (cached)."""
    key = (modality, seed)
    if key not in _cache:
        s = splits()
        _cache[key] = train_and_evaluate([modality], s["train"], s["test"], seed=seed, epochs=EPOCHS).model
    return _cache[key]


def members_logits() -> tuple:
    """The four members' logits on the validation and test splits: `(4, n, 8)` each."""
    if "logits" not in _cache:
        models = [trained(m) for m in MODALITIES]
        _cache["logits"] = (member_logits(models, splits()["val"]), member_logits(models, splits()["test"]))
    return _cache["logits"]


def accuracy(probabilities, labels) -> float:
    return float((np.asarray(probabilities).argmax(axis=-1) == labels).mean())


def log_loss(probabilities, labels) -> float:
    p = np.clip(np.asarray(probabilities)[np.arange(len(labels)), labels], 1e-12, None)
    return float(-np.mean(np.log(p)))


def softmax(logits):
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def exercise_1():
    """Weighted voting, each member's vote weighted by its validation accuracy."""
    val_logits, test_logits = members_logits()
    y_val, y_test = splits()["val"].labels["label"], splits()["test"].labels["label"]
    weights = (val_logits.argmax(-1) == y_val).mean(axis=1)  # (4,) validation accuracy per member
    if not weights.sum() > 0:  # (only possible in smoke mode, with barely trained members)
        weights = np.ones(len(MODALITIES))
    weighted_vote = combine_predictions(test_logits, "vote", weights=weights)
    # Check the rule by hand: the share of the (normalised) weights of the members that vote for each class.
    by_hand = np.zeros_like(weighted_vote)
    for member, w in enumerate(weights / weights.sum()):
        by_hand[np.arange(test_logits.shape[1]), test_logits[member].argmax(-1)] += w
    assert np.allclose(weighted_vote, by_hand)
    results = {"plain vote": accuracy(combine_predictions(test_logits, "vote"), y_test),
               "weighted vote": accuracy(weighted_vote, y_test),
               "logit average": accuracy(combine_predictions(test_logits, "logits"), y_test)}
    if not SMOKE:
        # Weighting does not fix the vote: every member's top class is a coin flip among the classes it cannot
        # tell apart, and a weight cannot turn a wrong vote into a right one. The product keeps the information.
        assert results["logit average"] > results["weighted vote"] + 0.1, results
    return (f"weights (val accuracy) {dict(zip(MODALITIES, weights.round(3).tolist()))}; "
            + ", ".join(f"{k} {v:.3f}" for k, v in results.items()))


def exercise_2():
    """An ensemble of three audio models (seeds 0, 1, 2): accuracy and log loss against its members.

    Guaranteed, for both averaging rules with weights w_m >= 0 summing to 1, on every sample: the ensemble's log
    loss is at most the weighted mean of the members' log losses.
      probability average: -log sum_m w_m p_m(y) <= sum_m w_m (-log p_m(y)), because the logarithm is concave
      (Jensen).
      logit average: q(y) = prod_m p_m(y)^w_m / Z with Z = sum_k prod_m p_m(k)^w_m. By weighted AM-GM,
      prod_m p_m(k)^w_m <= sum_m w_m p_m(k), so Z <= sum_k sum_m w_m p_m(k) = 1 and
      -log q(y) = sum_m w_m (-log p_m(y)) + log Z <= sum_m w_m (-log p_m(y)).
    Not guaranteed: beating the best member, in log loss or in accuracy (nor any bound for a vote, or for the
    product with all weights 1, whose weights do not sum to 1).
    """
    test = splits()["test"]
    y_test = test.labels["label"]
    logits = member_logits([trained("audio", seed) for seed in (0, 1, 2)], test).astype("float64")  # (3, n, 8)
    member_p = softmax(logits)  # (3, n, 8)
    member_acc = [accuracy(p, y_test) for p in member_p]
    member_loss = [log_loss(p, y_test) for p in member_p]
    per_sample_bound = -np.log(member_p[:, np.arange(len(y_test)), y_test]).mean(axis=0)  # (n,) equal weights 1/3
    best = int(np.argmax(member_acc))
    lines = [f"members acc {np.round(member_acc, 3).tolist()} log loss {np.round(member_loss, 3).tolist()}"]
    for rule, method in (("probability average", "probabilities"), ("logit average", "logits")):
        q = combine_predictions(logits, method)  # (n, 8)
        per_sample = -np.log(q[np.arange(len(y_test)), y_test])  # (n,) the ensemble's loss on each sample
        assert np.all(per_sample <= per_sample_bound + 1e-9), (rule, float((per_sample - per_sample_bound).max()))
        assert log_loss(q, y_test) <= np.mean(member_loss) + 1e-9, (rule, log_loss(q, y_test), member_loss)
        d = paired_difference(q.argmax(axis=-1) == y_test, member_p[best].argmax(axis=-1) == y_test)
        verdict = ("above" if d["difference"] > 0 else "below") if d["excludes_zero"] else "tied within noise with"
        lines.append(f"{rule}: acc {accuracy(q, y_test):.3f} ({verdict} the best member, seed {best}: "
                     f"{d['difference']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]), log loss {log_loss(q, y_test):.3f} "
                     f"<= mean member log loss {np.mean(member_loss):.3f} (guaranteed, checked on every sample)")
    return "; ".join(lines)


def exercise_3():
    """A fifth member that is pure noise: which rule suffers, and what weight does it get when learned?"""
    val_logits, test_logits = members_logits()
    y_val, y_test = splits()["val"].labels["label"], splits()["test"].labels["label"]
    rng = np.random.default_rng(0)
    noisy_val = np.concatenate([val_logits, rng.normal(0, 3, size=val_logits.shape[1:])[None]])
    noisy_test = np.concatenate([test_logits, rng.normal(0, 3, size=test_logits.shape[1:])[None]])
    results = {}
    for method in ("probabilities", "logits", "vote"):
        results[method] = (accuracy(combine_predictions(test_logits, method), y_test),
                           accuracy(combine_predictions(noisy_test, method), y_test))
    weights = fit_decision_weights(noisy_val, y_val)  # on the validation split
    learned = accuracy(combine_predictions(noisy_test, "logits", weights=weights), y_test)
    assert weights[-1] < 1 / len(weights), weights  # the noise member gets less than an equal share
    if not SMOKE:
        assert weights[-1] < 0.1, weights  # ... in fact little: it only adds noise to the validation loss
    # Read the printed accuracies: the product (logit average) lets a confident liar veto classes, the average
    # only adds a bounded term w_m p_m(y) <= w_m, and the vote gets one more random voter.
    lines = [f"{m}: {b:.3f} -> {a:.3f} with the noise" for m, (b, a) in results.items()]
    return "; ".join(lines) + f"; learned weights {np.round(weights.astype(float), 3).tolist()} -> {learned:.3f}"


if __name__ == "__main__":
    print(f"SMOKE = {SMOKE}")
    for exercise in (exercise_1, exercise_2, exercise_3):
        print(f"{exercise.__name__}: {exercise()}")
