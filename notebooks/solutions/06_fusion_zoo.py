"""Solutions to the exercises of notebook 06 (the fusion zoo).

Run: `python notebooks/solutions/06_fusion_zoo.py` (add `MMKERAS_SMOKE=1` for a quick run; the full run trains
three models with the notebook's recipe: a few minutes on 2 CPU cores).
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf  # only for its logger

import mmkeras
from mmkeras.apps.compare import SEQUENCE_KINDS
from mmkeras.apps.quickstart import QuickstartConfig
from mmkeras.data import SCHEMA
from mmkeras.encoders import build_encoders
from mmkeras.fusion import CrossModalAttention, LowRankTensorFusion, TensorFusion
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
    widths = [int(f.shape[-1]) for f in features]
    for k, params in tensor_params.items():
        if params is not None:  # 4 projections (d_m -> k), then a Dense layer on (k + 1)^4 entries
            assert params == sum(d * k + k for d in widths) + (k + 1) ** 4 * 64 + 64
    assert tensor_params[12] is not None and tensor_params[16] is None  # 13^4 = 28561 fits; 17^4 = 83521 > 65536
    return tensor_params, lmf_params


@keras.saving.register_keras_serializable(package="mmkeras_solutions")
class MaxFusion(ProjectedFusion):
    """Element-wise maximum fusion: `H = max_m ReLU(W_m z_m + b_m)`, unit by unit."""

    def combine(self, projected, training=None):
        return functools.reduce(keras.ops.maximum, projected)  # (batch, width)


def exercise_3(tmp_dir=None) -> float:
    """A new fusion following the contract: built, saved and reloaded, trained like the others."""
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

    def build():
        return FusionClassifier(build_encoders(SPLITS["train"]), heads={"label": 8}, fusion=MaxFusion(width=64))

    run = train_and_evaluate(build, SPLITS["train"], SPLITS["test"], seed=CONFIG.seed, **RECIPE)
    print(f"max fusion: test accuracy {run.report['accuracy']:.3f}")
    assert 0.0 <= run.report["accuracy"] <= 1.0
    return run.report["accuracy"]


if __name__ == "__main__":
    exercise_1()
    exercise_2()
    exercise_3()
