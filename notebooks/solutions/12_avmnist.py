"""Solutions to the exercises of notebook 12 (AV-MNIST end to end).

Run: `python notebooks/solutions/12_avmnist.py` (add `MMKERAS_SMOKE=1` for a quick run; the full run trains
about fifteen models on the notebook's 10,000 training pairs: 10 to 15 minutes on 2 CPU cores). It prepares
AV-MNIST like the notebook: the real files when they can be downloaded (or a mirror is set), else the offline
stand-in, and says which.
"""

from __future__ import annotations

import functools

import numpy as np
import tensorflow as tf  # only for its logger

import mmkeras
from mmkeras.apps.compare import compare_fusions
from mmkeras.apps.quickstart import QuickstartConfig
from mmkeras.data.avmnist import cache_info, load_avmnist, prepare_avmnist
from mmkeras.models import build_fusion_classifier
from mmkeras.training import train_and_evaluate

tf.get_logger().setLevel("ERROR")
SIZES = mmkeras.config.by_mode(full=(10000, 1000, 2000), smoke=(256, 64, 128))  # the notebook's sizes
EPOCHS = mmkeras.config.by_mode(full=8, smoke=1)
STAND_IN = mmkeras.config.by_mode(full=(12000, 2000), smoke=(1200, 300))
RECIPE = {"epochs": EPOCHS, "batch_size": 64, "learning_rate": 5e-3}


@functools.cache
def cache(test_speakers=None):
    """The prepared AV-MNIST (downloaded once per held-out speaker; offline, the stand-in, said once)."""
    return prepare_avmnist(fallback="fixture", fixture_images=STAND_IN, timeout=10, retries=0, progress=False,
                           test_speakers=test_speakers)


def unimodal(splits, modality: str) -> float:
    run = train_and_evaluate(lambda: build_fusion_classifier(splits["train"], modalities=[modality]),
                             splits["train"], splits["test"], **RECIPE)
    return run.report["accuracy"]


def exercise_1_clean_data():
    """Clean, each modality is strong alone: little is left for fusion to add."""
    splits = load_avmnist(cache(), *SIZES, degrade=False)
    for modality in ("image", "audio"):
        print(f"exercise 1, clean {modality} only: {unimodal(splits, modality):.3f}")


def exercise_2_noise_sweep():
    """Audio-only and concatenation accuracy against the audio's SNR (the images stay degraded)."""
    snrs = mmkeras.config.by_mode(full=[-10.0, -5.0, 0.0, 5.0, 10.0], smoke=[-5.0, 5.0])
    config = QuickstartConfig(**RECIPE)
    for snr in snrs:
        splits = load_avmnist(cache(), *SIZES, degrade=True, audio_snr_db=snr)
        fused = compare_fusions(["concat"], config=config, splits=splits, progress=False)
        print(f"exercise 2, SNR {snr:+5.1f} dB: audio only {unimodal(splits, 'audio'):.3f}, "
              f"concat {fused['strategies']['concat']['accuracy']:.3f}")


def exercise_3_which_speaker():
    """The audio-only accuracy depends on who is held out: report it per held-out speaker."""
    default = cache_info(cache())["test_speakers"]
    for speaker in (default[0], "jackson" if default[0] != "jackson" else "george"):
        splits = load_avmnist(cache(test_speakers=speaker), *SIZES, degrade=True)
        print(f"exercise 3, test speaker {speaker}: audio only {unimodal(splits, 'audio'):.3f}")


def exercise_4_missing_modality():
    """Each strategy with one input blanked, against late fusion, which drops a member (= a unimodal model)."""
    splits = load_avmnist(cache(), *SIZES, degrade=True)
    zoo = compare_fusions(mmkeras.config.by_mode(full=["concat", "product", "gated"], smoke=["concat"]),
                          config=QuickstartConfig(**RECIPE), splits=splits, progress=False)
    late = {"image": unimodal(splits, "audio"), "audio": unimodal(splits, "image")}  # without m: the other one
    for name, row in zoo["strategies"].items():
        print(f"exercise 4, {name:<8}: both {row['accuracy']:.3f}, without image {row['missing']['image']:.3f}, "
              f"without audio {row['missing']['audio']:.3f}")
    print(f"exercise 4, late fusion: without image {late['image']:.3f}, without audio {late['audio']:.3f}")
    best = max(zoo["strategies"], key=lambda n: np.mean(list(zoo["strategies"][n]["missing"].values())))
    print(f"exercise 4, the most graceful feature-level strategy here: {best}")


if __name__ == "__main__":
    mmkeras.seed_everything(0)
    exercise_1_clean_data()
    exercise_2_noise_sweep()
    exercise_3_which_speaker()
    exercise_4_missing_modality()
