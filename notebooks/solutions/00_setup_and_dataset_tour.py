"""Solutions to the exercises of notebook 00 (setup and dataset tour).

Run: `python notebooks/solutions/00_setup_and_dataset_tour.py` (add `MMKERAS_SMOKE=1` for a quick run).
"""

from __future__ import annotations

import itertools

import numpy as np

import mmkeras
from mmkeras.data import MODALITIES, OBSERVES, SCHEMA

SMOKE = mmkeras.config.is_smoke()
SAMPLE_RATE = SCHEMA.modality("audio").sample_rate  # 8000


def exercise_1():
    """Same seed, same toys; another seed, other toys; the label is 4 * shape + 2 * color + direction."""
    n = mmkeras.config.by_mode(full=500, smoke=64)
    first, second, other = (mmkeras.make_synthetic(n, seed=s) for s in (7, 7, 8))
    same = all(np.array_equal(first.features[m], second.features[m]) for m in MODALITIES)
    differs = any(not np.array_equal(first.features[m], other.features[m]) for m in MODALITIES)
    labels = first.labels
    formula = np.array_equal(labels["label"], 4 * labels["shape"] + 2 * labels["color"] + labels["direction"])
    assert same and differs and formula, (same, differs, formula)
    return f"seed 7 twice: identical; seed 8: different; label formula holds for all {n} samples"


def chirp_slope(waveform) -> float:
    """Slope (mel bands per frame) of the loudest band over time, skipping the fade in and out."""
    mel = mmkeras.viz.mel_spectrogram(waveform, SAMPLE_RATE)  # (mel_bins, frames)
    loudest = mel.argmax(axis=0)[3:-3]  # (frames - 6,) band index of each frame
    return float(np.polyfit(np.arange(len(loudest)), loudest, deg=1)[0])


def exercise_2():
    """A hand-made audio classifier: a rising loudest mel band means "right"."""
    data = mmkeras.make_synthetic(mmkeras.config.by_mode(full=400, smoke=60), seed=1)
    predicted = np.array([chirp_slope(w) > 0 for w in data.features["audio"]], dtype=int)
    correct = predicted == data.labels["direction"]
    failed = data.meta["audio_failed"]
    working_accuracy = correct[~failed].mean()
    failed_accuracy = correct[failed].mean() if failed.any() else float("nan")
    assert working_accuracy > 0.95, working_accuracy  # a clean chirp gives its direction away
    return (f"direction from the chirp's slope: {working_accuracy:.3f} on working microphones, "
            f"{failed_accuracy:.3f} on {failed.sum()} failed ones (noise: a coin flip)")


def exercise_3():
    """Which pairs of modalities could, with perfect sensors, name all 8 classes?"""
    data = mmkeras.make_synthetic(mmkeras.config.by_mode(full=2000, smoke=200), seed=0)
    y = data.labels["label"]
    ceilings = {}
    for pair in itertools.combinations(("text", "image", "audio", "video"), 2):
        attributes = sorted(set(OBSERVES[pair[0]]) | set(OBSERVES[pair[1]]))
        key = np.zeros(len(y), dtype=int)
        for attribute in attributes:
            key = 2 * key + data.labels[attribute]  # one integer per combination of the seen attributes
        best = sum(np.bincount(y[key == g]).max() for g in np.unique(key)) / len(y)
        ceilings["+".join(pair)] = (best, len(attributes))
    enough = sorted(name for name, (best, _) in ceilings.items() if best == 1.0)
    assert enough == sorted(name for name, (_, k) in ceilings.items() if k == 3), ceilings  # all 3 attributes
    assert enough == ["image+audio", "image+video", "text+image", "text+video"], enough
    not_enough = {name: round(float(best), 3) for name, (best, _) in ceilings.items() if best < 1.0}
    return f"pairs that see all three attributes (ceiling 1.0): {enough}; the others: {not_enough}"


if __name__ == "__main__":
    for number, exercise in enumerate((exercise_1, exercise_2, exercise_3), start=1):
        print(f"exercise {number}: {exercise()}")
