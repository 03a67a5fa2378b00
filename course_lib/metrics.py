"""Judging the classifier of lessons 07-09, as the source's ``classify`` + ``confusionchart`` do.

- :func:`unseen`: the photos a classifier never trained on (the only fair ones to judge it by).
- :func:`evaluate`: predictions matched to the folder's classes by name, the confusion matrix,
  per-class accuracy and the misclassified photos, as an :class:`Evaluation`.
- :func:`confusion_matrix`: counts of (true class, predicted class), MATLAB's ``confusionmat``.
- :func:`precision_recall`: per class, how often a prediction of it is right (precision) and how
  many of its photos are found (recall), from the confusion matrix.
- :func:`top_confusions`: the most frequent mistakes, (true class, predicted class, count).

The figures (confusion chart, misclassified gallery) are built in :mod:`course_lib.plots`.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from course_lib.classifiers import predict_probabilities
from course_lib.data import LabeledImages, read_images
from course_lib.models import Classifier


def unseen(dataset: LabeledImages, trained_on: Mapping | LabeledImages | Iterable[str] | None) -> LabeledImages:
    """The photos of ``dataset`` a classifier was NOT trained on: the only fair ones to judge it by.

    A saved classifier may come from another split than the one rebuilt now (another
    ``max_per_class`` or seed permutes other photos), so "the test part of the same seed"
    is no guarantee. :func:`save_classifier` records the training photos by ``class/file`` name,
    and the validation photos that chose the kept epoch (early stopping) if it was given them;
    this leaves out both. The ``evaluate`` command and lesson 08 both use it.

    Args:
        dataset: the photos to evaluate on.
        trained_on: what the classifier has seen: the dict of :func:`classifier_info` (its
            ``training_files`` and ``validation_files``), the training :class:`LabeledImages`,
            or ``class/file`` names. ``None`` (or a file that recorded nothing) leaves
            ``dataset`` unchanged.

    Returns:
        The photos of ``dataset`` whose ``class/file`` name is not among the photos seen.

    Raises:
        ValueError: every photo of ``dataset`` was trained on, so none is left to judge by.

    Example:
        >>> fair = metrics.unseen(valid_set, classifiers.classifier_info(path))
        >>> print(f"{len(valid_set) - len(fair)} photos left out: trained on")
    """
    if isinstance(trained_on, LabeledImages):
        names = set(trained_on.relative_names())
    elif isinstance(trained_on, Mapping):
        names = set(trained_on.get("training_files") or []) | set(trained_on.get("validation_files") or [])
    elif isinstance(trained_on, str):
        raise ValueError(
            f"trained_on must be classifier_info(path), the training LabeledImages or a list of 'class/file' "
            f"names, got the single string {trained_on!r}; wrap one name in a list."
        )
    else:
        names = set(trained_on or [])
    if not names:
        return dataset
    keep = [i for i, name in enumerate(dataset.relative_names()) if name not in names]
    if not keep:
        raise ValueError(
            f"Every one of the {len(dataset)} photos in {dataset.root} was used to train (or validate) this classifier, so "
            "none is left to judge it fairly. Evaluate on other photos (the evaluate command's "
            "--include-training counts them anyway, with an inflated accuracy)."
        )
    return dataset.subset(keep)


def confusion_matrix(true_labels: Sequence[int], predicted_labels: Sequence[int], num_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class): row = true class, column = prediction (``confusionmat``).

    Example:
        >>> confusion_matrix([0, 0, 1], [0, 1, 1], 2)
        array([[1, 1],
               [0, 1]])
    """
    true_labels = np.asarray(true_labels, dtype=int)
    predicted_labels = np.asarray(predicted_labels, dtype=int)
    if true_labels.shape != predicted_labels.shape:
        raise ValueError(f"{len(true_labels)} true labels but {len(predicted_labels)} predictions; they must pair up.")
    for labels in (true_labels, predicted_labels):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"Labels must be class indices 0..{num_classes - 1}, got {labels.min()}..{labels.max()}.")
    return np.bincount(true_labels * num_classes + predicted_labels, minlength=num_classes**2).reshape(num_classes, num_classes)


