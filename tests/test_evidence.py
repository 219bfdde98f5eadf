"""`mmkeras.evidence`: the intervals and rankings behind every comparison the course prints (docs/evidence.md)."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from mmkeras.evidence import (
    BEST,
    TIED,
    UNRANKED,
    WORSE,
    Spread,
    bootstrap_interval,
    paired_difference,
    rank_with_spread,
    seed_spread,
    wilson_interval,
)

# ------------------------------------------------------------------ Wilson


def _wilson_by_hand(k, n, z=1.959963984540054):
    """The textbook formula, written out once more: (p + z²/2n ± z sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    p = k / n
    root = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (p + z * z / (2 * n) - root) / (1 + z * z / n), (p + z * z / (2 * n) + root) / (1 + z * z / n)


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (90, 100), (972, 1000), (1, 1)])
def test_wilson_matches_the_formula(k, n):
    low, high = wilson_interval(k, n)
    expected = _wilson_by_hand(k, n)
    assert low == pytest.approx(expected[0], abs=1e-12) and high == pytest.approx(expected[1], abs=1e-12)
    assert 0.0 <= low <= k / n <= high <= 1.0


def test_wilson_known_values():
    # Published values: 90/100 at 95 % is [0.8256, 0.9448]; 0/10 is [0, 0.2775]; 10/10 is [0.7225, 1].
    assert tuple(round(v, 4) for v in wilson_interval(90, 100)) == (0.8256, 0.9448)
    assert tuple(round(v, 4) for v in wilson_interval(0, 10)) == (0.0, 0.2775)
    assert tuple(round(v, 4) for v in wilson_interval(10, 10)) == (0.7225, 1.0)


def test_wilson_from_hits_equals_wilson_from_a_count_and_narrows_with_n():
    hits = np.array([True] * 45 + [False] * 5)
    assert wilson_interval(hits) == wilson_interval(45, 50)
    assert wilson_interval(hits.astype(int).tolist()) == wilson_interval(45, 50)
    small, large = wilson_interval(45, 50), wilson_interval(900, 1000)
    assert large.high - large.low < small.high - small.low
    wide = wilson_interval(45, 50, confidence=0.99)
    assert wide.low < small.low and wide.high > small.high


# ------------------------------------------------------------------ bootstrap


def test_bootstrap_covers_the_true_mean_about_as_often_as_it_promises():
    """Coverage sanity: 200 test sets of 200 examples with true accuracy 0.8; a 90 % interval should contain
    0.8 in roughly 90 % of them (the percentile bootstrap runs a little short on small samples)."""
    rng = np.random.default_rng(1)
    covered = 0
    for trial in range(200):
        hits = rng.random(200) < 0.8
        low, high = bootstrap_interval(hits, confidence=0.9, resamples=400, seed=trial)
        covered += low <= 0.8 <= high
    assert 0.82 <= covered / 200 <= 0.97, covered


def test_bootstrap_agrees_with_wilson_on_a_large_test_set_and_takes_any_statistic():
    hits = [1] * 850 + [0] * 150
    boot, wilson = bootstrap_interval(hits), wilson_interval(850, 1000)
    assert boot.low == pytest.approx(wilson.low, abs=0.01) and boot.high == pytest.approx(wilson.high, abs=0.01)
    losses = np.linspace(0.0, 2.0, 101)
    low, high = bootstrap_interval(losses, statistic=np.median)
    assert low < 1.0 < high


def test_same_seed_same_numbers_and_another_seed_other_numbers():
    rng = np.random.default_rng(0)
    a, b = rng.random(300) < 0.7, rng.random(300) < 0.6
    assert bootstrap_interval(a, seed=3) == bootstrap_interval(a, seed=3)
    assert paired_difference(a, b, seed=3) == paired_difference(a, b, seed=3)
    # Another seed draws other resamples (an accuracy on 300 examples moves in steps of 1/300, so an end may repeat).
    assert len({bootstrap_interval(a, seed=s) for s in range(5)}) > 1
    assert len({(paired_difference(a, b, seed=s)["low"], paired_difference(a, b, seed=s)["high"])
                for s in range(5)}) > 1


