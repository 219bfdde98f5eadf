"""Solutions to the exercises of notebook 06 (the fusion zoo).

Run: `python notebooks/solutions/06_fusion_zoo.py` (add `MMKERAS_SMOKE=1` for a quick run; the full run trains
three models with the notebook's recipe: a few minutes on 2 CPU cores).
"""

from __future__ import annotations

import functools
import pathlib

import keras
import numpy as np
import tensorflow as tf  # only for its logger

import mmkeras
from mmkeras.apps.compare import SEQUENCE_KINDS
from mmkeras.apps.quickstart import QuickstartConfig
from mmkeras.data import SCHEMA
from mmkeras.encoders import build_encoders
from mmkeras.fusion import FUSIONS, CrossModalAttention, LowRankTensorFusion, TensorFusion
from mmkeras.fusion._projections import ProjectedFusion
from mmkeras.missing import evaluate_missing
from mmkeras.models import FusionClassifier
from mmkeras.training import train_and_evaluate

tf.get_logger().setLevel("ERROR")
SMOKE = mmkeras.config.is_smoke()
CONFIG = QuickstartConfig.smoke() if SMOKE else QuickstartConfig()  # the notebook's recipe
SPLITS = mmkeras.load_splits(CONFIG.train_size, CONFIG.val_size, CONFIG.test_size, seed=CONFIG.seed)
RECIPE = dict(epochs=CONFIG.epochs, batch_size=CONFIG.batch_size, learning_rate=CONFIG.learning_rate)


def sequence_encoders():
    """The encoders the attention strategies read: token sequences for text, audio and video."""
    return build_encoders(SCHEMA, **{m.name: {"sequence_output": True} for m in SCHEMA.modalities
                                     if m.kind in SEQUENCE_KINDS})


def exercise_1() -> dict:
    """Cross-modal attention with the video as the query: which modality is now the single point of failure?"""
    video = list(SCHEMA.modality_names).index("video")

    def build():
        return FusionClassifier(sequence_encoders(), heads={"label": 8},
                                fusion=CrossModalAttention(query_index=video, width=64, num_heads=2))

    run = train_and_evaluate(build, SPLITS["train"], SPLITS["test"], seed=CONFIG.seed, **RECIPE)
    missing = evaluate_missing(run.model, SPLITS["test"])
    print("video queries:", {m: round(a, 3) for m, a in missing.items()})
    assert set(missing) == {"none", *SCHEMA.modality_names} and all(0 <= a <= 1 for a in missing.values())
    worst = min((m for m in missing if m != "none"), key=missing.get)
    print(f"the single point of failure is now: {worst} (accuracy {missing[worst]:.3f} without it)")
    if not SMOKE:  # the answer, on the full run's numbers: yes, the video; and the caption is no longer fatal
        assert worst == "video" and missing["text"] > 0.5, missing
        print(f"without the text it keeps {missing['text']:.3f} (the caption's queries gave 0.128 in the notebook)")
    return missing


def exercise_2() -> tuple[dict, dict]:
    """Parameters of TensorFusion for several projection widths, and of LowRankTensorFusion for several ranks."""
    encoders = build_encoders(SPLITS["train"])
    features = [keras.ops.zeros((1,) + tuple(encoders[m].output_shape[1:])) for m in SCHEMA.modality_names]
    tensor_params = {}
    for k in (2, 4, 8, 12, 16):
        layer = TensorFusion(output_dim=64, projection_dim=k)
        try:
            layer(features)
            tensor_params[k] = layer.count_params()
        except ValueError as error:  # (k + 1)^4 > max_size
            tensor_params[k] = None
            print(f"projection_dim={k}: refused ({str(error)[:60]}...)")
    lmf_params = {}
    for rank in (1, 2, 4, 8, 16):
        layer = LowRankTensorFusion(output_dim=64, rank=rank)
        layer(features)
        lmf_params[rank] = layer.count_params()
    print("TensorFusion params by projection_dim:", tensor_params)
    print("LowRankTensorFusion params by rank:", lmf_params)
    plot_parameters(tensor_params, lmf_params)
    widths = [int(f.shape[-1]) for f in features]
    for k, params in tensor_params.items():
        if params is not None:  # 4 projections (d_m -> k), then a Dense layer on (k + 1)^4 entries
            assert params == sum(d * k + k for d in widths) + (k + 1) ** 4 * 64 + 64
    assert tensor_params[12] is not None and tensor_params[16] is None  # 13^4 = 28561 fits; 17^4 = 83521 > 65536
    return tensor_params, lmf_params


