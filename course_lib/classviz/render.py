"""The loop around every class-visualisation method: start images, progress, MATLAB's table, output.

Each method (:func:`course_lib.classviz.deep_dream_image`, :func:`naive_class_images`,
:func:`course_lib.classviz.robust_class_images`) checks its arguments, then :func:`prepare`
finds the layer and channels, draws the start images (grey with faint noise, or a photo) and
sets up the report (MATLAB's verbose table, or a progress bar); :func:`finish` checks the result
and applies MATLAB's ``OutputScaling``.

:func:`naive_class_images` lives here as the baseline the other two improve on: the DeepDream
tutorial's normalised gradient step on raw pixels, at one size.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from course_lib import ascent, images, models, validate
from course_lib.classviz.objectives import Channels, ChannelTarget, ModelLike, channel_target, resolve_channels
from course_lib.progress import Progress

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

#: MATLAB's 'OutputScaling' values: each image rescaled to [0, 1], or the raw optimised values.
OUTPUT_SCALINGS = ("linear", "none")
#: Largest image side accepted: a 2048 px image already takes minutes per step on a laptop CPU.
MAX_IMAGE_SIZE = 2048
#: Side of the square output when the model does not say (a classifier's input size wins).
DEFAULT_IMAGE_SIZE = 224
#: render_lapnorm starts from ``np.random.uniform(size=...) + 100``: grey with one grey level of
#: noise. In the model range that is 2/255 of uniform noise around a mid grey.
NOISE_AMPLITUDE = 2.0 / 255.0


@dataclass
class Run:
    """What :func:`prepare` sets up for one call of a method."""

    target: ChannelTarget
    indices: list[int]
    start: np.ndarray  # (N, H, W, 3) float32 in the model range
    rng: np.random.Generator
    report: Callable[[int, int, float, int], None]
    table: "VerboseTable"
    progress: Progress


def prepare(
    model: ModelLike,
    layer: str | None,
    channels: Channels,
    *,
    image_size: int | None,
    initial_image: Any,
    seed: int | None,
    output_scaling: str,
    verbose: bool,
    show_progress: bool,
    total_steps: int,
    title: str,
    every_row: bool = True,
) -> Run:
    """Check the common arguments, find the channels and draw the start images."""
    validate.choice("output_scaling", output_scaling, OUTPUT_SCALINGS)
    seed = validate.seed(seed)
    target = channel_target(model, layer)
    indices = resolve_channels(target, channels)
    min_size = models.min_input_size(target.extractor)  # the smallest side the network accepts
    if image_size is None:
        image_size = target.input_size or DEFAULT_IMAGE_SIZE
    image_size = validate.whole_number("image_size", image_size, low=min_size, high=MAX_IMAGE_SIZE, example=224)
    rng = np.random.default_rng(seed)
    start = initial_images(initial_image, len(indices), image_size, rng, min_size)
    table = VerboseTable(verbose, every_row)
    progress = Progress(total_steps, title, enabled=show_progress and not verbose)
    return Run(target, indices, start, rng, _reporter(table, progress), table, progress)


def finish(run: Run, result: np.ndarray, output_scaling: str) -> np.ndarray:
    """Close the report, refuse a diverged result, and apply MATLAB's 'OutputScaling'."""
    run.table.close()
    run.progress.close("done")
    if not np.isfinite(result).all():
        raise ValueError("The optimisation diverged (NaN values); try fewer iterations or another seed.")
    if output_scaling == "linear":
        low = result.min(axis=(1, 2, 3), keepdims=True)
        high = result.max(axis=(1, 2, 3), keepdims=True)
        result = (result - low) / np.maximum(high - low, 1e-12)
    return result.astype(np.float32)


