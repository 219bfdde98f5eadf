r"""Parity (一致性): every export run on data and compared with the Keras model it came from.

For float formats the largest absolute difference of the logits, `max_i,k |z_ik^export - z_ik^keras|`, should
be at most `FLOAT_TOLERANCE` = 1e-4; for quantized ones the top-1 agreement
`(1/N) sum_i [argmax_k z_ik^export = argmax_k z_ik^keras]` should be at least `MIN_TOP1_AGREEMENT` = 99 %.
float16 counts as quantized here: half-precision weights move the logits by about 1e-3 to 1e-2 (measured), far
above 1e-4, while float32 SavedModel, TFLite and ONNX stay within a few 1e-5 (notebook 14 measures them).
`parity_report` returns both numbers for every format.
"""

from __future__ import annotations

import numpy as np

from mmkeras.export.graph import as_output_dict, head_names, input_specs, run_inference
from mmkeras.export.preprocessing_split import split_preprocessing
from mmkeras.export.runners import load_runner

FLOAT_FORMATS = ("saved_model", "tflite_float32", "onnx")
"""Formats that keep float32 weights: their logits must match the Keras model's within `FLOAT_TOLERANCE`."""
FLOAT_TOLERANCE = 1e-4
MIN_TOP1_AGREEMENT = 0.99


def keras_logits(model, features: dict, batch_size: int = 64) -> dict:
    """The Keras model's logits in inference mode, `{head: (n, k)}`, computed in batches."""
    import keras

    specs = input_specs(model)
    heads = head_names(model)
    n = len(next(iter(features.values())))
    parts = []
    for start in range(0, n, batch_size):
        batch = {}
        for name, (_, dtype) in specs.items():
            values = np.asarray(features[name][start:start + batch_size])
            batch[name] = keras.ops.convert_to_tensor(values.astype(str) if dtype == "string" else values.astype(dtype))
        parts.append({h: keras.ops.convert_to_numpy(v)
                      for h, v in as_output_dict(run_inference(model, batch), heads).items()})
    return {head: np.concatenate([p[head] for p in parts]) for head in parts[0]}


def compare_logits(reference: np.ndarray, other: np.ndarray) -> dict:
    """How close two `(n, k)` logits arrays are: `{"max_abs_diff", "top1_agreement", "unexplained_flips", "n"}`.

    `max_abs_diff` is `eps = max_ik |z_ik - z'_ik|` and `top1_agreement` the fraction of rows with the same
    argmax (see the module docstring). A row can change its top class only if its reference margin (top logit
    minus the runner-up) is at most `2 eps`; `unexplained_flips` counts the rows that changed with a larger
    margin, so it must be 0 whatever the model: a flip on a near-tie is quantization, any other is a bug.

    Example:
    >>> compare_logits(np.array([[1.0, 0.0], [0.0, 0.1]]), np.array([[1.0, 0.5], [0.1, 0.0]]))
    {'max_abs_diff': 0.5, 'top1_agreement': 0.5, 'unexplained_flips': 0, 'n': 2}
    """
    reference, other = np.asarray(reference, np.float64), np.asarray(other, np.float64)
    if reference.shape != other.shape:
        raise ValueError(f"Logits to compare must have the same shape. Received: {reference.shape} and {other.shape}")
    eps = float(np.abs(reference - other).max())
    flipped = reference.argmax(-1) != other.argmax(-1)
    top2 = np.sort(reference, axis=-1)[:, -2:]
    margin = top2[:, 1] - top2[:, 0]
    return {"max_abs_diff": round(eps, 10), "top1_agreement": float(1.0 - flipped.mean()),
            "unexplained_flips": int((flipped & (margin > 2 * eps + 1e-12)).sum()), "n": int(len(reference))}


def parity_report(model, paths: dict, data) -> dict:
    """Runs every exported format on `data` and compares its logits with the Keras model's (main head).

    Args:
        model: keras.Model. The model the exports came from.
        paths: dict `{format: path}` as `export_all` returns (`"preprocessor"` is used, not reported).
        data: MultimodalData or dict of arrays. The examples, e.g. the test split.

    Returns:
        `{format: {"max_abs_diff", "top1_agreement", "unexplained_flips", "n", "passed"}}`; `passed` applies
        `FLOAT_TOLERANCE` to the float formats and `MIN_TOP1_AGREEMENT` to the quantized ones (`tflite_float16`
        is held to the agreement rule: half-precision weights move logits by more than 1e-4).
    """
    features = dict(getattr(data, "features", data))
    head = head_names(model)[0]
    reference = keras_logits(model, features)[head]
    split = split_preprocessing(model)
    core_features = split.core_inputs(features)
    report = {}
    for fmt, path in paths.items():
        if fmt == "preprocessor":
            continue
        runner = load_runner(fmt, path)
        outputs = runner(features if fmt == "saved_model" else core_features)
        numbers = compare_logits(reference, outputs[head])
        numbers["passed"] = (numbers["max_abs_diff"] <= FLOAT_TOLERANCE if fmt in FLOAT_FORMATS
                             else numbers["top1_agreement"] >= MIN_TOP1_AGREEMENT)
        report[fmt] = numbers
    return report
