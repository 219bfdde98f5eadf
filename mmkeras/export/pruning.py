"""Post-training magnitude pruning (剪枝), and the copy of a model to prune without touching the original."""

from __future__ import annotations

import pathlib
import tempfile

import numpy as np

from mmkeras._validation import check_fraction
from mmkeras.export.graph import all_layers


def copy_model(model):
    """A new model with the same architecture and a copy of the weights (to prune without touching the original).

    The copy goes through a `.keras` file in a temporary folder (`model.save`, then `keras.saving.load_model`
    with `compile=False`), so a `FusionClassifier` comes back as one (heads, names and all; `clone_model` would
    turn it into a plain functional model), and a layer or encoder that serves several modalities stays one
    object serving them all: the file records shared objects once, where `from_config(get_config())` would build
    one copy per use and fail on the repeated name.
    """
    import keras

    with tempfile.TemporaryDirectory(prefix="mmkeras-copy-") as folder:
        path = pathlib.Path(folder) / "model.keras"
        model.save(path)
        return keras.saving.load_model(path, compile=False)


def prune_weights(model, sparsity: float = 0.5) -> dict:
    """Post-training magnitude pruning (剪枝), in place: in every Dense and Conv kernel, zero the `sparsity`
    fraction of weights with the smallest magnitude, `w_ij <- w_ij [|w_ij| > t]`, `t` the kernel's
    `sparsity`-quantile of `|w|`. Biases, embeddings, recurrent and normalisation weights are kept.

    The file sizes do not shrink by themselves (zeros are stored like any number), but a compressed file does
    (`gzip_size`); measure the accuracy before and after, as pruning without fine-tuning costs some.

    Args:
        model: keras.Model. Changed in place (prune `copy_model(model)` to keep the original).
        sparsity: float in [0, 1). Fraction of each kernel set to zero. Defaults to `0.5`.

    Returns:
        `{kernel path: fraction of zeros}` for every pruned kernel.

    Example:
    >>> import keras
    >>> dense = keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)])
    >>> report = prune_weights(dense, 0.5)
    >>> [round(v, 2) for v in report.values()]
    [0.5]
    """
    import keras

    sparsity = check_fraction("sparsity", sparsity)
    kinds = (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
    report = {}
    for layer in all_layers(model):
        if isinstance(layer, kinds) and getattr(layer, "kernel", None) is not None:
            kernel = keras.ops.convert_to_numpy(layer.kernel)
            threshold = np.quantile(np.abs(kernel), sparsity) if sparsity > 0 else -1.0
            pruned = np.where(np.abs(kernel) > threshold, kernel, 0.0).astype(kernel.dtype)
            layer.kernel.assign(pruned)
            report[layer.kernel.path] = float((pruned == 0).mean())
    return report
