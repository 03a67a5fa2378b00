"""Exercise checks of lesson 08."""
from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from course_lib import metrics
from course_lib.checks.common import ExerciseIncorrect, assert_close, call_student, expect_pair, passed

__all__ = ['check_confusion_matrix', 'check_precision_recall']


def check_confusion_matrix(student_confusion_matrix: Callable) -> None:
    """Compare the student's confusion matrix with ``metrics.confusion_matrix`` (rows = true class)."""
    rng = np.random.default_rng(8)
    cases = [
        (rng.integers(0, 4, 50), rng.integers(0, 4, 50), 4),
        (np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), 3),  # class 2 never occurs: still 3x3
        (np.array([2, 2, 0]), np.array([2, 1, 1]), 3),  # class 1 is only predicted, never true
    ]
    for true_labels, predicted, classes in cases:
        expected = metrics.confusion_matrix(true_labels, predicted, classes)
        actual = np.asarray(call_student(student_confusion_matrix, true_labels, predicted, classes, hints=[
            (IndexError, "out of bounds", "Make the matrix num_classes x num_classes: np.zeros((num_classes, num_classes), dtype=int)."),
        ]))  # fmt: skip
        if actual.shape != expected.shape:
            raise ExerciseIncorrect(f"For {classes} classes the matrix has shape {actual.shape}; it must be "
                                    f"{expected.shape}: every class gets a row and a column (use num_classes), even "
                                    "one that never occurs in these labels.")
        if np.array_equal(actual, expected.T) and not np.array_equal(actual, expected):
            raise ExerciseIncorrect("Rows and columns are swapped: a row is the TRUE class, a column the PREDICTED one.")
        if actual.sum() != expected.sum():
            raise ExerciseIncorrect(f"The matrix counts {actual.sum():g} photos for {len(true_labels)} labels: add "
                                    "exactly 1 for each (true, predicted) pair.")
        assert_close(actual, expected, f"confusion_matrix(true, predicted, {classes})", atol=0, rtol=0)
    passed("confusion_matrix counts true classes in rows and predictions in columns.")


def check_precision_recall(student_precision_recall: Callable) -> None:
    """Lesson 08: per-class precision (``confusion[k, k] / column k's sum``) and recall (``/ row k's sum``),
    NaN where that sum is 0, as ``metrics.precision_recall``."""
    cases = [
        np.array([[5, 1, 0, 2], [0, 3, 1, 0], [2, 0, 4, 0], [1, 1, 0, 6]]),
        np.array([[3, 0, 1], [2, 0, 0], [0, 0, 0]]),  # class 1 never predicted, class 2 has no photos
    ]
    for confusion in cases:
        expected_precision, expected_recall = metrics.precision_recall(confusion)
        with np.errstate(divide="ignore", invalid="ignore"):  # 0 / 0 is the student's to handle: NaN is right
            answer = call_student(student_precision_recall, confusion.copy())
        precision, recall = (np.asarray(part, dtype=np.float64) for part in
                             expect_pair(answer, "precision_recall", "(precision, recall)", "one array each"))
        size = len(confusion)
        for name, values in (("precision", precision), ("recall", recall)):
            if values.shape != (size,):
                raise ExerciseIncorrect(f"{name} has shape {values.shape}; it needs one value per class, shape ({size},).")
        same = functools.partial(np.allclose, equal_nan=True, atol=1e-9)
        if same(precision, expected_recall) and same(recall, expected_precision):
            raise ExerciseIncorrect("Precision and recall are swapped: precision divides the diagonal by the COLUMN "
                                    "sums (everything predicted as that class), recall by the ROW sums (every photo "
                                    "that is that class).")
        if same(precision, expected_recall) or same(recall, expected_precision):
            raise ExerciseIncorrect("Precision and recall came out equal to the same thing: precision divides by the "
                                    "column sums (confusion.sum(axis=0)), recall by the row sums "
                                    "(confusion.sum(axis=1)).")
        for name, values, expected in (("precision", precision, expected_precision), ("recall", recall, expected_recall)):
            undefined = np.isnan(expected)
            if undefined.any() and np.all(values[undefined] == 0) and same(values[~undefined], expected[~undefined]):
                raise ExerciseIncorrect(f"{name} is 0 for a class where it is undefined (0 / 0): return np.nan there, "
                                        "so that a class never predicted (or with no photos) does not look like a "
                                        "class that is always wrong.")
            if not same(values, expected) and same(values, np.floor(expected)):
                raise ExerciseIncorrect(f"{name} came out as whole numbers: divide with /, not // (and count as floats).")
            # Counts divided in float64: exact to 1e-16, any order of operations within 1e-9.
            assert_close(values, expected, f"{name} per class", atol=1e-9, rtol=0)
    passed("precision = diagonal / column sums, recall = diagonal / row sums, NaN where nothing was counted.")
