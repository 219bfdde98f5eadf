"""How sure is a comparison? Intervals for an accuracy, spreads over seeds, and rankings that say "tied".

The course's evidence rule (docs/evidence.md): a comparison that ranks models reports the spread over at least
3 seeds (mean, min–max) or an interval on the test set (bootstrap or Wilson), and says "better" only when the
gap exceeds it; otherwise "tied within noise". This module computes those numbers, with NumPy only (no
TensorFlow), so a notebook, a command or a test can use it on any list of accuracies or of per-example hits.

    wilson_interval      an accuracy's interval on a test set of n examples (k correct)
    bootstrap_interval   a percentile-bootstrap interval for any statistic of per-example values
    paired_difference    accuracy of A minus accuracy of B on the same test examples, with a paired interval
    seed_spread          mean, min, max, std over runs (seeds); `Spread.format()` gives "0.972 (0.966–0.978)"
    rank_with_spread     rows sorted by mean, each labelled "best mean", "tied within noise" or "clearly worse"

Example:
>>> spread = seed_spread([0.966, 0.972, 0.978])
>>> spread.format()
'0.972 (0.966–0.978)'
>>> [(row.name, row.verdict) for row in rank_with_spread({"gated": [0.961, 0.969, 0.975],
...                                                       "concat": [0.966, 0.972, 0.978]})]
[('concat', 'best mean'), ('gated', 'tied within noise')]
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from mmkeras._validation import _is_int, check_bool, check_int, check_number

BEST = "best mean"
"""The verdict of the row with the best mean: the reference the others are compared with, not a claim."""
TIED = "tied within noise"
"""The row's range over runs overlaps the best row's range: the gap does not exceed the spread."""
WORSE = "clearly worse"
"""Every run of the row is worse than every run of the best row: the gap exceeds the spread."""
UNRANKED = "unranked"
"""The row or the best row has fewer than `min_runs` runs: too few to tell a gap from noise."""


class Interval(NamedTuple):
    """A confidence interval `(low, high)`; unpacks like a pair."""

    low: float
    high: float

    def format(self, digits: int = 3) -> str:
        """`"[0.952, 0.978]"`, with `digits` decimals."""
        return f"[{self.low:.{digits}f}, {self.high:.{digits}f}]"


class Spread(NamedTuple):
    """Mean, min, max, sample standard deviation and number of runs of a list of values (e.g. one per seed)."""

    mean: float
    min: float
    max: float
    std: float
    n: int

    def format(self, digits: int = 3) -> str:
        """`"mean (min–max)"` with `digits` decimals, the course's way of writing a result over seeds.

        One run has no spread: it is written as its value alone.

        Example:
        >>> seed_spread([0.5, 0.75]).format(2)
        '0.62 (0.50–0.75)'
        >>> seed_spread([0.5]).format(2)
        '0.50'
        """
        if self.n == 1:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} ({self.min:.{digits}f}–{self.max:.{digits}f})"


class RankedRow(NamedTuple):
    """One row of `rank_with_spread`: the name, its `Spread`, and its verdict against the best row."""

    name: str
    spread: Spread
    verdict: str


def _short(value) -> str:
    """A repr short enough for an error message (arrays by shape and first values)."""
    if isinstance(value, np.ndarray):
        head = np.array2string(value.ravel()[:6], separator=", ", threshold=6)
        return f"array of shape {value.shape} starting {head}"
    text = repr(value)
    return text if len(text) <= 120 else f"{text[:120]}..."


def _vector(name: str, values) -> np.ndarray:
    """`values` as a non-empty 1-D float array of finite numbers, else a `ValueError` quoting it."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        array = None
    if isinstance(values, (str, bytes)) or array is None or array.ndim != 1 or array.size == 0 or not np.all(
        np.isfinite(array)
    ):
        raise ValueError(f"`{name}` must be a non-empty 1-D sequence of finite numbers. "
                         f"Received: {name}={_short(values)}")
    return array


