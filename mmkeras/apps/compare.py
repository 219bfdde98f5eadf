"""`mmkeras compare-fusions`: every registered fusion strategy, trained and tested on the same data.

For each strategy in `mmkeras.fusion.FUSIONS`: the same default encoders (sequence outputs for the strategies
that read sequences), the same seed, the same recipe as the quickstart; then the test accuracy, the number of
parameters, the training time, and the accuracy with each modality removed in turn (`mmkeras.missing`).
"""

from __future__ import annotations

import dataclasses
import time

from mmkeras._validation import check_fraction
from mmkeras.apps.quickstart import QuickstartConfig

SEQUENCE_KINDS = ("text", "audio", "video", "timeseries")
"""Modalities whose encoders can return token sequences (the image CNN returns one vector, a single token)."""


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


def compare_fusions(names=None, config: QuickstartConfig | None = None, modality_dropout: float = 0.0,
                    progress: bool = True, splits: dict | None = None, keep_models: bool = False) -> dict:
    """Trains and tests every strategy in `names` (default: all of `FUSIONS`) with the quickstart's settings.

    Args:
        names: list of str or None. Strategies from `FUSIONS`. Defaults to all of them, in registry order.
        config: QuickstartConfig or None. Sizes, epochs, seed. Defaults to the quickstart's (smoke-aware).
        modality_dropout: float. Train with `ModalityDropout(rate)`, in [0, 1). Defaults to `0.0`.
        progress: bool. Show a progress bar. Defaults to `True`.
        splits: dict or None. `{"train", "test"}` data to use instead of generating the moving toys from `config`:
            any dataset (AV-MNIST, yours); the models follow `splits["train"]`'s schema, first label and captions.
        keep_models: bool. Also return the trained models under `"models"` (not JSON-serialisable).

    Returns:
        `{"strategies": {name: {"accuracy", "params", "seconds", "missing": {modality: accuracy}}},
        "seconds": float, "config": dict}`, plus `"models": {name: model}` with `keep_models=True`.
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
    names = list(FUSIONS) if names is None else list(names)
    unknown = [n for n in names if n not in FUSIONS]
    if unknown or not names:
        raise ValueError(f"`names` must be strategies from {sorted(FUSIONS)}. Received: {names!r}")
    start = time.perf_counter()
    if splits is None:
        splits = load_splits(config.train_size, config.val_size, config.test_size, seed=config.seed)
        source = SCHEMA
    else:
        source = splits["train"]  # your data: its schema, its label, its captions' vocabulary
    results, models = {}, {}
    bar = tqdm(names, desc="compare-fusions", unit="strategy", disable=not progress)
    for name in bar:
        bar.set_postfix_str(name)
        run = train_and_evaluate(lambda n=name: build_for_strategy(n, source, modality_dropout), splits["train"],
                                 splits["test"], seed=config.seed, epochs=config.epochs,
                                 batch_size=config.batch_size, learning_rate=config.learning_rate)
        missing = evaluate_missing(run.model, splits["test"])
        results[name] = {
            "accuracy": round(run.report["accuracy"], 4),
            "params": int(run.model.count_params()),
            "seconds": round(run.seconds, 2),
            "missing": {m: round(a, 4) for m, a in missing.items() if m != "none"},
        }
        if keep_models:
            models[name] = run.model
        else:
            keras.backend.clear_session()
    results = {"strategies": results, "seconds": round(time.perf_counter() - start, 2),
               "config": dataclasses.asdict(config) | {"modality_dropout": modality_dropout}}
    return results | {"models": models} if keep_models else results


def format_comparison(results: dict) -> str:
    """The comparison as a fixed-width table: accuracy, parameters, seconds, accuracy without each modality."""
    strategies = results["strategies"]
    modalities = list(next(iter(strategies.values()))["missing"]) if strategies else []
    header = f"{'strategy':<16} {'test acc':>8} {'params':>9} {'seconds':>8} " + " ".join(
        f"{'-' + m:>8}" for m in modalities)
    lines = [header]
    for name, row in strategies.items():
        lines.append(f"{name:<16} {row['accuracy']:>8.3f} {row['params']:>9,d} {row['seconds']:>8.1f} "
                     + " ".join(f"{row['missing'][m]:>8.3f}" for m in modalities))
    lines.append(f"total wall-clock time: {results['seconds']:.1f} s; '-m': test accuracy with modality m removed")
    return "\n".join(lines)


def plot_comparison(results: dict):
    """Grouped bars: test accuracy with every modality, and with each one removed, per strategy."""
    import matplotlib.pyplot as plt
    import numpy as np

    strategies = results["strategies"]
    names = list(strategies)
    modalities = list(next(iter(strategies.values()))["missing"])
    series = {"all": [strategies[n]["accuracy"] for n in names]}
    series |= {f"no {m}": [strategies[n]["missing"][m] for n in names] for m in modalities}
    fig, ax = plt.subplots(figsize=(1.1 * len(names) + 3, 3.6))
    width = 0.8 / len(series)
    for index, (label, values) in enumerate(series.items()):
        ax.bar(np.arange(len(names)) + (index - (len(series) - 1) / 2) * width, values, width, label=label)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set(ylim=(0, 1.05), ylabel="test accuracy", title="fusion strategies: all modalities, and one removed")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars, never on them
    fig.tight_layout()
    return fig