# ------------------------------------------------------------------ paired difference


def test_paired_difference_sign_and_a_clear_gap():
    rng = np.random.default_rng(0)
    truth_hard = rng.random(500) < 0.3  # examples that are hard for both models
    a = ~truth_hard | (rng.random(500) < 0.5)  # A solves half of the hard ones
    b = ~truth_hard & (rng.random(500) < 0.95)  # B solves none of them and drops a few easy ones
    ab, ba = paired_difference(a, b), paired_difference(b, a)
    assert ab["difference"] == pytest.approx(a.mean() - b.mean()) and ab["difference"] > 0
    assert ab["excludes_zero"] and ab["low"] > 0
    assert ba["difference"] == pytest.approx(-ab["difference"]) and ba["high"] < 0 and ba["excludes_zero"]
    assert (ab["accuracy_a"], ab["accuracy_b"], ab["n"]) == (pytest.approx(a.mean()), pytest.approx(b.mean()), 500)


def test_identical_models_are_tied_and_a_tiny_gap_is_too():
    rng = np.random.default_rng(2)
    a = rng.random(400) < 0.75
    same = paired_difference(a, a)
    assert same["difference"] == 0.0 and same["low"] <= 0.0 <= same["high"] and not same["excludes_zero"]
    b = a.copy()
    b[np.flatnonzero(a)[:2]] = False  # two more mistakes out of 400
    close = paired_difference(a, b)
    assert close["difference"] == pytest.approx(2 / 400) and close["low"] <= 0.0 <= close["high"]
    assert not close["excludes_zero"]


def test_pairing_is_narrower_than_two_separate_intervals():
    rng = np.random.default_rng(3)
    a = rng.random(400) < 0.8
    b = a.copy()
    b[np.flatnonzero(a)[:12]] = False  # B = A with 12 extra mistakes: a 3-point gap, perfectly correlated
    paired = paired_difference(a, b)
    assert paired["excludes_zero"]  # detected when paired ...
    wa, wb = wilson_interval(a), wilson_interval(b)
    assert wa.low < wb.high  # ... though the two separate intervals overlap


# ------------------------------------------------------------------ spreads and rankings


def test_seed_spread_values_and_format():
    spread = seed_spread([0.966, 0.978, 0.972])
    assert isinstance(spread, Spread) and spread.n == 3
    assert spread.mean == pytest.approx(0.972) and (spread.min, spread.max) == (0.966, 0.978)
    assert spread.std == pytest.approx(np.std([0.966, 0.978, 0.972], ddof=1))
    assert spread.format() == "0.972 (0.966–0.978)"
    assert seed_spread(np.array([0.5])) == Spread(0.5, 0.5, 0.5, 0.0, 1)
    assert seed_spread([0.5]).format() == "0.500"
    assert spread._asdict() == {"mean": spread.mean, "min": 0.966, "max": 0.978, "std": spread.std, "n": 3}


def test_rank_labels_on_constructed_results():
    results = {
        "sum": [0.90, 0.91, 0.92],  # max 0.92 < best min 0.96: clearly worse
        "gated": [0.95, 0.96, 0.97],  # overlaps the best range: tied
        "concat": [0.96, 0.97, 0.98],  # best mean
        "edge": [0.94, 0.95, 0.96],  # max == best min: touching ranges count as overlapping
        "two": [0.99, 0.50],  # two runs only: unranked
    }
    rows = rank_with_spread(results)
    assert [r.name for r in rows] == ["concat", "gated", "edge", "sum", "two"]
    assert {r.name: r.verdict for r in rows} == {"concat": BEST, "gated": TIED, "edge": TIED, "sum": WORSE,
                                                 "two": UNRANKED}
    assert rows[0].spread == seed_spread(results["concat"])


