"""The main job: train every unimodal baseline and the concatenation model, then compare them.

`mmkeras quickstart` generates the embedded dataset, trains one classifier per modality and one on all four
(feature-level fusion by concatenation) with the same recipe, prints a table (modality, test accuracy,
parameters, seconds), saves a bar chart, and with `--json PATH` writes the numbers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import time

import keras
from tqdm.auto import tqdm

from mmkeras._validation import check_int, check_number
from mmkeras.config import is_smoke
from mmkeras.data.synthetic import MODALITIES, NUM_CLASSES, load_splits
from mmkeras.models import build_fusion_classifier
from mmkeras.training import train_and_evaluate

CONCAT = "concat"


@dataclasses.dataclass(frozen=True)
class QuickstartConfig:
    """Sizes and training settings of the quickstart; `QuickstartConfig.smoke()` is the seconds-long variant."""

    train_size: int = 3000
    val_size: int = 500
    test_size: int = 1000
    epochs: int = 8
    batch_size: int = 64
    learning_rate: float = 5e-3
    seed: int = 0

    def __post_init__(self):
        for field in ("train_size", "val_size", "test_size", "epochs", "batch_size", "seed"):
            check_int(field, getattr(self, field), minimum=0 if field == "seed" else 1)
        check_number("learning_rate", self.learning_rate, low=0, low_inclusive=False)

    @classmethod
    def smoke(cls, seed: int = 0) -> QuickstartConfig:
        return cls(train_size=128, val_size=32, test_size=64, epochs=1, batch_size=64, seed=seed)


def run_quickstart(config: QuickstartConfig | None = None, progress: bool = True) -> dict:
    """Trains the four unimodal baselines and the concatenation model; returns their results.

    Every model is built from the same seed and trained with the same recipe (`fit_classifier`), so the
    only difference between the rows is which modalities go in.

    Args:
        config: QuickstartConfig or None. `None` uses the defaults, or `QuickstartConfig.smoke()` when
            `MMKERAS_SMOKE=1`.
        progress: bool. Show a progress bar over the five models. Defaults to `True`.

    Returns:
        `{"accuracy": {name: float}, "params": {name: int}, "train_seconds": {name: float},
        "seconds": float, "config": dict}` with names `"text"`, `"image"`, `"audio"`, `"video"`, `"concat"`.
    """
    if config is None:
        config = QuickstartConfig.smoke() if is_smoke() else QuickstartConfig()
    start = time.perf_counter()
    splits = load_splits(config.train_size, config.val_size, config.test_size, seed=config.seed)
    runs = [(m, [m]) for m in MODALITIES] + [(CONCAT, list(MODALITIES))]
    results = {"accuracy": {}, "params": {}, "train_seconds": {}}
    bar = tqdm(runs, desc="quickstart", unit="model", disable=not progress)
    for name, modalities in bar:
        bar.set_postfix_str(f"training {name}")
        # No per-epoch validation here: the quickstart reports test accuracy only, and skipping it saves ~10 %.
        run = train_and_evaluate(lambda m=modalities, n=name: build_fusion_classifier(m, name=n), splits["train"],
                                 splits["test"], seed=config.seed, epochs=config.epochs,
                                 batch_size=config.batch_size, learning_rate=config.learning_rate)
        results["accuracy"][name] = round(run.report["accuracy"], 4)
        results["params"][name] = int(run.model.count_params())
        results["train_seconds"][name] = round(run.seconds, 2)
        keras.backend.clear_session()
    results["seconds"] = round(time.perf_counter() - start, 2)
    results["config"] = dataclasses.asdict(config)
    return results


def format_table(results: dict) -> str:
    """The results as a fixed-width text table."""
    lines = [f"{'model':<8} {'modalities':<24} {'test acc':>8} {'params':>8} {'seconds':>8}"]
    for name, accuracy in results["accuracy"].items():
        modalities = "+".join(MODALITIES) if name == CONCAT else name
        lines.append(f"{name:<8} {modalities:<24} {accuracy:>8.3f} {results['params'][name]:>8,d} "
                     f"{results['train_seconds'][name]:>8.1f}")
    lines.append(f"total wall-clock time: {results['seconds']:.1f} s (data generation, training and evaluation)")
    return "\n".join(lines)


def plot_quickstart(results: dict):
    """The quickstart's bar chart: each modality alone vs. the concatenation of all four."""
    from mmkeras.viz import plot_accuracy_bars

    return plot_accuracy_bars(results["accuracy"], chance=1 / NUM_CLASSES["label"],
                              title="Test accuracy: each modality alone vs. concatenation of all four")


def save_outputs(results: dict, out_dir: str | os.PathLike | None = "outputs", json_path=None,
                 figure_name: str = "quickstart_accuracy.png", make_figure=plot_quickstart) -> dict:
    """Writes the chart PNG into `out_dir` (unless `None`) and the JSON summary to `json_path`.

    The JSON holds `{"accuracy": {...}, "seconds": ...}` plus parameters, per-model seconds and the config.
    Returns the paths written, `{"plot": path, "json": path}`. The JSON is written to a temporary file and
    renamed, so a failure never leaves half a file.
    """
    if json_path is not None:
        path = pathlib.Path(json_path)
        if path.parent and not path.parent.exists():
            raise ValueError(f"The folder of --json does not exist. Received: json_path={str(path)!r}")
    written = {}
    if out_dir is not None:
        import matplotlib.pyplot as plt

        out = pathlib.Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        fig = make_figure(results)
        written["plot"] = out / figure_name
        fig.savefig(written["plot"], dpi=120)
        plt.close(fig)  # a library call leaves no open figure behind (and never switches the backend)
    if json_path is not None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(results, indent=2) + "\n")
        os.replace(tmp, path)  # never leave a half-written file
        written["json"] = path
    return written
