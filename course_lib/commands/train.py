"""Train a classifier on a folder of class sub-folders (transfer learning) and save it.

The MATLAB source's workflow: a 70/30 split of each class, random reflection, translation and
scaling, a new final layer `new_fc` that learns 10x faster, early stopping on the validation
loss, and the model always saved at the end (one .keras file that keeps the class names).

Examples:
  python -m course_lib train --data data/samples/pets -o data/models/pets.keras
  python -m course_lib train --data my_dogs/ -o dogs.keras --epochs 10 --fine-tune-epochs 0 --seed 7
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="folder with one sub-folder of photos per class")
    parser.add_argument("-o", "--output", required=True, help="where to save the classifier (.keras)")
    parser.add_argument("--backbone", default="auto",
                        help="dog_breeds, inception_v3, mobilenet_v2 or auto (default: auto; it says what it chose)")
    parser.add_argument("--epochs", type=int, default=20,
                        help="most epochs for the new head with the base frozen (early stopping usually ends sooner)")
    parser.add_argument("--fine-tune-epochs", type=int, default=5,
                        help="most epochs with the top of the base trainable too (0 skips fine-tuning)")
    parser.add_argument("--input-size", type=int, default=None,
                        help="square side in pixels the photos are resized to (default: 160, the embedded model's)")
    parser.add_argument("--max-per-class", type=int, default=None, help="use at most this many photos per class")
    parser.add_argument("--learning-rate", type=float, default=None, help="base learning rate (source: 3e-4)")
    parser.add_argument("--seed", type=int, default=None, help="random seed of the split, augmentation and shuffling")


def run(args: argparse.Namespace) -> int:
    from course_lib import classifiers, data, models, training
    from course_lib.config import settings

    output = Path(args.output)
    if output.suffix != ".keras":  # fail now, not after minutes of training
        raise ValueError(f"-o {output}: the classifier is saved as a Keras file; use a name ending in .keras.")
    seed = settings.seed if args.seed is None else args.seed
    previous = warnings.showwarning
    warnings.showwarning = lambda message, *_, **__: print(f"warning: {message}", file=sys.stderr)
    try:
        dataset = data.image_folder(args.data, max_per_class=args.max_per_class)
        train_set, valid_set = data.split_each_label(dataset, data.TRAIN_FRACTION, seed=seed)
        print(f"{len(dataset)} photos in {len(dataset.class_names)} classes, split 70/30 per class (seed {seed}):")
        print(data.count_table(train=train_set, validation=valid_set))
        backbone = models.backbone(args.backbone)
        classifier = classifiers.build_classifier(
            backbone, dataset.class_names,
            # `is None`, not `or`: an explicit 0 must be refused by the validation, not become the default
            input_size=models.DOG_MODEL_INPUT_SIZE if args.input_size is None else args.input_size,
        )
        history = training.train_classifier(
            classifier, train_set, valid_set, epochs=args.epochs, fine_tune_epochs=args.fine_tune_epochs,
            learning_rate=training.LEARNING_RATE if args.learning_rate is None else args.learning_rate, seed=seed,
        )
    finally:
        warnings.showwarning = previous
    saved = classifiers.save_classifier(classifier, output, trained_on=train_set)
    print(f"Trained: {history.summary()}.")
    print(f"Saved the classifier and its {len(classifier.class_names)} class names to {saved}.")
    return 0