def naive_class_images(
    model: ModelLike,
    layer: str | None,
    channels: Channels,
    *,
    num_iterations: int = 30,
    image_size: int | None = None,
    initial_image: Any = None,
    output_scaling: str = "linear",
    verbose: bool = True,
    seed: int | None = None,
    show_progress: bool = True,
) -> np.ndarray:
    """Plain gradient ascent on the pixels at one size: the baseline (lesson 09's first picture).

    Each step is the DeepDream tutorial's (:mod:`course_lib.ascent`): the gradient divided by its
    standard deviation, a step of ``ascent.STEP_SIZE``, clipped to [-1, 1]. The classifier soon
    becomes sure, yet the picture is coloured noise: the network reacts to high-frequency
    patterns that people do not see as anything.

    Args:
        model, layer, channels: as :func:`course_lib.classviz.deep_dream_image`.
        num_iterations: gradient steps (default 30, as many as MATLAB's 3 levels x 10).
        image_size, initial_image, output_scaling, verbose, seed, show_progress: as
            :func:`course_lib.classviz.deep_dream_image`.

    Returns:
        float32 array (N, H, W, 3), one image per channel.
    """
    num_iterations = validate.whole_number("num_iterations", num_iterations, low=1, example=30)
    run = prepare(model, layer, channels, image_size=image_size, initial_image=initial_image, seed=seed,
                  output_scaling=output_scaling, verbose=verbose, show_progress=show_progress,
                  total_steps=num_iterations, title="naive class images")  # fmt: skip
    gradient = run.target.pixel_gradient
    channel_ids = tf.constant(run.indices, tf.int32)
    no_shift = tf.zeros([2], tf.int32)
    image = tf.constant(run.start)
    for step in range(1, num_iterations + 1):
        grad, strength = gradient(image, channel_ids, no_shift)
        # The DeepDream step, each image of the batch normalised by its own gradient's spread.
        image = ascent.ascend(image, ascent.normalize(grad, axis=[1, 2, 3]), ascent.STEP_SIZE)
        run.report(step, num_iterations, float(tf.reduce_mean(strength)), 1)
    return finish(run, image.numpy(), output_scaling)


def initial_images(
    initial_image: Any, count: int, image_size: int, rng: np.random.Generator, min_size: int
) -> np.ndarray:
    """(count, H, W, 3) float32 in the model range: grey with faint noise, or the photo."""
    if initial_image is None:
        noise = rng.uniform(-NOISE_AMPLITUDE, NOISE_AMPLITUDE, size=(count, image_size, image_size, 3))
        return noise.astype(np.float32)
    photo = images.load(initial_image, min_size=min_size)
    photo = np.asarray(tf.image.resize(photo, _fit(photo.shape[:2], image_size, min_size), antialias=True))
    photo = np.clip(np.rint(photo), 0, 255).astype(np.uint8)
    return np.repeat(images.to_model_range(photo)[None], count, axis=0)


def _fit(shape: Sequence[int], image_size: int, min_size: int) -> tuple[int, int]:
    height, width = shape
    factor = image_size / max(height, width)
    return max(min_size, round(height * factor)), max(min_size, round(width * factor))


class VerboseTable:
    """MATLAB's verbose table: iteration, activation strength, pyramid level (every row, or about 16)."""

    def __init__(self, enabled: bool, every_row: bool):
        self.enabled, self.every_row = enabled, every_row
        if enabled:
            print("|==============================================|")
            print("|  Iteration  |  Activation  |  Pyramid Level  |")
            print("|             |   Strength   |                 |")
            print("|==============================================|")

    def row(self, iteration: int, total: int, strength: float, level: int) -> None:
        if not self.enabled:
            return
        # The robust method takes hundreds of small steps: print about 16 rows, not all of them.
        if self.every_row or iteration % max(1, total // 16) == 0 or iteration == total:
            print(f"|{iteration:12d} |{strength:13.2f} |{level:16d} |")

    def close(self) -> None:
        if self.enabled:
            print("|==============================================|")


def _reporter(table: VerboseTable, progress: Progress) -> Callable[[int, int, float, int], None]:
    done = [0]

    def report(iteration: int, total: int, strength: float, level: int) -> None:
        done[0] += 1
        table.row(iteration, total, strength, level)
        progress.update(done[0], f"level {level}, activation {strength:.2f}")

    return report
