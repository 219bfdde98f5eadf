"""`mmkeras compare-fusions`: every registered fusion strategy, trained and tested on the same data.

For each strategy in `mmkeras.fusion.FUSIONS`: the same default encoders (sequence outputs for the strategies
that read sequences), the same seeds, the same recipe as the quickstart; then the test accuracy, the number of
parameters, the training time, and the accuracy with each modality removed in turn (`mmkeras.missing`).

Each seed is one complete run: a new draw of the moving toys (unless `splits` is given) and new initial weights
and shuffling. The results report every seed's numbers, their mean and min–max range (`mmkeras.evidence`), and
label each strategy against the one with the best mean test accuracy: "tied within noise" when their ranges
over the seeds overlap, "clearly worse" when they do not, "unranked" with fewer than `MIN_SEEDS` seeds
(`mmkeras.evidence.rank_with_spread`; the rule is in docs/evidence.md).
"""

from __future__ import annotations

import dataclasses
import time

from mmkeras._validation import _is_int, check_fraction
from mmkeras.apps.quickstart import QuickstartConfig
from mmkeras.evidence import UNRANKED, Spread, rank_with_spread, seed_spread

SEQUENCE_KINDS = ("text", "audio", "video", "timeseries")
"""Modalities whose encoders can return token sequences (the image CNN returns one vector, a single token)."""

MIN_SEEDS = 3
"""Seeds a strategy and the best one need before a verdict ("tied within noise" or "clearly worse")."""


def build_for_strategy(name: str, schema, modality_dropout: float = 0.0):
    """A `FusionClassifier` with fusion strategy `name` and its matching encoders, for any dataset.

    Args:
        name: str. A strategy of `mmkeras.fusion.FUSIONS`.
        schema: DataSchema or MultimodalData. The dataset's schema (or its training split, whose captions
            then teach a text encoder its vocabulary). The head is named after its first label.
        modality_dropout: float. See `FusionClassifier`. Defaults to `0.0`.
    """
    from mmkeras.data.schema import MultimodalData
    from mmkeras.encoders import build_encoders
    from mmkeras.fusion import FUSIONS
    from mmkeras.models import FusionClassifier

    data = schema if isinstance(schema, MultimodalData) else None
    schema = data.schema if data is not None else schema

    if name not in FUSIONS:
        raise ValueError(f"Unknown fusion strategy. Expected one of {sorted(FUSIONS)}. Received: {name!r}")
    entry = FUSIONS[name]
    overrides = {}
    if entry.reads == "sequences":
        overrides = {m.name: {"sequence_output": True} for m in schema.modalities if m.kind in SEQUENCE_KINDS}
    if not schema.labels:
        raise ValueError(f"A classifier needs a labelled dataset. Received a schema without labels: {schema}")
    encoders = build_encoders(data if data is not None else schema, **overrides)
    return FusionClassifier(encoders, heads={schema.labels[0].name: schema.labels[0].num_classes},
                            fusion=entry.make(),
                            modality_dropout=modality_dropout, name=name)


def check_seeds(seeds) -> list[int]:
    """`seeds` as a list of distinct ints `>= 0`, in the given order, else a `ValueError` quoting them.

    Example:
    >>> check_seeds((0, 1, 2))
    [0, 1, 2]
    >>> check_seeds([0, 0])
    Traceback (most recent call last):
    ...
    ValueError: `seeds` must be a non-empty list of distinct ints >= 0. Received: seeds=[0, 0]
    """
    try:
        items = list(seeds)
    except TypeError:
        items = []
    if isinstance(seeds, str) or not items or not all(_is_int(s) and s >= 0 for s in items) or len(
        set(items)
    ) != len(items):
        raise ValueError(f"`seeds` must be a non-empty list of distinct ints >= 0. Received: seeds={seeds!r}")
    return [int(s) for s in items]