def _hits(name: str, values) -> np.ndarray:
    """`values` as a non-empty 1-D float array of 0s and 1s (booleans accepted): which test examples were right."""
    array = _vector(name, values)
    if not np.all((array == 0) | (array == 1)):
        raise ValueError(f"`{name}` must hold one 0/1 (or False/True) per test example: whether the prediction "
                         f"was correct. Received: {name}={_short(values)}")
    return array


def _z(confidence: float) -> float:
    """The standard normal quantile z with P(-z < Z < z) = confidence (1.96 for 0.95)."""
    return statistics.NormalDist().inv_cdf(0.5 + confidence / 2)


def _check_confidence(confidence) -> float:
    return check_number("confidence", confidence, low=0, high=1, low_inclusive=False, high_inclusive=False)


def wilson_interval(correct_or_k, n=None, confidence: float = 0.95) -> Interval:
    """Wilson score interval for an accuracy: `k` correct out of `n` test examples.

    With p = k / n and z the normal quantile of `confidence` (1.96 for 0.95):

        center = (p + z² / 2n) / (1 + z² / n)
        half   = z / (1 + z² / n) · sqrt(p (1 - p) / n + z² / 4n²)
        interval = [center - half, center + half]

    Unlike p ± z·sqrt(p(1-p)/n), it stays inside [0, 1] and is not empty at p = 0 or p = 1 (Wilson, 1927;
    Brown, Cai and DasGupta, "Interval Estimation for a Binomial Proportion", 2001). It covers the noise of a
    finite test set only, not that of training (for that, see `seed_spread`).

    Args:
        correct_or_k: int, or 1-D array of 0/1 or bool. The number of correct predictions (then `n` is
            required), or one hit per test example (then `n` must be `None`).
        n: int or None. The number of test examples when `correct_or_k` is a count. Defaults to `None`.
        confidence: float. In (0, 1). Defaults to `0.95`.

    Returns:
        `Interval(low, high)`.

    Example:
    >>> low, high = wilson_interval(90, 100)
    >>> round(low, 4), round(high, 4)
    (0.8256, 0.9448)
    >>> wilson_interval([True, True, False, True]).format()
    '[0.301, 0.954]'
    """
    confidence = _check_confidence(confidence)
    if n is None:
        if _is_int(correct_or_k):
            raise ValueError(f"A count of correct predictions needs `n`, the number of test examples. "
                             f"Received: correct_or_k={correct_or_k!r}, n=None")
        hits = _hits("correct_or_k", correct_or_k)
        k, n = float(hits.sum()), hits.size
    else:
        n = check_int("n", n, minimum=1)
        k = check_int("correct_or_k", correct_or_k, minimum=0)
        if k > n:
            raise ValueError(f"`correct_or_k` cannot exceed `n`. Received: correct_or_k={k}, n={n}")
    p, z2 = k / n, _z(confidence) ** 2
    center = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = np.sqrt(z2) / (1 + z2 / n) * np.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    low = 0.0 if k == 0 else max(0.0, center - half)  # exact at the ends, where the formula gives 0 and 1
    high = 1.0 if k == n else min(1.0, center + half)
    return Interval(float(low), float(high))


def _percentiles(samples: np.ndarray, confidence: float) -> Interval:
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(samples, [tail, 100 - tail])
    return Interval(float(low), float(high))


def _check_resampling(resamples, seed) -> tuple[int, int]:
    return check_int("resamples", resamples, minimum=100), check_int("seed", seed, minimum=0)


