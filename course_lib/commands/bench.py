"""Time the TensorFlow tutorial's DeepDream against course_lib's engine, side by side.

Runs bench/bench_dream.py: both implementations dream the same image with the same model and
settings (InceptionV3 mixed3+mixed5, a 500 px image, octaves -2..2), alternating rounds in one
process, and prints steps/s for each and their ratio.

Examples:
  python -m course_lib bench
  python -m course_lib bench --backbone dog_breeds --steps-per-octave 20
"""
from __future__ import annotations

import argparse
import importlib.util
from types import ModuleType

from course_lib.config import COURSE_ROOT

BENCH_SCRIPT = COURSE_ROOT / "bench" / "bench_dream.py"


def _bench_module() -> ModuleType:
    if not BENCH_SCRIPT.is_file():
        raise FileNotFoundError(
            f"The benchmark script {BENCH_SCRIPT} is missing. It ships with the course's source "
            "folder (git clone), not with an installed package."
        )
    spec = importlib.util.spec_from_file_location("bench_dream", BENCH_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backbone", default="inception_v3", choices=["inception_v3", "dog_breeds", "mobilenet_v2"],
                        help="network to dream with (default: the tutorial's InceptionV3; random weights when its "
                             "ImageNet file is not cached, which is fine for timing)")
    parser.add_argument("--size", type=int, default=500, help="longest image side in pixels (default 500)")
    parser.add_argument("--steps-per-octave", type=int, default=10,
                        help="steps per octave for both implementations (the tutorial uses 50; default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds per implementation (default 3)")
    parser.add_argument("--variants", default="tutorial,course_lib",
                        help="comma-separated implementations: tutorial, course_lib, or course_lib with its "
                             "levers changed: course_lib_float32, course_lib_unoptimized, and, in the tutorial's "
                             "own loop, course_lib_neither, course_lib_fold_only, course_lib_gradients_only, "
                             "course_lib_both, course_lib_xla (default: tutorial,course_lib)")
    parser.add_argument("--threads", default="", help="intra,inter op threads, e.g. 2,1 (default: TensorFlow's)")


def run(args: argparse.Namespace) -> int:
    return _bench_module().run(args)
