"""The TensorFlow tutorial's octave DeepDream as one script: photo in, dream out, as a whole process.

``bench/bench_processes.py`` times this script against ``python -m course_lib dream`` with the same
photo, model and settings, each as a fresh process: importing TensorFlow, building the model,
tracing, dreaming and writing the file all count, as they do for someone who runs a command.

The dreaming is the tutorial's own code (``bench_dream.py`` holds it as the tutorial writes it):
the photo shrunk to 500 px with PIL's ``thumbnail``, the ``DeepDream`` module with its input
signature, ``run_deep_dream_simple`` and the octave loop (scale 1.30, octaves -2..2, 50 steps each).
The model comes from ``course_lib.models``, as the course's command builds it, so both processes
load the same network the same way.

Usage:
    python bench/tutorial_script.py photo.jpg -o tutorial_dream.png --backbone dog_breeds
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import PIL.Image  # noqa: E402

from bench_dream import DeepDream, build_dream_model, tutorial_octaves  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photo")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--backbone", default="dog_breeds", choices=["inception_v3", "dog_breeds", "mobilenet_v2"])
    parser.add_argument("--steps", type=int, default=50, help="steps per octave (tutorial: 50)")
    parser.add_argument("--max-dim", type=int, default=500, help="the tutorial's max_dim (500)")
    args = parser.parse_args(argv)

    # The tutorial's download(): open, thumbnail to max_dim, as an array.
    img = PIL.Image.open(args.photo).convert("RGB")
    img.thumbnail((args.max_dim, args.max_dim))
    original_img = np.array(img)

    dream_model, _ = build_dream_model(args.backbone)
    deepdream = DeepDream(dream_model)
    dream = tutorial_octaves(deepdream, original_img, args.steps)
    PIL.Image.fromarray(np.array(dream)).save(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