def bootstrap_interval(values, statistic=np.mean, confidence: float = 0.95, resamples: int = 2000,
                       seed: int = 0) -> Interval:
    """Percentile bootstrap interval of `statistic(values)`: resample the examples, recompute, take quantiles.

    Draw `resamples` samples of size n from `values` with replacement, compute the statistic on each, and
    return its (1 - c)/2 and (1 + c)/2 percentiles for confidence c (Efron and Tibshirani, "An Introduction to
    the Bootstrap", 1993, ch. 13). On 0/1 hits with `np.mean` it is an accuracy's interval, close to Wilson's
    when n is large; it works as well for any per-example value (a loss, a BLEU score, a recall@k hit).

    Args:
        values: 1-D array of numbers. One value per test example.
        statistic: callable. Maps a 1-D array to a number. Defaults to `np.mean`.
        confidence: float. In (0, 1). Defaults to `0.95`.
        resamples: int. Bootstrap samples, at least 100. Defaults to `2000`.
        seed: int. Seed of the resampling: the same seed gives the same interval. Defaults to `0`.

    Returns:
        `Interval(low, high)`.

    Example:
    >>> hits = [1] * 90 + [0] * 10
    >>> low, high = bootstrap_interval(hits)
    >>> bool(0.82 < low < 0.86 and 0.93 < high < 0.97)
    True
    >>> bootstrap_interval(hits) == bootstrap_interval(hits, seed=0)
    True
    """
    values = _vector("values", values)
    confidence = _check_confidence(confidence)
    resamples, seed = _check_resampling(resamples, seed)
    if not callable(statistic):
        raise ValueError(f"`statistic` must be a function of a 1-D array, such as np.mean. "
                         f"Received: statistic={statistic!r}")
    rng = np.random.default_rng(seed)
    samples = np.array([float(statistic(values[rng.integers(0, values.size, values.size)]))
                        for _ in range(resamples)])
    return _percentiles(samples, confidence)


def paired_difference(correct_a, correct_b, confidence: float = 0.95, resamples: int = 2000,
                      seed: int = 0) -> dict:
    """Accuracy of model A minus that of model B on the same test examples, with a paired bootstrap interval.

    With hits a_i, b_i in {0, 1} for example i = 1..n, the difference is d = mean(a) - mean(b). The paired
    bootstrap resamples the examples (the same indices for both models), recomputes d on each sample, and takes
    the percentile interval. Pairing matters: the examples both models find hard move together, so the
    interval of d is much narrower than two separate intervals would suggest.

    If the interval excludes 0, the gap exceeds the test-set noise: A is better (d > 0) or worse (d < 0).
    Otherwise the two are tied within noise. The test set is the only source of noise here: a second training
    seed can move both accuracies more (see `seed_spread`).

    Args:
        correct_a: 1-D array of 0/1 or bool. Whether model A was right, per test example.
        correct_b: 1-D array of 0/1 or bool. The same for model B, on the same examples in the same order.
        confidence: float. In (0, 1). Defaults to `0.95`.
        resamples: int. Bootstrap samples, at least 100. Defaults to `2000`.
        seed: int. Seed of the resampling. Defaults to `0`.

    Returns:
        `{"difference", "low", "high", "excludes_zero", "accuracy_a", "accuracy_b", "n", "confidence"}`, plain
        Python numbers (JSON-serialisable).

    Example:
    >>> a = [1] * 95 + [0] * 5  # A: 95 % right
    >>> b = [1] * 80 + [0] * 20  # B: 80 % right, and wrong wherever A is
    >>> result = paired_difference(a, b)
    >>> round(result["difference"], 2), result["excludes_zero"]
    (0.15, True)
    >>> paired_difference(a, a)["excludes_zero"]  # a model against itself: tied
    False
    """
    a, b = _hits("correct_a", correct_a), _hits("correct_b", correct_b)
    if a.size != b.size:
        raise ValueError(f"`correct_a` and `correct_b` must have one entry per test example, the same examples. "
                         f"Received: {a.size} and {b.size} entries")
    confidence = _check_confidence(confidence)
    resamples, seed = _check_resampling(resamples, seed)
    rng = np.random.default_rng(seed)
    difference = a - b  # (n,) in {-1, 0, 1}
    samples = np.array([difference[rng.integers(0, a.size, a.size)].mean() for _ in range(resamples)])
    low, high = _percentiles(samples, confidence)
    return {"difference": float(difference.mean()), "low": low, "high": high,
            "excludes_zero": bool(low > 0 or high < 0), "accuracy_a": float(a.mean()),
            "accuracy_b": float(b.mean()), "n": int(a.size), "confidence": confidence}


