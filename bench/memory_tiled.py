"""Measure the peak memory of a tiled dream of a 4000x3000 photo (issue 3: at most 4 GiB).

Runs in its own process, so the peak resident set size (``ru_maxrss``) is this dream's alone:
the tutorial's Labrador, cropped to 4:3 and upscaled to 4000x3000 px, dreamed with
:func:`course_lib.dream.run_deep_dream` with tiles on the embedded ``dog_breeds`` backbone,
octaves -2..2 (the largest octave is 6760x5070 px), tiles of 512 px, a few steps per octave.
A background thread also samples the resident size every 0.1 s to show where the peak happens.

Usage:
    python bench/memory_tiled.py [--steps-per-octave 2] [--tile-size 512] [--out /tmp/dream_4000.png]
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

GIB = 1024**3
#: The issue's limit for a 4000x3000 tiled dream.
LIMIT_BYTES = 4 * GIB


def resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps-per-octave", type=int, default=2)
    parser.add_argument("--tile-size", type=int, default=512)
    parser.add_argument("--width", type=int, default=4000)
    parser.add_argument("--height", type=int, default=3000)
    parser.add_argument("--timeline", action="store_true", help="print the resident size through the run")
    parser.add_argument("--out", default="", help="save the dream here (PNG), e.g. /tmp/dream_4000.png")
    args = parser.parse_args(argv)

    import tensorflow as tf

    from course_lib import data, dream, images, models

    photo = data.sample_image("labrador")
    height, width = photo.shape[:2]
    crop_width = min(width, round(height * args.width / args.height))
    crop_height = min(height, round(crop_width * args.height / args.width))
    top, left = (height - crop_height) // 2, (width - crop_width) // 2
    photo = photo[top:top + crop_height, left:left + crop_width]
    big = tf.cast(tf.clip_by_value(tf.image.resize(photo, (args.height, args.width), "bicubic"), 0, 255), tf.uint8).numpy()
    del photo

    samples: list[tuple[float, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append((time.perf_counter(), resident_bytes()))
            time.sleep(0.1)

    backbone = models.backbone("dog_breeds")
    sampler = threading.Thread(target=sample, daemon=True)
    before = resident_bytes()
    started = time.perf_counter()
    sampler.start()
    dreamed = dream.run_deep_dream(
        big, backbone, steps_per_octave=args.steps_per_octave, octaves=dream.OCTAVES, tile_size=args.tile_size
    )
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    sizes = dream.octave_sizes(big.shape[:2])
    print(f"photo: {big.shape[1]}x{big.shape[0]} px; octaves -2..2 from {sizes[0][1]}x{sizes[0][0]} "
          f"to {sizes[-1][1]}x{sizes[-1][0]} px; tile {args.tile_size} px; {args.steps_per_octave} steps per octave")
    print(f"resident before the dream: {before / GIB:.2f} GiB; sampled peak during it: "
          f"{max(b for _, b in samples) / GIB:.2f} GiB")
    print(f"peak resident memory (ru_maxrss): {peak / GIB:.2f} GiB (limit {LIMIT_BYTES / GIB:.0f} GiB) "
          f"-> {'OK' if peak <= LIMIT_BYTES else 'TOO MUCH'}")
    print(f"time: {seconds:.0f} s for {5 * args.steps_per_octave} tiled steps "
          f"({seconds / (5 * args.steps_per_octave):.1f} s per step on average)")
    if args.timeline:
        start = samples[0][0]
        slices = [max((b for t, b in samples if lo <= (t - start) / seconds < lo + 0.05), default=0)
                  for lo in np.arange(0, 1, 0.05)]
        print("resident GiB per 5% of the run: " + " ".join(f"{b / GIB:.1f}" for b in slices))
    if args.out:
        images.save(dreamed, args.out)
        print(f"saved {args.out}")
    assert dreamed.shape == big.shape and np.abs(dreamed.astype(int) - big.astype(int)).mean() > 0.5
    return 0 if peak <= LIMIT_BYTES else 1


if __name__ == "__main__":
    sys.exit(main())
