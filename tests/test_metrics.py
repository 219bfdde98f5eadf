from __future__ import annotations

import numpy as np
import pytest

from mmkeras.metrics import classification_report, confusion_matrix


def test_confusion_matrix_counts():
    m = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], 3)
    np.testing.assert_array_equal(m, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])


def test_report_matches_hand_computation():
    r = classification_report([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], 3)
    assert r["accuracy"] == pytest.approx(4 / 6)
    np.testing.assert_allclose(r["per_class"]["precision"], [1 / 2, 1 / 2, 1.0])
    np.testing.assert_allclose(r["per_class"]["recall"], [1 / 2, 1.0, 2 / 3])
    assert r["f1"] == pytest.approx(np.mean([0.5, 2 / 3, 0.8]))


def test_never_predicted_class_counts_as_zero_precision():
    r = classification_report([0, 1], [0, 0], 2)
    assert r["per_class"]["precision"][1] == 0.0 and r["per_class"]["recall"][1] == 0.0


@pytest.mark.parametrize(
    "args,match",
    [(([0, 1], [0], 2), "same length"), (([0, 3], [0, 1], 2), r"y_true.*\[0, 3\]"), (([0], [0], 0), "num_classes=0")],
)
def test_bad_inputs(args, match):
    with pytest.raises(ValueError, match=match):
        confusion_matrix(*args)
