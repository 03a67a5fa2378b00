"""metrics: per-class precision and recall, the most frequent confusions, and what `unseen` leaves out."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from course_lib import data, metrics


def _evaluation(true, predicted, names=("a", "b", "c")) -> metrics.Evaluation:
    true, predicted = np.asarray(true), np.asarray(predicted)
    probabilities = np.full((len(true), len(names)), 0.1)
    probabilities[np.arange(len(true)), predicted] = 0.8
    return metrics.Evaluation(
        class_names=tuple(names), files=tuple(Path(f"{i}.jpg") for i in range(len(true))),
        true_labels=true, predicted_labels=predicted, probabilities=probabilities,
        confusion=metrics.confusion_matrix(true, predicted, len(names)),
    )


def test_precision_divides_by_columns_and_recall_by_rows_with_nan_for_zero_over_zero():
    precision, recall = metrics.precision_recall([[3, 1, 0], [0, 4, 0], [2, 0, 0]])
    np.testing.assert_allclose(precision, [3 / 5, 4 / 5, np.nan])  # class 2 never predicted
    np.testing.assert_allclose(recall, [3 / 4, 1.0, 0.0])
    precision, recall = metrics.precision_recall([[2, 0], [0, 0]])  # class 1 has no photos, never predicted
    assert np.isnan(precision[1]) and np.isnan(recall[1])
    with pytest.raises(ValueError, match="square"):
        metrics.precision_recall([[1, 2, 3]])


def test_evaluation_reports_precision_and_recall_only_where_defined():
    result = _evaluation([0, 0, 1, 1, 2], [0, 1, 1, 1, 1])
    assert result.per_class_recall() == pytest.approx({"a": 0.5, "b": 1.0, "c": 0.0})
    assert result.per_class_recall() == result.per_class_accuracy()
    assert result.per_class_precision() == pytest.approx({"a": 1.0, "b": 0.5})  # c never predicted: left out
    assert result.to_json()["per_class_precision"] == pytest.approx({"a": 1.0, "b": 0.5})
    report = result.report()
    assert "recall" in report and "precision" in report
    c_line = next(line for line in report.splitlines() if line.strip().startswith("c "))
    assert c_line.split()[1:] == ["0.0%", "-"]


def test_top_confusions_lists_the_largest_mistakes_first_and_never_the_diagonal():
    confusion = np.array([[9, 1, 3], [0, 7, 0], [2, 3, 5]])
    assert metrics.top_confusions(confusion, ["a", "b", "c"], count=3) == [("a", "c", 3), ("c", "b", 3), ("c", "a", 2)]
    assert metrics.top_confusions(np.eye(3, dtype=int) * 4, ["a", "b", "c"]) == []
    assert _evaluation([0, 0, 2], [1, 1, 2]).top_confusions() == [("a", "b", 2)]


def test_unseen_leaves_out_validation_photos_recorded_in_the_file(pets_dir):
    pets = data.image_folder(pets_dir)
    train, held_out = data.split_each_label(pets, 0.7, seed=3)
    valid, test = data.split_each_label(held_out, 0.5, seed=3)
    info = {"training_files": train.relative_names(), "validation_files": valid.relative_names()}
    assert metrics.unseen(held_out, info).files == test.files
    assert metrics.unseen(held_out, {"training_files": train.relative_names()}).files == held_out.files
    assert metrics.unseen(held_out, {"training_files": None, "validation_files": None}) is held_out
