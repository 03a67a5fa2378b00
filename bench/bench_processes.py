"""Benchmark: the course's dream command against the tutorial's script, each as a whole process.

``bench_dream.py`` times the dreaming alone, inside one process. Someone who runs a command also
waits for Python to import TensorFlow, for the model to load, for the trace and for the file to be
written. This script runs, in turn and several times,

* ``python bench/tutorial_script.py PHOTO`` (the tutorial's code, see that file) and
* ``python -m course_lib dream PHOTO`` (the course's command line),

with the same photo, model and settings (500 px, octaves -2..2, scale 1.30, 50 steps per octave,
step size 0.01), and prints each one's wall-clock and CPU seconds, their ratio, and how far apart
the two dreams are (mean absolute difference in 0-255 levels), next to how far each moved the photo.
They are the same algorithm, but a dream amplifies float rounding (which ReLUs switch on) over 250
steps: at 50 steps per octave they show the same motifs in the same places, and differ in detail.

Usage:
    python bench/bench_processes.py                       # skimage's coffee photo, dog_breeds, 3 rounds
    python bench/bench_processes.py --photo my.jpg --rounds 5 --steps 20
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import PIL.Image

ROOT = Path(__file__).resolve().parent.parent


def commands(photo: Path, out: Path, backbone: str, steps: int) -> dict[str, list[str]]:
    return {
        "tutorial script": [sys.executable, str(ROOT / "bench" / "tutorial_script.py"), str(photo),
                            "-o", str(out / "tutorial.png"), "--backbone", backbone, "--steps", str(steps)],
        "course_lib dream": [sys.executable, "-m", "course_lib", "dream", str(photo), "-o", str(out / "course_lib.png"),
                             "--backbone", backbone, "--steps", str(steps), "--octaves=-2..2", "--max-dim", "500"],
    }


def timed(command: list[str]) -> tuple[float, float]:
    """(wall-clock seconds, CPU seconds of the child) of one run; a failed run stops the benchmark."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photo", type=Path, help="photo to dream (default: scikit-image's coffee, 600x400)")
    parser.add_argument("--backbone", default="dog_breeds", choices=["dog_breeds", "inception_v3", "mobilenet_v2"],
                        help="the network (default dog_breeds; the others need their ImageNet weights in the Keras cache)")
    parser.add_argument("--steps", type=int, default=50, help="steps per octave (tutorial: 50)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each command, interleaved (default 3)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        photo = args.photo
        if photo is None:
            import skimage.data

            photo = out / "coffee.jpg"
            PIL.Image.fromarray(skimage.data.coffee()).save(photo, quality=95)
        runs = commands(photo, out, args.backbone, args.steps)
        print(f"photo {photo.name}, {args.backbone}, octaves -2..2, {args.steps} steps per octave, "
              f"{args.rounds} rounds, interleaved; {os.cpu_count()} CPUs, "
              f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'default')}")
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
        for round_number in range(args.rounds):
            for name in runs if round_number % 2 == 0 else reversed(runs):
                times[name].append(timed(runs[name]))
                print(f"  round {round_number + 1}: {name} {times[name][-1][0]:.1f} s")
        for name, values in times.items():
            walls, cpus = [wall for wall, _ in values], [cpu for _, cpu in values]
            print(f"{name:16s} wall {statistics.median(walls):6.1f} s ({min(walls):.1f}-{max(walls):.1f}), "
                  f"CPU {statistics.median(cpus):6.1f} s")
        tutorial, course = ([wall for wall, _ in times[name]] for name in runs)
        per_round = [t / c for t, c in zip(tutorial, course)]
        print(f"course_lib dream is {statistics.median(tutorial) / statistics.median(course):.2f}x the tutorial "
              f"script as a whole process (per round {min(per_round):.2f}-{max(per_round):.2f}x)")
        a, b = (np.asarray(PIL.Image.open(out / f"{name}.png").convert("RGB"), np.float32)
                for name in ("tutorial", "course_lib"))
        original = PIL.Image.open(photo).convert("RGB")
        original.thumbnail((500, 500))
        original = np.asarray(original, np.float32)
        if a.shape == b.shape == original.shape:
            print(f"the two dreams differ by {np.abs(a - b).mean():.1f} levels of 255 on average "
                  f"({a.shape[1]}x{a.shape[0]} px); each differs from the photo by "
                  f"{np.abs(a - original).mean():.1f} (tutorial) and {np.abs(b - original).mean():.1f} (course_lib)")
        else:
            print(f"the dreams and the photo have different sizes: {a.shape}, {b.shape} and {original.shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