def plot_parameters(tensor_params: dict, lmf_params: dict, path=None):
    """The two parameter counts against k (TFN's projection width) and R (LMF's rank), on a log scale."""
    import tempfile

    import matplotlib

    matplotlib.use("Agg")  # a script: draw into a file
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    built = {k: v for k, v in tensor_params.items() if v is not None}
    ax.plot(list(built), list(built.values()), "o-", label="TensorFusion, projection_dim = k")
    for k in (k for k, v in tensor_params.items() if v is None):
        ax.axvline(k, color="red", ls=":", label=f"k = {k}: refused, (k + 1)^4 > max_size")
    ax.plot(list(lmf_params), list(lmf_params.values()), "s-", label="LowRankTensorFusion, rank = R")
    ax.set_yscale("log")
    ax.set_xlabel("k or R")
    ax.set_ylabel("fusion parameters")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = path or pathlib.Path(tempfile.gettempdir()) / "06_exercise_2_parameters.png"
    fig.savefig(path)
    plt.close(fig)
    print(f"plot saved to {path}")
    return path


@keras.saving.register_keras_serializable(package="mmkeras_solutions")
class MaxFusion(ProjectedFusion):
    """Element-wise maximum fusion: `H = max_m ReLU(W_m z_m + b_m)`, unit by unit."""

    def combine(self, projected, training=None):
        return functools.reduce(keras.ops.maximum, projected)  # (batch, width)


def exercise_3(tmp_dir=None) -> dict:
    """A new fusion following the contract: built, saved and reloaded, trained like the others, added to the table.

    The table's columns: accuracy with every modality, and with each one removed (`evaluate_missing`), beside
    concatenation trained with the same recipe and seed.
    """
    import tempfile

    from mmkeras import testing

    layer = MaxFusion(width=8)
    z = [np.random.default_rng(0).normal(size=(3, 5)).astype("float32"), np.ones((3, 2), "float32")]
    out = keras.ops.convert_to_numpy(layer(z))
    projected = [keras.ops.convert_to_numpy(p(x)) for p, x in zip(layer.projections, z)]
    assert np.allclose(out, np.maximum(*projected))
    inputs = [keras.Input((5,)), keras.Input((2,))]
    model = keras.Model(inputs, MaxFusion(width=8)(inputs))
    testing.check_save_load(model, z, tmp_dir or tempfile.mkdtemp())

    rows = {}
    for name, fusion in (("max", lambda: MaxFusion(width=64)), ("concat", lambda: FUSIONS["concat"].make())):
        run = train_and_evaluate(
            lambda f=fusion: FusionClassifier(build_encoders(SPLITS["train"]), heads={"label": 8}, fusion=f()),
            SPLITS["train"], SPLITS["test"], seed=CONFIG.seed, **RECIPE)
        rows[name] = evaluate_missing(run.model, SPLITS["test"])
    names = list(SCHEMA.modality_names)
    print(f"{'strategy':<10}{'test acc':>9}" + "".join(f"{'-' + m:>9}" for m in names) + f"{'mean removed':>14}")
    for name, row in rows.items():
        print(f"{name:<10}{row['none']:>9.3f}" + "".join(f"{row[m]:>9.3f}" for m in names)
              + f"{np.mean([row[m] for m in names]):>14.3f}")
    assert all(set(row) == {"none", *names} for row in rows.values())
    if not SMOKE:  # the conclusion, on the full run's numbers
        drop = {name: row["none"] - np.mean([row[m] for m in names]) for name, row in rows.items()}
        print(f"mean loss when a modality is removed: max {drop['max']:.3f}, concat {drop['concat']:.3f}")
        # Measured answer: a max is no free robustness; trained without modality dropout it loses more than
        # concatenation when a modality goes (mostly without the image and the video).
        assert drop["max"] > drop["concat"] > 0, drop
        print("the max fusion is less robust than concatenation to a missing modality, not more")
    return rows


if __name__ == "__main__":
    exercise_1()
    exercise_2()
    exercise_3()
