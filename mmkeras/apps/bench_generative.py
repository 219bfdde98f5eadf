"""`mmkeras bench-generative`: the generative and contrastive chapters' models, trained and measured.

Each part runs the recipe of its notebook on the captioned scenes (`mmkeras.data.scenes`) and returns its
numbers; smoke mode (`MMKERAS_SMOKE=1`) makes each part seconds-long:

    gan         conditional GAN (notebook 09)        conditional_accuracy, frechet_distance, diversity, seconds
    retrieval   CLIP-style dual encoder (notebook 10) i2t_recall@1, t2i_recall@1, chance, seconds
    captioning  caption model (notebook 11)           token_accuracy, bleu, seconds
"""

from __future__ import annotations

import importlib
import time

PARTS = {
    "gan": "mmkeras.generative",
    "retrieval": "mmkeras.contrastive",
    "captioning": "mmkeras.captioning",
}
"""Part name -> the module whose `bench(smoke, progress)` measures it."""


def bench_generative(parts=None, smoke: bool | None = None, progress: bool = True) -> dict:
    """Runs the benchmarks of `parts` (default: all of `PARTS`, in order) and returns `{part: numbers}`.

    Args:
        parts: list of str or None. Names from `PARTS`.
        smoke: bool or None. Seconds-long runs; `None` reads `MMKERAS_SMOKE`.
        progress: bool. A progress bar over the parts. Defaults to `True`.

    Returns:
        `{"gan": {...}, "retrieval": {...}, "captioning": {...}, "seconds": float}`.

    Raises:
        ValueError: an unknown part name.
    """
    from tqdm.auto import tqdm

    parts = list(PARTS) if parts is None else list(parts)
    unknown = [p for p in parts if p not in PARTS]
    if unknown or not parts:
        raise ValueError(f"`parts` must be names from {list(PARTS)}. Received: {parts!r}")
    start = time.perf_counter()
    results = {}
    bar = tqdm(parts, desc="bench-generative", unit="part", disable=not progress)
    for part in bar:
        bar.set_postfix_str(part)
        module = importlib.import_module(PARTS[part])
        results[part] = {k: (round(v, 4) if isinstance(v, float) else v)
                         for k, v in module.bench(smoke=smoke, progress=False).items()}
    return results | {"seconds": round(time.perf_counter() - start, 2)}


def format_bench(results: dict) -> str:
    """One line per part: its numbers, as `name=value`."""
    lines = []
    for part in PARTS:
        if part in results:
            numbers = ", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in results[part].items())
            lines.append(f"{part:<11} {numbers}")
    lines.append(f"total wall-clock time: {results['seconds']:.1f} s")
    return "\n".join(lines)
