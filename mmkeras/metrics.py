"""Classification metrics in NumPy: the confusion matrix and what follows from it.

For class k, with TP/FP/FN counted from the confusion matrix C (rows: true class, columns: predicted):
`precision_k = C[k, k] / sum_i C[i, k]`, `recall_k = C[k, k] / sum_j C[k, j]`,
`F1_k = 2 precision_k recall_k / (precision_k + recall_k)`; the macro average is the mean over classes.
"""

from __future__ import annotations

import numpy as np

from mmkeras._validation import check_int


def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """Counts `C[t, p]`: how many samples of true class t were predicted as p.

    Example:
    >>> confusion_matrix([0, 1, 1], [0, 1, 0], 2).tolist()
    [[1, 0], [1, 1]]
    """
    y_true, y_pred = np.asarray(y_true).astype(int).ravel(), np.asarray(y_pred).astype(int).ravel()
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same length. Received: {y_true.shape} and {y_pred.shape}")
    num_classes = check_int("num_classes", num_classes)
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"{name} must hold class ids in [0, {num_classes}). Received values in "
                             f"[{y.min()}, {y.max()}]")
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def classification_report(y_true, y_pred, num_classes: int) -> dict:
    """Accuracy, macro precision, recall and F1, per-class values and the confusion matrix.

    Classes that are never predicted (or never present) count as 0 precision (or recall).

    Example:
    >>> report = classification_report([0, 1, 1, 1], [0, 1, 0, 1], 2)
    >>> round(report["accuracy"], 2), round(report["precision"], 2), round(report["recall"], 2)
    (0.75, 0.75, 0.83)
    """
    matrix = confusion_matrix(y_true, y_pred, num_classes)
    true_positives = np.diag(matrix).astype(float)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    precision = np.divide(true_positives, predicted, out=np.zeros(num_classes), where=predicted > 0)
    recall = np.divide(true_positives, actual, out=np.zeros(num_classes), where=actual > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros(num_classes), where=denominator > 0)
    total = matrix.sum()
    return {
        "accuracy": float(true_positives.sum() / total) if total else 0.0,
        "precision": float(precision.mean()),
        "recall": float(recall.mean()),
        "f1": float(f1.mean()),
        "per_class": {"precision": precision, "recall": recall, "f1": f1},
        "confusion_matrix": matrix,
    }
