"""Exercise checks of lesson 08."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from course_lib.checks.common import ExerciseIncorrect, assert_close, call_student, passed

__all__ = ['check_confusion_matrix']


def check_confusion_matrix(student_confusion_matrix: Callable) -> None:
    """Compare the student's confusion matrix with ``metrics.confusion_matrix`` (rows = true class)."""
    from course_lib import metrics

    rng = np.random.default_rng(8)
    cases = [
        (rng.integers(0, 4, 50), rng.integers(0, 4, 50), 4),
        (np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), 3),  # class 2 never occurs: still 3x3
    ]
    for true_labels, predicted, classes in cases:
        expected = metrics.confusion_matrix(true_labels, predicted, classes)
        actual = np.asarray(call_student(student_confusion_matrix, true_labels, predicted, classes))
        if actual.shape == expected.shape and np.array_equal(actual, expected.T) and not np.array_equal(actual, expected):
            raise ExerciseIncorrect("Rows and columns are swapped: a row is the TRUE class, a column the PREDICTED one.")
        assert_close(actual, expected, f"confusion_matrix(true, predicted, {classes})", atol=0, rtol=0)
    passed("confusion_matrix counts true classes in rows and predictions in columns.")
