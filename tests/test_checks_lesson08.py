"""Lesson 08's checks: the right answers pass, and each single-line slip fails with a hint naming the fix."""
from __future__ import annotations

import inspect
import textwrap

import numpy as np
import pytest

from course_lib import checks


def confusion_matrix(true_labels, predicted_labels, num_classes):
    counts = np.zeros((num_classes, num_classes), dtype=int)
    for true_label, predicted_label in zip(true_labels, predicted_labels):
        counts[true_label, predicted_label] += 1
    return counts


def precision_recall(confusion):
    counts = np.asarray(confusion, dtype=float)
    correct = np.diag(counts)
    predicted_as = counts.sum(axis=0)
    actual = counts.sum(axis=1)
    with np.errstate(invalid="ignore"):
        precision = correct / predicted_as
        recall = correct / actual
    return precision, recall


def slipped(function, old: str, new: str):
    source = textwrap.dedent(inspect.getsource(function))
    assert old in source, f"{old!r} is not in {function.__name__}"
    namespace = {"np": np}
    exec(compile(source.replace(old, new), "<slip>", "exec"), namespace)  # noqa: S102 - our own test code
    return namespace[function.__name__]


def test_check_confusion_matrix_passes_the_right_answer(capsys):
    checks.check_confusion_matrix(confusion_matrix)
    assert capsys.readouterr().out.startswith("Correct:")


@pytest.mark.parametrize(("old", "new", "hint"), [
    ("counts[true_label, predicted_label]", "counts[predicted_label, true_label]", "swapped"),
    ("+= 1", "= 1", "add exactly 1"),
    ("np.zeros((num_classes, num_classes)", "np.zeros((max(true_labels) + 1, max(true_labels) + 1)", "use num_classes"),
    ("zip(true_labels, predicted_labels)", "zip(true_labels, true_labels)", "values differ"),
])
def test_check_confusion_matrix_names_the_slip(old, new, hint):
    with pytest.raises(checks.ExerciseIncorrect, match=hint):
        checks.check_confusion_matrix(slipped(confusion_matrix, old, new))


def test_check_precision_recall_passes_the_right_answer_and_the_short_one(capsys):
    def short(confusion):  # 0 / 0 gives NaN by itself (with a warning the check silences)
        return np.diag(confusion) / confusion.sum(axis=0), np.diag(confusion) / confusion.sum(axis=1)

    checks.check_precision_recall(precision_recall)
    checks.check_precision_recall(short)
    assert capsys.readouterr().out.count("Correct:") == 2


@pytest.mark.parametrize(("old", "new", "hint"), [
    ("return precision, recall", "return recall, precision", "swapped"),
    ("predicted_as = counts.sum(axis=0)", "predicted_as = counts.sum(axis=1)", "column sums"),
    ("actual = counts.sum(axis=1)", "actual = counts.sum(axis=0)", "row sums"),
    ("return precision, recall", "return np.nan_to_num(precision), np.nan_to_num(recall)", "np.nan"),
    ("correct / predicted_as", "correct // predicted_as", "not //"),
    ("return precision, recall", "return precision", "pair"),
    ("correct = np.diag(counts)", "correct = counts.sum()", "values differ"),
])
def test_check_precision_recall_names_the_slip(old, new, hint):
    with pytest.raises(checks.ExerciseIncorrect, match=hint):
        checks.check_precision_recall(slipped(precision_recall, old, new))


def test_check_precision_recall_says_a_stub_is_not_done():
    def stub(confusion):
        raise NotImplementedError("precision and recall")

    with pytest.raises(checks.ExerciseNotDone, match="not written yet"):
        checks.check_precision_recall(stub)