def compare_fusions(names=None, config: QuickstartConfig | None = None, modality_dropout: float = 0.0,
                    progress: bool = True, splits: dict | None = None, keep_models: bool = False,
                    seeds=None) -> dict:
    """Trains and tests every strategy in `names` (default: all of `FUSIONS`) with the quickstart's settings.

    Args:
        names: list of str or None. Strategies from `FUSIONS`. Defaults to all of them, in registry order.
        config: QuickstartConfig or None. Sizes, epochs, seed. Defaults to the quickstart's (smoke-aware).
        modality_dropout: float. Train with `ModalityDropout(rate)`, in [0, 1). Defaults to `0.0`.
        progress: bool. Show a progress bar. Defaults to `True`.
        splits: dict or None. `{"train", "test"}` data to use instead of generating the moving toys from `config`:
            any dataset (AV-MNIST, yours); the models follow `splits["train"]`'s schema, first label and captions.
            The same splits serve every seed, so the seeds then vary only the weights and the shuffling.
        keep_models: bool. Also return the trained models under `"models"` (not JSON-serialisable): those of
            the first seed.
        seeds: list of int or None. One complete run per seed (data, weights, shuffling). Defaults to
            `[config.seed]`, a single run. Rankings need at least `MIN_SEEDS` (3) seeds.

    Returns:
        `{"strategies": {name: row}, "seeds": [int], "seconds": float, "config": dict}`, plus `"models":
        {name: model}` with `keep_models=True`. Each row (see `summarise_runs`) holds the mean over the seeds of
        `"accuracy"`, `"seconds"` and `"missing": {modality: accuracy}`, the `"params"`, the `"spread"` (mean,
        min, max, std, n) of the accuracies, the `"per_seed"` values and the `"verdict"` against the best mean.
        With one seed, `"accuracy"` and `"missing"` are that run's numbers, as before seeds existed.
    """
    import keras
    from tqdm.auto import tqdm

    from mmkeras.config import is_smoke
    from mmkeras.data.synthetic import SCHEMA, load_splits
    from mmkeras.fusion import FUSIONS
    from mmkeras.missing import evaluate_missing
    from mmkeras.training import train_and_evaluate

    config = config or (QuickstartConfig.smoke() if is_smoke() else QuickstartConfig())
    modality_dropout = check_fraction("modality_dropout", modality_dropout)
    seeds = check_seeds([config.seed] if seeds is None else seeds)
    config = dataclasses.replace(config, seed=seeds[0])  # what the JSON's config says is what ran first
    names = list(FUSIONS) if names is None else list(names)
    unknown = [n for n in names if n not in FUSIONS]
    if unknown or not names:
        raise ValueError(f"`names` must be strategies from {sorted(FUSIONS)}. Received: {names!r}")
    start = time.perf_counter()
    runs, models = {name: [] for name in names}, {}
    bar = tqdm(total=len(seeds) * len(names), desc="compare-fusions", unit="model", disable=not progress)
    for seed in seeds:
        if splits is None:
            seed_splits = load_splits(config.train_size, config.val_size, config.test_size, seed=seed)
            source = SCHEMA
        else:
            seed_splits = splits
            source = splits["train"]  # your data: its schema, its label, its captions' vocabulary
        for name in names:
            bar.set_postfix_str(f"{name}, seed {seed}")
            run = train_and_evaluate(lambda n=name, s=source: build_for_strategy(n, s, modality_dropout),
                                     seed_splits["train"], seed_splits["test"], seed=seed, epochs=config.epochs,
                                     batch_size=config.batch_size, learning_rate=config.learning_rate)
            missing = evaluate_missing(run.model, seed_splits["test"])
            runs[name].append({"accuracy": round(run.report["accuracy"], 4), "params": int(run.model.count_params()),
                               "seconds": round(run.seconds, 2),
                               "missing": {m: round(a, 4) for m, a in missing.items() if m != "none"}})
            if keep_models:
                models.setdefault(name, run.model)
            else:
                keras.backend.clear_session()
            bar.update()
    bar.close()
    results = summarise_runs(runs, seeds) | {
        "seconds": round(time.perf_counter() - start, 2),
        "config": dataclasses.asdict(config) | {"modality_dropout": modality_dropout, "seeds": seeds}}
    return results | {"models": models} if keep_models else results


def _spread_dict(values) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in seed_spread(values)._asdict().items()}


def summarise_runs(runs: dict, seeds) -> dict:
    """Per strategy: the mean, spread and per-seed values of its runs, and its verdict against the best mean.

    Args:
        runs: dict. `{name: [{"accuracy", "params", "seconds", "missing": {modality: accuracy}}, ...]}`, one
            entry per seed, in the order of `seeds`.
        seeds: list of int. The seeds of the runs.

    Returns:
        `{"strategies": {name: row}, "seeds": seeds}`, names in the order of `runs`, where `row` is
        `{"accuracy", "params", "seconds", "missing", "spread": {"accuracy": spread, "missing": {modality:
        spread}}, "per_seed": {"seed", "accuracy", "params", "seconds", "missing"}, "verdict"}`; a spread is
        `{"mean", "min", "max", "std", "n"}` and the verdict one of `mmkeras.evidence`'s `BEST`, `TIED`, `WORSE`,
        `UNRANKED`, from `rank_with_spread` on the test accuracies with `min_runs=MIN_SEEDS`.
    """
    seeds = check_seeds(seeds)
    if any(len(rows) != len(seeds) for rows in runs.values()):
        counts = {name: len(rows) for name, rows in runs.items()}
        raise ValueError(f"Every strategy needs one run per seed. Received: seeds={seeds}, runs per strategy {counts}")
    ranking = rank_with_spread({name: [r["accuracy"] for r in rows] for name, rows in runs.items()},
                               min_runs=MIN_SEEDS)
    verdicts = {row.name: row.verdict for row in ranking}
    strategies = {}
    for name, rows in runs.items():
        accuracy = [r["accuracy"] for r in rows]
        missing = {m: [r["missing"][m] for r in rows] for m in rows[0]["missing"]}
        per_seed = {"seed": seeds, "accuracy": accuracy, "params": [r["params"] for r in rows],
                    "seconds": [r["seconds"] for r in rows], "missing": missing}
        strategies[name] = {
            "accuracy": round(seed_spread(accuracy).mean, 4),
            "params": rows[0]["params"],
            "seconds": round(seed_spread(per_seed["seconds"]).mean, 2),
            "missing": {m: round(seed_spread(v).mean, 4) for m, v in missing.items()},
            "spread": {"accuracy": _spread_dict(accuracy), "missing": {m: _spread_dict(v) for m, v in missing.items()}},
            "per_seed": per_seed,
            "verdict": verdicts[name],
        }
    return {"strategies": strategies, "seeds": seeds}


