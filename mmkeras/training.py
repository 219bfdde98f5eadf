"""What Keras does not do for us: turn any dataset into the model's inputs, time the training, and report.

Training is plain `model.fit`. `fit_classifier` adds only the course's recipe (`mmkeras.optimizers`: Adam
with a step size that decays along a cosine over the run, compiled afresh on every call, so that a second call
trains a few more epochs with a new schedule), the tf.data pipeline of the modalities and heads the model has,
and the wall-clock time. Compile the model yourself (for example with `loss_weights`, or your own optimizer)
and `fit_classifier` leaves your compile settings alone.

Example:
>>> from mmkeras.data import load_splits
>>> splits = load_splits(64, 16, 16)
>>> result = train_and_evaluate(["audio"], splits["train"], splits["test"], epochs=1)
>>> sorted(result.report)[:2], len(result.history["loss"])
(['accuracy', 'confusion_matrix'], 1)
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
import weakref

import numpy as np

from mmkeras._validation import check_bool, check_int
from mmkeras.config import is_smoke, seed_everything
from mmkeras.data.pipeline import as_multimodal, to_dataset
from mmkeras.metrics import classification_report
from mmkeras.models import build_fusion_classifier
from mmkeras.optimizers import count_batches, course_optimizer

_RECIPE_OPTIMIZERS = weakref.WeakSet()  # the optimizers fit_classifier made: a model holding one is recompiled


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
    learning_rate: float | None = None,
    seed: int = 0,
    verbose=0,
    callbacks=None,
    steps_per_execution: int = 8,
    label_keys=None,
    run_eagerly: bool | None = None,
) -> TrainResult:
    """Trains a classifier with `model.fit` on any data, with the course's recipe unless you compiled it.

    A model that is not compiled, or that this function compiled before, is compiled (again) inside the
    strategy scope it was built in, with `mmkeras.optimizers.course_optimizer`: Adam whose step size decays
    from `learning_rate` to 0 along a cosine over this call's `epochs * batches` updates, and the model's own
    `compile()` defaults for losses and metrics (for a `FusionClassifier`: cross-entropy on logits,
    `L = -(1/N) sum_i log softmax(logits_i)[y_i]`, and accuracy, per head). So a second call trains
    `epochs` more with a fresh schedule (and a fresh Adam state). A model you compiled yourself is trained as
    it is.

    Args:
        model: keras.Model. A model with dict inputs keyed by modality, e.g. a `FusionClassifier`.
        train: MultimodalData, `(features, labels)` pair or `tf.data.Dataset`. The training split.
        val: the same kinds, or None. Evaluated after every epoch (only watched: it changes nothing).
        epochs: int. Passes over the training split. Defaults to `10`.
        batch_size: int. Defaults to `64`.
        learning_rate: float or None. Initial step size of the recipe; `None` means `5e-3`. Refused for a model
            you compiled yourself (its optimizer sets the step size).
        seed: int. Shuffling seed. Defaults to `0`.
        verbose: int or str. Keras `fit` verbosity. Defaults to `0`.
        callbacks: list or None. Keras callbacks (e.g. `keras.callbacks.EarlyStopping`).
        steps_per_execution: int. Batches per call into the compiled graph, when this function compiles
            (1 under a strategy with several replicas, where Keras cannot run more). Defaults to `8`.
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
    epochs, batch_size = check_int("epochs", epochs), check_int("batch_size", batch_size)
    seed = check_int("seed", seed, minimum=0)
    steps_per_execution = check_int("steps_per_execution", steps_per_execution)
    run_eagerly = is_smoke() if run_eagerly is None else check_bool("run_eagerly", run_eagerly)
    train_ds = as_dataset(model, train, batch_size, shuffle=True, seed=seed, label_keys=label_keys)
    val_ds = as_dataset(model, val, 256, label_keys=label_keys) if val is not None else None
    if model.compiled and not uses_course_recipe(model):
        if learning_rate is not None:
            raise ValueError(f"The model is compiled with your own optimizer, whose step size applies; "
                             f"`learning_rate` only sets the course's recipe. Received: learning_rate={learning_rate}")
    else:
        learning_rate = 5e-3 if learning_rate is None else learning_rate
        strategy = getattr(model, "distribute_strategy", None)  # TensorFlow's; other backends have none
        replicas = strategy.num_replicas_in_sync if strategy is not None else 1
        with strategy.scope() if strategy is not None else contextlib.nullcontext():  # where the model's variables are
            optimizer = course_optimizer(learning_rate, total_steps=epochs * count_batches(train_ds))
            model.compile(optimizer=optimizer, steps_per_execution=1 if replicas > 1 else steps_per_execution,
                          run_eagerly=run_eagerly)
        _RECIPE_OPTIMIZERS.add(optimizer)
    start = time.perf_counter()
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=verbose, callbacks=callbacks,
                        shuffle=False)  # to_dataset shuffles; Keras cannot shuffle a tf.data.Dataset
    return TrainResult(history.history, time.perf_counter() - start)


def uses_course_recipe(model) -> bool:
    """Whether `model` is compiled with an optimizer that `fit_classifier` made (so it may recompile it)."""
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)  # under mixed precision Keras wraps it
    return optimizer is not None and optimizer in _RECIPE_OPTIMIZERS


def head_logits(model, data, head, batch_size):
    """The logits `(n, classes)` of one head (the first by default) for every sample of `data`."""
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

    logits = head_logits(model, data, head, batch_size)
    return ops.convert_to_numpy(ops.softmax(logits, axis=-1))


def predict_classes(model, data, head: str | None = None, batch_size: int = 256) -> np.ndarray:
    """The predicted class id of one head for every sample: `(n,)` ints (the argmax of the logits)."""
    return head_logits(model, data, head, batch_size).argmax(axis=-1)


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
    logits = head_logits(model, data, head, batch_size)
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
    seed_everything(seed)
    model = build() if callable(build) else build_fusion_classifier(list(build))
    trained = fit_classifier(model, train, val, seed=seed, **fit_kwargs)
    return Experiment(model, trained.history, trained.seconds, evaluate_classifier(model, test))
