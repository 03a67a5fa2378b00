"""Make class images of a dog classifier (MATLAB's deepDreamImage) and write them as a labelled tile.

Examples:
  python -m course_lib classviz --classes Chihuahua,Doberman,bull_mastiff -o breeds.png
  python -m course_lib classviz --classes Doberman --method matlab --iterations 100 -o doberman.png
  python -m course_lib classviz --model data/models/pets_classifier.keras --classes beagle -o beagle.png
  python -m course_lib classviz --model imagenet --classes Chihuahua,Doberman,Leonberg,Norwich_terrier,bull_mastiff,redbone -o source.png

--model is dog_breeds (the embedded 19-breed classifier), imagenet (InceptionV3 with its ImageNet
top, for the MATLAB source's own six breeds; online) or a classifier saved by lesson 07 /
`python -m course_lib train`. The default method is robust, the one whose images show dogs.
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give at least one class name, e.g. --classes Chihuahua,Doberman")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="dog_breeds",
                        help="dog_breeds (embedded, default), imagenet (InceptionV3 with its ImageNet top: the "
                             "source's own breeds, e.g. --classes Leonberg,redbone; downloaded once), or the path of a "
                             "saved classifier (.keras)")
    parser.add_argument("--classes", type=_names, required=True,
                        help="comma-separated class names, e.g. Chihuahua,Doberman (one image each)")
    parser.add_argument("-o", "--output", required=True, help="where to write the tile (.png or .jpg)")
    parser.add_argument("--layer", default=None, help="layer to visualise (default: the class scores)")
    parser.add_argument("--method", default="robust", choices=("robust", "matlab", "naive"),  # classviz.METHODS
                        help="robust (default: readable dogs), matlab (MATLAB's deepDreamImage) or naive")
    parser.add_argument("--iterations", type=int, default=None,
                        help="iterations (matlab: per pyramid level, default 10; robust: default 256; naive: default 30)")
    parser.add_argument("--size", type=int, default=224,
                        help="image side in pixels (default 224); matlab: the start size, which its pyramid enlarges "
                             "(3 levels at 1.4: 224 -> 438 px)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the course's)")
    parser.add_argument("--columns", type=int, default=None, help="images per row (default: near-square)")
    parser.add_argument("--verbose", action="store_true", help="print MATLAB's table of activation strength")


def run(args: argparse.Namespace) -> int:
    from course_lib import classifiers, classviz, files, images, models, plots

    output = Path(args.output)
    if output.suffix.lower() not in images.SAVE_FORMATS:  # fail before minutes of work, not after
        raise ValueError(f"-o {output}: the extension must be one of {', '.join(images.SAVE_FORMATS)}, e.g. tile.png.")
    if args.model == "dog_breeds":
        classifier = models.dog_breed_classifier()
    elif args.model == "imagenet":
        classifier = models.imagenet_classifier()
    else:
        classifier = classifiers.load_classifier(args.model)
    # Check the names first: a typo gets its one-line error at once.
    classviz.resolve_channels(classviz.channel_target(classifier, args.layer), args.classes)
    grows = " (the start of MATLAB's pyramid)" if args.method == "matlab" else ""
    print(f"{args.method} class images of {', '.join(args.classes)} at {args.size} px{grows}.")
    started = time.perf_counter()
    iterations = {} if args.iterations is None else {"num_iterations": args.iterations}
    pictures = classviz.METHODS[args.method](
        classifier, args.layer, args.classes, image_size=args.size, seed=args.seed, verbose=args.verbose, **iterations,
    )
    figure = plots.show_grid(pictures, args.classes, columns=args.columns)
    with files.atomic_path(output) as temporary:
        figure.savefig(temporary, format=output.suffix.lower().lstrip(".").replace("jpg", "jpeg"))
    print(f"Wrote {output} ({len(pictures)} images of {pictures.shape[1]}x{pictures.shape[2]} px, "
          f"{time.perf_counter() - started:.0f} s).")
    return 0