def _cell(row: dict, key: str, modality: str | None = None) -> str:
    """`"mean (min–max)"` of a row's accuracy (or accuracy without `modality`), or the value for one seed."""
    spread = row.get("spread", {}).get(key)
    if modality is not None:
        spread = (spread or {}).get(modality)
    if spread is None:  # results written before seeds existed: one value
        value = row[key] if modality is None else row[key][modality]
        return f"{value:.3f}"
    return Spread(**spread).format()


def format_comparison(results: dict) -> str:
    """The comparison as two fixed-width tables, then how to read them.

    First: test accuracy, mean (min–max) over the seeds, the verdict against the best mean, parameters and seconds
    per model. Second: the test accuracy with each modality removed, mean (min–max). With one seed, each cell is
    that seed's value.
    """
    strategies = results["strategies"]
    seeds = results.get("seeds", [results.get("config", {}).get("seed", 0)])
    modalities = list(next(iter(strategies.values()))["missing"]) if strategies else []
    cells = {name: {"acc": _cell(row, "accuracy"), **{m: _cell(row, "missing", m) for m in modalities}}
             for name, row in strategies.items()}
    width = max([8] + [len(c) for row in cells.values() for c in row.values()])
    lines = [f"{'strategy':<16} {'test acc':>{width}}  {'vs best':<17} {'params':>9} {'seconds':>8}"]
    for name, row in strategies.items():
        lines.append(f"{name:<16} {cells[name]['acc']:>{width}}  {row.get('verdict', UNRANKED):<17} "
                     f"{row['params']:>9,d} {row['seconds']:>8.1f}")
    lines += ["", f"{'strategy':<16} " + " ".join(f"{'-' + m:>{width}}" for m in modalities)]
    for name in strategies:
        lines.append(f"{name:<16} " + " ".join(f"{cells[name][m]:>{width}}" for m in modalities))
    seed_text = f"seed {seeds[0]}" if len(seeds) == 1 else f"mean (min–max) over seeds {', '.join(map(str, seeds))}"
    lines += ["", f"test accuracy: {seed_text}; '-m': with modality m removed",
              "vs best: 'tied within noise' if its range over the seeds overlaps the range of the best mean,",
              f"  'clearly worse' if not, 'unranked' with fewer than {MIN_SEEDS} seeds (e.g. --seeds 0,1,2): see "
              "docs/evidence.md",
              f"seconds: training, per model and seed; total wall-clock time: {results['seconds']:.1f} s"]
    return "\n".join(lines)


def plot_comparison(results: dict):
    """Grouped bars: test accuracy with every modality, and with each one removed, per strategy.

    Bars are means over the seeds; with more than one seed, a black line on each bar spans its min–max range.
    """
    import matplotlib.pyplot as plt
    import numpy as np

    strategies = results["strategies"]
    names = list(strategies)
    modalities = list(next(iter(strategies.values()))["missing"])
    series = {"all": [strategies[n]["accuracy"] for n in names]}
    series |= {f"no {m}": [strategies[n]["missing"][m] for n in names] for m in modalities}
    spreads = {"all": [strategies[n].get("spread", {}).get("accuracy") for n in names]}
    spreads |= {f"no {m}": [strategies[n].get("spread", {}).get("missing", {}).get(m) for n in names]
                for m in modalities}
    fig, ax = plt.subplots(figsize=(1.1 * len(names) + 3, 3.6))
    width = 0.8 / len(series)
    for index, (label, values) in enumerate(series.items()):
        x = np.arange(len(names)) + (index - (len(series) - 1) / 2) * width
        ax.bar(x, values, width, label=label)
        ranges = spreads[label]
        if all(s is not None and s["n"] > 1 for s in ranges):
            low = [v - s["min"] for v, s in zip(values, ranges)]
            high = [s["max"] - v for v, s in zip(values, ranges)]
            ax.errorbar(x, values, yerr=[low, high], fmt="none", ecolor="black", elinewidth=0.8, capsize=1.5)
    seeds = results.get("seeds", [])
    over = f"\nbars: mean; lines: min–max over {len(seeds)} seeds" if len(seeds) > 1 else ""
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set(ylim=(0, 1.05), ylabel="test accuracy")
    ax.set_title(f"fusion strategies: all modalities, and one removed{over}", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars, never on them
    fig.tight_layout()
    return fig