def test_rank_needs_enough_runs_for_the_best_too_and_min_runs_is_a_choice():
    results = {"a": [0.9], "b": [0.8]}
    assert [r.verdict for r in rank_with_spread(results)] == [BEST, UNRANKED]
    assert [r.verdict for r in rank_with_spread(results, min_runs=1)] == [BEST, WORSE]
    few_best = {"a": [0.99, 0.98], "b": [0.1, 0.2, 0.3]}
    assert [r.verdict for r in rank_with_spread(few_best)] == [BEST, UNRANKED]


def test_rank_lower_is_better_and_ties_in_mean_keep_input_order():
    losses = {"big": [1.0, 1.1, 1.2], "small": [0.5, 0.6, 0.7], "mid": [0.65, 0.7, 0.75]}
    rows = rank_with_spread(losses, higher_is_better=False)
    assert [(r.name, r.verdict) for r in rows] == [("small", BEST), ("mid", TIED), ("big", WORSE)]
    equal = rank_with_spread({"first": [0.5, 0.6, 0.7], "second": [0.7, 0.6, 0.5]})
    assert [(r.name, r.verdict) for r in equal] == [("first", BEST), ("second", TIED)]


# ------------------------------------------------------------------ bad arguments


@pytest.mark.parametrize(
    "call,message",
    [
        (lambda: wilson_interval(5), r"needs `n`.*Received: correct_or_k=5, n=None"),
        (lambda: wilson_interval(11, 10), r"cannot exceed `n`. Received: correct_or_k=11, n=10"),
        (lambda: wilson_interval(3, 0), r"`n` must be an int >= 1. Received: n=0"),
        (lambda: wilson_interval(-1, 10), r"Received: correct_or_k=-1"),
        (lambda: wilson_interval(2.5, 10), r"Received: correct_or_k=2.5"),
        (lambda: wilson_interval([1, 0, 2]), r"one 0/1 .* Received: correct_or_k=\[1, 0, 2\]"),
        (lambda: wilson_interval([]), r"non-empty 1-D .* Received: correct_or_k=\[\]"),
        (lambda: wilson_interval(9, 10, confidence=95), r"`confidence` must be a number in \(0, 1\). "
                                                        r"Received: confidence=95"),
        (lambda: bootstrap_interval("0.9"), r"Received: values='0.9'"),
        (lambda: bootstrap_interval([[1, 0], [0, 1]]), r"1-D .* Received: values=\[\[1, 0\], \[0, 1\]\]"),
        (lambda: bootstrap_interval([1.0, float("nan")]), r"finite numbers. Received: values=\[1.0, nan\]"),
        (lambda: bootstrap_interval([1, 0], resamples=10), r"`resamples` must be an int >= 100. Received: "
                                                           r"resamples=10"),
        (lambda: bootstrap_interval([1, 0], seed=-1), r"Received: seed=-1"),
        (lambda: bootstrap_interval([1, 0], statistic="mean"), r"Received: statistic='mean'"),
        (lambda: paired_difference([1, 0, 1], [1, 0]), r"same examples. Received: 3 and 2 entries"),
        (lambda: paired_difference(np.full(50, 0.5), np.ones(50)), r"array of shape \(50,\) starting \[0.5"),
        (lambda: seed_spread([]), r"Received: values=\[\]"),
        (lambda: rank_with_spread({}), r"non-empty dict .* Received: results=\{\}"),
        (lambda: rank_with_spread([0.9, 0.8]), r"Received: results=\[0.9, 0.8\]"),
        (lambda: rank_with_spread({"a": []}), r"Received: results\['a'\]=\[\]"),
        (lambda: rank_with_spread({"a": [0.9]}, min_runs=0), r"Received: min_runs=0"),
        (lambda: rank_with_spread({"a": [0.9]}, higher_is_better="yes"), r"Received: higher_is_better='yes'"),
    ],
)
def test_bad_arguments_raise_and_quote_what_was_received(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_importing_evidence_stays_light():
    """NumPy only: notebooks, commands and tests can use it without loading TensorFlow or Keras."""
    check = ("import sys, mmkeras; mmkeras.evidence.seed_spread([1.0]); "
             "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF loaded'")
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