def precision_recall(confusion: np.ndarray | Sequence[Sequence[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision and recall from a confusion matrix (rows = true class, columns = predicted).

    - **precision** of class k: of the photos *predicted* k, the share that are k:
      ``confusion[k, k] / column k's sum``. Undefined (NaN) if nothing was predicted k.
    - **recall** of class k: of the photos that *are* k, the share predicted k:
      ``confusion[k, k] / row k's sum`` (MATLAB's row summary, "per-class accuracy").
      Undefined (NaN) if no photo is of class k.

    Returns:
        ``(precision, recall)``, two float arrays with one value per class.

    Example:
        >>> precision_recall([[3, 1], [0, 4]])
        (array([1. , 0.8]), array([0.75, 1.  ]))
    """
    counts = np.asarray(confusion, dtype=float)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"confusion must be a square matrix (rows: true class, columns: predicted), got shape {counts.shape}.")
    correct = np.diag(counts)
    predicted_as, actual = counts.sum(axis=0), counts.sum(axis=1)
    precision = np.divide(correct, predicted_as, out=np.full(len(correct), np.nan), where=predicted_as > 0)
    recall = np.divide(correct, actual, out=np.full(len(correct), np.nan), where=actual > 0)
    return precision, recall


def top_confusions(
    confusion: np.ndarray | Sequence[Sequence[int]], class_names: Sequence[str], *, count: int = 5
) -> list[tuple[str, str, int]]:
    """The most frequent mistakes: ``(true class, predicted class, photos)``, largest first.

    Only off-diagonal cells with at least one photo; ties keep the matrix order (row, then column).
    """
    counts = np.asarray(confusion)
    off_diagonal = [(int(counts[i, j]), i, j) for i in range(len(counts)) for j in range(len(counts)) if i != j and counts[i, j] > 0]
    off_diagonal.sort(key=lambda cell: -cell[0])
    return [(str(class_names[i]), str(class_names[j]), n) for n, i, j in off_diagonal[:count]]


@dataclass(frozen=True)
class Evaluation:
    """Predictions of a classifier on labelled photos, and what they add up to.

    Attributes:
        class_names: the classifier's classes (rows and columns of ``confusion``).
        files: the photos evaluated.
        true_labels, predicted_labels: class indices into ``class_names``.
        probabilities: (N, classes) softmax outputs.
        confusion: rows = true class, columns = predicted class.
    """

    class_names: tuple[str, ...]
    files: tuple[Path, ...]
    true_labels: np.ndarray = field(repr=False)
    predicted_labels: np.ndarray = field(repr=False)
    probabilities: np.ndarray = field(repr=False)
    confusion: np.ndarray = field(repr=False)

    @property
    def accuracy(self) -> float:
        """Share of photos whose predicted class is the true one."""
        return float(np.mean(self.true_labels == self.predicted_labels))

    def per_class_accuracy(self) -> dict[str, float]:
        """Accuracy for each class that has photos here (recall: correct / photos of that class)."""
        return self.per_class_recall()

    def per_class_recall(self) -> dict[str, float]:
        """For each class that has photos here: the share of its photos predicted as it."""
        _, recall = precision_recall(self.confusion)
        return {name: float(recall[i]) for i, name in enumerate(self.class_names) if not np.isnan(recall[i])}

    def per_class_precision(self) -> dict[str, float]:
        """For each class predicted at least once: the share of those predictions that are right."""
        precision, _ = precision_recall(self.confusion)
        return {name: float(precision[i]) for i, name in enumerate(self.class_names) if not np.isnan(precision[i])}

    def top_confusions(self, count: int = 5) -> list[tuple[str, str, int]]:
        """The most frequent mistakes, ``(true class, predicted class, photos)``: :func:`top_confusions`."""
        return top_confusions(self.confusion, self.class_names, count=count)

    def misclassified(self) -> list[tuple[Path, str, str, float]]:
        """``(photo, true class, predicted class, probability of the prediction)``, most confident first."""
        wrong = np.flatnonzero(self.true_labels != self.predicted_labels)
        confidence = self.probabilities[wrong, self.predicted_labels[wrong]]
        return [
            (self.files[i], self.class_names[self.true_labels[i]], self.class_names[self.predicted_labels[i]], float(p))
            for i, p in sorted(zip(wrong, confidence), key=lambda pair: -pair[1])
        ]

    def report(self) -> str:
        """Accuracy, per-class accuracy and the confusion matrix as text (the command line prints it)."""
        present = [i for i, total in enumerate(self.confusion.sum(axis=1)) if total] or list(range(len(self.class_names)))
        width = max([len(self.class_names[i]) for i in present] + [len("per class")])
        lines = [f"accuracy: {self.accuracy:.1%} ({int(np.trace(self.confusion))} of {len(self.files)} photos)", "",
                 f"  {'per class':<{width}}  {'recall':>6}  {'precision':>9}"]  # fmt: skip
        precision = self.per_class_precision()
        for name, value in self.per_class_recall().items():
            shown = f"{precision[name]:9.1%}" if name in precision else f"{'-':>9}"
            lines.append(f"  {name:<{width}}  {value:6.1%}  {shown}")
        columns = sorted(set(present) | set(np.unique(self.predicted_labels).tolist()))
        lines += ["", "confusion matrix (rows: true class, columns: predicted class):"]
        lines.append(" " * (width + 2) + " ".join(f"{j:>4}" for j in range(len(columns))))
        for i in present:
            lines.append(f"{self.class_names[i]:<{width}}  " + " ".join(f"{self.confusion[i, j]:>4}" for j in columns))
        lines.append("columns: " + ", ".join(f"{k}={self.class_names[j]}" for k, j in enumerate(columns)))
        return "\n".join(lines)

    def to_json(self) -> dict:
        """The figures as plain JSON-able values."""
        return {
            "accuracy": self.accuracy,
            "count": len(self.files),
            "class_names": list(self.class_names),
            "per_class_accuracy": self.per_class_accuracy(),
            "per_class_precision": self.per_class_precision(),
            "confusion_matrix": self.confusion.tolist(),
            "misclassified": [
                {"file": str(path), "true": true, "predicted": predicted, "probability": round(p, 4)}
                for path, true, predicted, p in self.misclassified()
            ],
        }


def match_classes(classifier: Classifier, class_names: Sequence[str]) -> np.ndarray:
    """For each data class name, the classifier's output unit of that class, matched BY NAME.

    A folder may list its classes in any order (or be a subset): ``cat`` is compared with
    ``cat``, never "the first folder with the first output".

    Raises:
        ValueError: a data class the classifier does not know, naming it and the known classes.
    """
    return np.asarray([classifier.class_index(name) for name in class_names], dtype=int)


def evaluate(classifier: Classifier, dataset: LabeledImages, *, batch_size: int = 64) -> Evaluation:
    """Classify every photo of ``dataset`` and compare with its folder's class (by name).

    Like the source's ``classify(netTransfer, augimdsValidation)`` + ``confusionmat``: photos are
    resized to the classifier's input size, not augmented. Unreadable photos are skipped with a
    warning naming them.

    Args:
        classifier: any :class:`~course_lib.models.Classifier` (trained here or loaded).
        dataset: labelled photos, e.g. the validation part of :func:`split_each_label`; its
            folder's classes may come in any order.

    Returns:
        An :class:`Evaluation`.

    Example:
        >>> result = evaluate(load_classifier(), valid_set)
        >>> print(result.report())
    """
    to_model_class = match_classes(classifier, dataset.class_names)
    pixels, readable = read_images(dataset, classifier.input_size)
    probabilities = predict_probabilities(classifier, pixels, batch_size=batch_size)
    true_labels = to_model_class[readable.labels]
    predicted = probabilities.argmax(axis=1)
    return Evaluation(
        class_names=tuple(classifier.class_names),
        files=readable.files,
        true_labels=true_labels,
        predicted_labels=predicted,
        probabilities=probabilities,
        confusion=confusion_matrix(true_labels, predicted, len(classifier.class_names)),
    )
