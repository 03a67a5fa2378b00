"""Evaluate a saved classifier on a folder of class sub-folders: accuracy, per class, confusion matrix.

Classes are matched by name, so the folder may list them in any order or hold only some of them.
Photos the classifier was trained or validated on (recorded in the .keras file) are left out unless
--include-training is given, so the figures are about photos the model has not seen.

Examples:
  python -m course_lib evaluate --model data/models/pets.keras --data data/samples/pets
  python -m course_lib evaluate --model pets.keras --data held_out/ --json > result.json
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a classifier saved by `train` (.keras)")
    parser.add_argument("--data", required=True, help="folder with one sub-folder of photos per class")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of text")
    parser.add_argument("--include-training", action="store_true",
                        help="also evaluate photos the classifier was trained or validated on (inflates the accuracy)")


def run(args: argparse.Namespace) -> int:
    from course_lib import classifiers, data, metrics

    info = classifiers.classifier_info(args.model)
    classifier = classifiers.load_classifier(args.model)
    dataset = data.image_folder(args.data)
    note = f"{len(dataset)} photos"
    if not args.include_training:
        fair = metrics.unseen(dataset, info)
        if len(fair) < len(dataset):
            note = f"{len(fair)} photos ({len(dataset) - len(fair)} left out: the classifier was trained or validated on them)"
        dataset = fair
    previous = warnings.showwarning
    warnings.showwarning = lambda message, *_, **__: print(f"warning: {message}", file=sys.stderr)
    try:
        result = metrics.evaluate(classifier, dataset)
    finally:
        warnings.showwarning = previous
    if args.json:
        print(json.dumps(result.to_json(), indent=1))
    else:
        print(f"Evaluated {note} from {args.data}.")
        print(result.report())
    return 0
