"""What Keras does not do for us: turn any dataset into the model's inputs, time the training, and report.

Training is plain `model.fit`. `fit_classifier` adds only the course's recipe (when the model is not compiled
yet: Adam with a cosine-decayed step size), the tf.data pipeline of the modalities and heads the model has,
and the wall-clock time. Compile the model yourself (for example inside a `tf.distribute` strategy scope, or
with `loss_weights`) and `fit_classifier` leaves your compile settings alone.

Example:
>>> from mmkeras.data import load_splits
>>> from mmkeras.models import build_fusion_classifier
>>> splits = load_splits(64, 16, 16)
>>> result = train_and_evaluate(["audio"], splits["train"], splits["test"], epochs=1)
>>> 0 <= result.report["accuracy"] <= 1
True
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from mmkeras._validation import check_bool, check_int, check_number
from mmkeras.config import is_smoke
from mmkeras.data.pipeline import as_multimodal, to_dataset
from mmkeras.metrics import classification_report


@dataclasses.dataclass
class TrainResult:
    """What `fit_classifier` returns: the Keras history dict and the training time in seconds."""

    history: dict
    seconds: float


def model_modalities(model) -> list[str]:
    """The modality names a model takes, read from its (dict) inputs."""
    inputs = getattr(model, "input", None)
    if isinstance(inputs, dict):
        return list(inputs)
    raise ValueError(f"The model must take a dict of inputs keyed by modality (as FusionClassifier does). "
                     f"Received: {type(model).__name__} with inputs {inputs!r}")


def model_heads(model):
    """What the model predicts, as `to_dataset(label_keys=...)` wants it: one name or a tuple of names."""
    if hasattr(model, "label_keys"):
        return model.label_keys()
    outputs = model.output
    return tuple(outputs) if isinstance(outputs, dict) else "label"


def as_dataset(model, data, batch_size: int, shuffle: bool = False, seed: int = 0, label_keys=None):
    """Any supported data -> the tf.data pipeline of the model's modalities and heads.

    `data` is a `MultimodalData`, a pair `(features, labels)` of dicts of arrays, or a `tf.data.Dataset` that
    already yields `(inputs, labels)` (passed through unchanged).
    """
    import tensorflow as tf

    if isinstance(data, tf.data.Dataset):
        return data
    data = as_multimodal(data)
    keys = model_heads(model) if label_keys is None else label_keys
    return to_dataset(data, model_modalities(model), keys, batch_size=batch_size, shuffle=shuffle, seed=seed)


def fit_classifier(
    model,
    train,
    val=None,
    epochs: int = 10,
    batch_size: int = 64,
    learning_rate: float = 5e-3,
    seed: int = 0,
    verbose=0,
    callbacks=None,
    steps_per_execution: int = 8,
    label_keys=None,
    run_eagerly: bool | None = None,
) -> TrainResult:
    """Trains a classifier with `model.fit` on any data, compiling it with the course's recipe if needed.

    If the model is not compiled yet it is compiled, inside the strategy scope it was built in, with Adam
    whose step size decays from `learning_rate` to 0 along a cosine over the whole run, and the model's own
    `compile()` defaults for losses and metrics (for a `FusionClassifier`: cross-entropy on logits,
    `L = -(1/N) sum_i log softmax(logits_i)[y_i]`, and accuracy, per head). A compiled model is trained as it is.

    Args:
        model: keras.Model. A model with dict inputs keyed by modality, e.g. a `FusionClassifier`.
        train: MultimodalData, `(features, labels)` pair or `tf.data.Dataset`. The training split.
        val: the same kinds, or None. Evaluated after every epoch (only watched: it changes nothing).
        epochs: int. Passes over the training split. Defaults to `10`.
        batch_size: int. Defaults to `64`.
        learning_rate: float. Initial step size when this function compiles the model. Defaults to `5e-3`.
        seed: int. Shuffling seed. Defaults to `0`.
        verbose: int or str. Keras `fit` verbosity. Defaults to `0`.
        callbacks: list or None. Keras callbacks (e.g. `keras.callbacks.EarlyStopping`).
        steps_per_execution: int. Batches per call into the compiled graph, when this function compiles.
        label_keys: None, str or list. The labels to train on; defaults to the model's head names.
        run_eagerly: bool or None. Run `fit` and `predict` step by step in Python instead of compiling them into
            a graph, when this function compiles. `None` (the default): eagerly in smoke mode
            (`MMKERAS_SMOKE=1`), compiled otherwise. Smoke runs train a handful of batches, fewer than it
            takes for tracing the graph (about 7 s for the four-modality model on 2 cores, against under 3 s
            for its few eager steps) to pay off; a full run always compiles.

    Returns:
        A `TrainResult(history, seconds)`.

    Example:
    >>> from mmkeras.data import make_synthetic
    >>> from mmkeras.models import build_fusion_classifier
    >>> result = fit_classifier(build_fusion_classifier(["text"]), make_synthetic(64), epochs=1)
    >>> sorted(result.history)
    ['accuracy', 'loss']
    """
    import keras

    epochs, batch_size = check_int("epochs", epochs), check_int("batch_size", batch_size)
    learning_rate = check_number("learning_rate", learning_rate, low=0, low_inclusive=False)
    seed = check_int("seed", seed, minimum=0)
    run_eagerly = is_smoke() if run_eagerly is None else check_bool("run_eagerly", run_eagerly)
    train_ds = as_dataset(model, train, batch_size, shuffle=True, seed=seed, label_keys=label_keys)
    val_ds = as_dataset(model, val, 256, label_keys=label_keys) if val is not None else None
    if not model.compiled:
        steps = max(1, epochs * int(train_ds.cardinality()))
        with model.distribute_strategy.scope():  # the optimizer's variables live where the model's do
            schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=steps)
            model.compile(optimizer=keras.optimizers.Adam(schedule), steps_per_execution=steps_per_execution,
                          run_eagerly=run_eagerly)
    start = time.perf_counter()
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=verbose, callbacks=callbacks,
                        shuffle=False)  # to_dataset shuffles; Keras cannot shuffle a tf.data.Dataset
    return TrainResult(history.history, time.perf_counter() - start)


def _head_logits(model, data, head, batch_size):
    from keras import ops

    ds = as_dataset(model, data, batch_size, label_keys=())
    outputs = model.predict(ds, verbose=0)
    if isinstance(outputs, dict):
        head = head or model_heads(model)[0]
        if head not in outputs:
            raise ValueError(f"`head` must be one of the model's heads {sorted(outputs)}. Received: head={head!r}")
        outputs = outputs[head]
    return ops.convert_to_numpy(outputs)


def predict_proba(model, data, head: str | None = None, batch_size: int = 256) -> np.ndarray:
    """Class probabilities `softmax(logits)` of one head for every sample: `(n, num_classes)`."""
    from keras import ops

    logits = _head_logits(model, data, head, batch_size)
    return ops.convert_to_numpy(ops.softmax(logits, axis=-1))


def predict_classes(model, data, head: str | None = None, batch_size: int = 256) -> np.ndarray:
    """The predicted class id of one head for every sample: `(n,)` ints (the argmax of the logits)."""
    return _head_logits(model, data, head, batch_size).argmax(axis=-1)


def evaluate_classifier(model, data, head: str | None = None, batch_size: int = 256) -> dict:
    """Accuracy, macro precision/recall/F1 and the confusion matrix of one head (the first by default).

    Example:
    >>> from mmkeras.data import make_synthetic
    >>> from mmkeras.models import build_fusion_classifier
    >>> report = evaluate_classifier(build_fusion_classifier(["audio"]), make_synthetic(32))
    >>> sorted(report)[:3]
    ['accuracy', 'confusion_matrix', 'f1']
    """
    data = as_multimodal(data)
    heads = model_heads(model)
    head = head or (heads if isinstance(heads, str) else heads[0])
    if head not in data.labels:
        raise ValueError(f"The data has no label {head!r} to evaluate against; it has {sorted(data.labels)}.")
    logits = _head_logits(model, data, head, batch_size)
    return classification_report(data.labels[head], logits.argmax(-1), logits.shape[-1])


@dataclasses.dataclass
class Experiment:
    """What `train_and_evaluate` returns: the trained model, its history and time, and the test report."""

    model: object
    history: dict
    seconds: float
    report: dict


def train_and_evaluate(build, train, test, val=None, seed: int = 0, **fit_kwargs) -> Experiment:
    """Seed, build, train and test one model with the common recipe: the loop every comparison repeats.

    Args:
        build: a list of modality names (for `build_fusion_classifier`), or a function of no arguments that
            returns a model (called after seeding, so that the same seed gives the same initial weights).
        train, test: the training and test data (`MultimodalData` or `(features, labels)`).
        val: validation data, only watched. Defaults to `None`.
        seed: int. Seeds weights, dropout and shuffling. Defaults to `0`.
        **fit_kwargs: passed to `fit_classifier` (`epochs`, `batch_size`, `learning_rate`, ...).
    """
    from mmkeras.config import seed_everything
    from mmkeras.models import build_fusion_classifier

    seed_everything(seed)
    model = build() if callable(build) else build_fusion_classifier(list(build))
    trained = fit_classifier(model, train, val, seed=seed, **fit_kwargs)
    return Experiment(model, trained.history, trained.seconds, evaluate_classifier(model, test))