def seed_spread(values) -> Spread:
    """Mean, min, max, sample standard deviation and count of one result over runs (one value per seed).

    mean = Σ v_i / n;  std = sqrt(Σ (v_i - mean)² / (n - 1)), and 0 for a single run.

    The min–max range is what the course reports (`Spread.format()`): with 3 seeds it is easy to read and makes
    no assumption about the shape of the noise.

    Args:
        values: 1-D sequence of numbers. One result per run.

    Returns:
        `Spread(mean, min, max, std, n)`; `spread._asdict()` for JSON.

    Example:
    >>> spread = seed_spread([0.966, 0.978, 0.972])
    >>> spread.n, round(spread.mean, 3), spread.min, spread.max, round(spread.std, 3)
    (3, 0.972, 0.966, 0.978, 0.006)
    """
    values = _vector("values", values)
    std = float(values.std(ddof=1)) if values.size > 1 else 0.0
    return Spread(float(values.mean()), float(values.min()), float(values.max()), std, int(values.size))


def rank_with_spread(results: Mapping, min_runs: int = 3, higher_is_better: bool = True) -> list[RankedRow]:
    """Rows sorted by mean, best first, each labelled against the best row by the overlap of min–max ranges.

    The rule (the course's conventions, §6):

    1. Each entry's values are its runs (one per seed). Rows are sorted by mean, best first (highest when
       `higher_is_better`, lowest otherwise); equal means keep the input order. The first row is `"best mean"`.
    2. Another row is `"clearly worse"` when its range does not reach the best row's range: with higher is
       better, max(row) < min(best), i.e. every run of the row is below every run of the best row (with lower
       is better, min(row) > max(best)). Touching ranges count as overlapping.
    3. Otherwise (the ranges overlap) it is `"tied within noise"`: the gap does not exceed the spread.
    4. If the row or the best row has fewer than `min_runs` runs, the row is `"unranked"`: one or two seeds
       cannot tell a gap from noise.

    For 3 runs against 3, "clearly worse" is a one-sided rank test at 5 %: if the six runs were exchangeable,
    all three of one model would fall below all three of the other with probability 1 / C(6, 3) = 1/20.

    Args:
        results: dict. `{name: [value per run]}`, e.g. the test accuracy of each strategy for seeds 0, 1, 2.
        min_runs: int. Runs both rows need before a verdict. Defaults to `3`.
        higher_is_better: bool. `False` for a loss, an error rate, a distance. Defaults to `True`.

    Returns:
        list of `RankedRow(name, spread, verdict)`, best mean first.

    Example:
    >>> rows = rank_with_spread({"sum": [0.90, 0.92, 0.91], "concat": [0.97, 0.96, 0.98],
    ...                          "gated": [0.95, 0.97, 0.96]})
    >>> for row in rows:
    ...     print(f"{row.name:<7} {row.spread.format()}  {row.verdict}")
    concat  0.970 (0.960–0.980)  best mean
    gated   0.960 (0.950–0.970)  tied within noise
    sum     0.910 (0.900–0.920)  clearly worse
    """
    if not isinstance(results, Mapping) or not results:
        raise ValueError(f"`results` must be a non-empty dict of {{name: [value per run]}}. "
                         f"Received: results={_short(results)}")
    min_runs = check_int("min_runs", min_runs, minimum=1)
    higher_is_better = check_bool("higher_is_better", higher_is_better)
    spreads = {}
    for name, values in results.items():
        try:
            spreads[name] = seed_spread(values)
        except ValueError:
            raise ValueError(f"Each entry of `results` must be a non-empty list of finite numbers (one per run). "
                             f"Received: results[{name!r}]={_short(values)}") from None
    sign = -1.0 if higher_is_better else 1.0
    order = sorted(spreads, key=lambda name: sign * spreads[name].mean)  # stable: equal means keep input order
    best = spreads[order[0]]
    rows = [RankedRow(order[0], best, BEST)]
    for name in order[1:]:
        spread = spreads[name]
        if min(spread.n, best.n) < min_runs:
            verdict = UNRANKED
        elif (spread.max < best.min) if higher_is_better else (spread.min > best.max):
            verdict = WORSE
        else:
            verdict = TIED
        rows.append(RankedRow(name, spread, verdict))
    return rows
