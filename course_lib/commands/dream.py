"""Dream a photo with the TensorFlow tutorial's octave DeepDream and write a PNG.

Examples:
  python -m course_lib dream photo.jpg -o dream.png
  python -m course_lib dream photo.jpg -o dream.png --backbone dog_breeds --layers block_8_expand_relu,block_12_expand_relu
  python -m course_lib dream big.jpg -o big_dream.png --max-dim 0 --tile-size 512   # tiled, any size
  python -m course_lib dream photo.jpg -o dream.png --frames dream.gif                # and watch it form
"""
from __future__ import annotations

import argparse
import re
import time
from pathlib import Path


def parse_octaves(text: str) -> range | list[int]:
    """``-2..2`` -> range(-2, 3); ``-1,0,1`` -> [-1, 0, 1]; ``0`` -> [0]."""
    text = text.strip()
    span = re.fullmatch(r"(-?\d+)\.\.(-?\d+)", text)
    if span:
        first, last = int(span.group(1)), int(span.group(2))
        if last < first:
            raise argparse.ArgumentTypeError(f"octaves {text!r} run backwards; write the smaller first, e.g. -2..2")
        return range(first, last + 1)
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"octaves {text!r} not understood; write e.g. -2..2 or -1,0,1") from None


def _layers(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", help="the photo: a path or an http(s) URL")
    parser.add_argument("-o", "--output", required=True, help="where to write the dream (.png or .jpg)")
    parser.add_argument("--backbone", default="auto",
                        help="inception_v3, mobilenet_v2, dog_breeds or auto (default: auto; it says what it chose)")
    parser.add_argument("--layers", type=_layers, default=None,
                        help="comma-separated layer names (default: the backbone's, e.g. mixed3,mixed5)")
    parser.add_argument("--steps", type=int, default=50, help="gradient-ascent steps per octave (tutorial: 50)")
    parser.add_argument("--step-size", type=float, default=0.01, help="step size (tutorial: 0.01)")
    parser.add_argument("--octaves", type=parse_octaves, default=range(-2, 3),
                        help="octave numbers, e.g. -2..2 (tutorial) or -1,0,1")
    parser.add_argument("--octave-scale", type=float, default=1.30, help="size ratio between octaves (tutorial: 1.30)")
    parser.add_argument("--max-dim", type=int, default=500,
                        help="shrink the photo so its longer side is at most this (tutorial: 500; 0 keeps it)")
    parser.add_argument("--tile-size", type=int, default=None,
                        help="dream in tiles of this size (for large photos; tutorial: 512)")
    parser.add_argument("--seed", type=int, default=None,
                        help="seed of the random tile rolls, so the same seed gives the same tiled dream "
                             "(default: the course's seed; the untiled dream has nothing random)")
    parser.add_argument("--frames", default=None,
                        help="also write the dream forming as an animation (.gif or .webp), a frame every "
                             "--frame-every steps and at the end of every octave")
    parser.add_argument("--frame-every", type=int, default=10, help="steps between two frames (default 10)")


def run(args: argparse.Namespace) -> int:
    from course_lib import dream, images, models, plots

    if args.max_dim < 0:
        raise ValueError(f"--max-dim is {args.max_dim}; use a positive number of pixels, or 0 to keep the photo's size.")
    output = Path(args.output)
    if output.suffix.lower() not in images.SAVE_FORMATS:  # fail before minutes of dreaming, not after
        raise ValueError(f"-o {output}: the extension must be one of {', '.join(images.SAVE_FORMATS)}, e.g. dream.png.")
    if args.frames is not None and Path(args.frames).suffix.lower() not in plots.ANIMATION_FORMATS:
        raise ValueError(f"--frames {args.frames}: the extension must be one of "
                         f"{', '.join(plots.ANIMATION_FORMATS)}, e.g. dream.gif.")
    if args.tile_size is not None and args.tile_size <= 0:  # 0 must not quietly mean "no tiles"
        raise ValueError(f"--tile-size is {args.tile_size}; use a positive number of pixels such as 512, "
                         f"or leave --tile-size out to dream without tiles.")
    photo = images.load(args.input, max_dim=args.max_dim or None)
    backbone = models.backbone(args.backbone)
    dream_model = models.feature_extractor(backbone, args.layers)
    print(f"Dreaming {photo.shape[1]}x{photo.shape[0]} px with {backbone.name} "
          f"on {', '.join(args.layers or backbone.dream_layers)}.")
    started = time.perf_counter()
    frames = [] if args.frames is not None else None
    result = dream.run_deep_dream(
        photo, dream_model, steps_per_octave=args.steps, step_size=args.step_size,
        octaves=args.octaves, octave_scale=args.octave_scale, tile_size=args.tile_size, seed=args.seed,
        frames=frames, frame_every=args.frame_every,
    )
    path = images.save(result, args.output)
    print(f"Wrote {path} in {time.perf_counter() - started:.1f} s.")
    if frames is not None:
        animation = plots.animate(frames).save(args.frames)
        print(f"Wrote {animation} ({len(frames)} frames, {animation.stat().st_size / 1e3:.0f} kB).")
    return 0
