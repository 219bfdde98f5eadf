"""Train and evaluate the course's classifiers with one recipe, so that comparisons are fair.

`fit_classifier` compiles (Adam + sparse categorical cross-entropy), trains on the tf.data pipeline of the
modalities the model takes, and returns the history and the wall-clock seconds; `evaluate_classifier`
returns the predictions and the usual metrics on a split.
"""

from __future__ import annotations

import dataclasses
import time

import keras
import numpy as np

from mmkeras.data.pipeline import to_dataset
from mmkeras.data.synthetic import MultimodalData
from mmkeras.metrics import classification_report


@dataclasses.dataclass
class TrainResult:
    """What `fit_classifier` returns: the Keras history dict and the training time in seconds."""

    history: dict
    seconds: float


def model_modalities(model: keras.Model) -> list[str]:
    """The modality names a model takes, read from its (dict) inputs."""
    inputs = model.input
    if isinstance(inputs, dict):
        return list(inputs)
    return [t.name.split(":")[0] for t in model.inputs]


def fit_classifier(
    model: keras.Model,
    train: MultimodalData,
    val: MultimodalData | None = None,
    epochs: int = 10,
    batch_size: int = 64,
    learning_rate: float = 5e-3,
    label_keys="label",
    seed: int = 0,
    verbose: int | str = 0,
    callbacks=None,
    steps_per_execution: int = 8,
) -> TrainResult:
    """Compiles `model` with Adam (cosine-decayed step size) and sparse categorical cross-entropy, then trains it.

    The loss is the mean negative log-likelihood of the true class, `L = -(1/N) sum_i log p(y_i | x_i)`.

    Args:
        model: keras.Model. A model from `build_fusion_classifier` (dict inputs keyed by modality).
        train: MultimodalData. The training split.
        val: MultimodalData or None. The validation split, evaluated after every epoch.
        epochs: int. Passes over the training split. Defaults to `10`.
        batch_size: int. Defaults to `64`.
        learning_rate: float. Adam's initial step size, decayed to 0 along a cosine. Defaults to `5e-3`.
        label_keys: str or list of str. The label(s) the model predicts. Defaults to `"label"`.
        seed: int. Shuffling seed. Defaults to `0`.
        verbose: int or str. Keras `fit` verbosity. Defaults to `0`.
        callbacks: list or None. Extra Keras callbacks.
        steps_per_execution: int. Batches run per call into the compiled graph. Defaults to `8`.

    Returns:
        A `TrainResult(history, seconds)`.

    Example:
    >>> from mmkeras.data import make_synthetic
    >>> from mmkeras.models import build_fusion_classifier
    >>> result = fit_classifier(build_fusion_classifier(["text"]), make_synthetic(64), epochs=1)
    >>> sorted(result.history)
    ['accuracy', 'loss']
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs <= 0:
        raise ValueError(f"`epochs` must be a positive int. Received: epochs={epochs!r}")
    if not isinstance(learning_rate, (int, float)) or not learning_rate > 0:
        raise ValueError(f"`learning_rate` must be a positive number. Received: learning_rate={learning_rate!r}")
    modalities = model_modalities(model)
    single = isinstance(label_keys, str)  # one head: plain loss and metric; several heads: one per name
    train_ds = to_dataset(train, modalities, label_keys, batch_size=batch_size, shuffle=True, seed=seed)
    val_ds = to_dataset(val, modalities, label_keys, batch_size=256) if val is not None else None
    # Cosine decay from `learning_rate` to 0 over the whole run: large steps first, fine ones at the end.
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=epochs * len(train_ds))
    loss = "sparse_categorical_crossentropy"
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=loss if single else dict.fromkeys(label_keys, loss),
        metrics=["accuracy"] if single else {k: ["accuracy"] for k in label_keys},
        steps_per_execution=steps_per_execution,  # fewer Python round trips per epoch: faster on CPU
    )
    start = time.perf_counter()
    history = model.fit(train_ds, validation_data=val_ds, epochs=epochs, verbose=verbose, shuffle=False,
                        callbacks=callbacks)
    return TrainResult(history.history, time.perf_counter() - start)


def predict_classes(model: keras.Model, data: MultimodalData, batch_size: int = 256) -> np.ndarray:
    """Class probabilities of the `"label"` head for every sample of `data`: `(n, num_classes)`."""
    ds = to_dataset(data, model_modalities(model), batch_size=batch_size, cache=False)
    probabilities = model.predict(ds, verbose=0)
    if isinstance(probabilities, dict):
        probabilities = probabilities["label"]
    return np.asarray(probabilities)


def evaluate_classifier(model: keras.Model, data: MultimodalData, batch_size: int = 256) -> dict:
    """Accuracy, macro precision/recall/F1 and the confusion matrix of the `"label"` head on `data`.

    Example:
    >>> from mmkeras.data import make_synthetic
    >>> from mmkeras.models import build_fusion_classifier
    >>> report = evaluate_classifier(build_fusion_classifier(["audio"]), make_synthetic(32))
    >>> sorted(report)[:3]
    ['accuracy', 'confusion_matrix', 'f1']
    """
    probabilities = predict_classes(model, data, batch_size)
    num_classes = probabilities.shape[-1]
    return classification_report(data.labels["label"], probabilities.argmax(-1), num_classes)
