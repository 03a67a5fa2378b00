"""Exercise checks of lesson 09: the Laplacian-pyramid normalisation and MATLAB's pyramid loop."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from course_lib import classviz
from course_lib.checks.common import ExerciseIncorrect, call_student, expect_array, first_slip, passed

__all__ = ['check_laplacian_normalize', 'check_pyramid_ascent']

#: Errors that slips in the band normalisation raise, with what to do instead.
_NORMALIZE_HINTS = [
    (TypeError, r"'list' object|unsupported operand type.*list", "a list of bands cannot be divided or added: "
     "work band by band, e.g. [band / rms(band) for band in bands]."),
    (Exception, r"Shapes of all inputs must match", "the bands have different sizes, so TensorFlow cannot make "
     "one tensor of the list: work band by band, e.g. [band / rms(band) for band in bands]."),
    (Exception, r"(?i)incompatible shapes|dimensions must be equal", "an RMS of shape (N,) cannot divide a band of "
     "shape (N, h, w, 3): keep the reduced axes, tf.reduce_mean(..., axis=[1, 2, 3], keepdims=True)."),
]
#: Errors that slips in the pyramid loop raise, with what to do instead.
_LOOP_HINTS = [
    (ValueError, r"at most \d+x\d+ px", "the network takes images of at most tile_size px a side, and from the "
     "second level on the image is larger: give its gradient tile by tile, classviz.tiled_gradient(class_gradient, "
     "image, tile_size), as MATLAB's computeTiledGradient does (never shrink the image to fit)."),
    (Exception, r"(?i)int32 tensor|expected int32|must be int|integer", "sizes and shifts must be whole numbers: "
     "math.floor(height * scale) for the sizes, and roll by the shift random_shift() returns."),
    (Exception, r"(?i)incompatible shapes|dimensions must be equal", "two tensors of different sizes were combined: "
     "add the step to the image of the same level, and roll the gradient back by the shift of the same step."),
]


def _unbalanced_gradient(seed: int, shape: tuple[int, int, int, int]) -> np.ndarray:
    """A gradient like a real one (fine detail dominates), with images and colour channels of very different
    strength and a non-zero mean, so that each wrong way of computing the RMS gives another answer."""
    rng = np.random.default_rng(seed)
    count, height, width, _ = shape
    coarse = tf.image.resize(rng.normal(size=(count, 6, 6, 3)).astype(np.float32) * 0.05, [height, width]).numpy()
    fine = rng.normal(size=shape).astype(np.float32) * 20.0
    image_strength = np.array([1.0, 30.0, 0.2][:count], np.float32)[:, None, None, None]
    channel_strength = np.array([1.0, 0.3, 3.0], np.float32)
    return ((coarse + fine + 0.4) * image_strength * channel_strength).astype(np.float32)


def _normalize_with(gradient, levels: int, rms: Callable, skip_low_pass: bool = False):
    bands = classviz.laplacian_split(gradient, levels)
    normalized = [band if (skip_low_pass and index == 0) else band / rms(band) for index, band in enumerate(bands)]
    return classviz.laplacian_merge(normalized).numpy()


def check_laplacian_normalize(student_laplacian_normalize: Callable) -> None:
    """Lesson 09: ``my_laplacian_normalize(gradient, levels=4)`` splits a batch of gradients into Laplacian
    bands, divides each band of each image by its own RMS and merges them; on a gradient where each common
    slip (see :func:`_normalize_slips`) gives its own answer."""
    gradient = tf.constant(_unbalanced_gradient(9, (2, 48, 40, 3)))
    expected = classviz.laplacian_normalize(gradient, 4).numpy()
    answer = call_student(student_laplacian_normalize, gradient, 4, hints=_NORMALIZE_HINTS)
    if isinstance(answer, (list, tuple)):
        raise ExerciseIncorrect(f"my_laplacian_normalize returned a {type(answer).__name__} of {len(answer)} items "
                                "(the bands?); merge the normalised bands back into one gradient with "
                                "classviz.laplacian_merge(bands).")
    actual = expect_array(answer, "my_laplacian_normalize", expected.shape, "classviz.laplacian_merge(...)",
                          ", the gradient's shape")
    hint = first_slip(actual, expected, _normalize_slips(gradient), tolerance=1e-3, otherwise=(
        "split the gradient into bands with classviz.laplacian_split(gradient, levels), divide each band by its "
        "RMS, tf.sqrt(tf.reduce_mean(tf.square(band), axis=[1, 2, 3], keepdims=True)), and merge them back."))
    if hint:
        raise ExerciseIncorrect(f"my_laplacian_normalize: {hint}")
    again = call_student(student_laplacian_normalize, gradient, 3, hints=_NORMALIZE_HINTS)
    if not np.allclose(again, classviz.laplacian_normalize(gradient, 3).numpy(), atol=1e-3, rtol=1e-3):
        raise ExerciseIncorrect("my_laplacian_normalize(gradient, 3) gave the same kind of answer as with 4 levels: "
                                "pass `levels` on, classviz.laplacian_split(gradient, levels), instead of a fixed "
                                "number.")
    passed("each Laplacian band of each image gets unit RMS before the bands are merged back.")


def _normalize_slips(gradient) -> list[tuple[np.ndarray, str]]:
    """What each common slip in the band normalisation gives on ``gradient``, with its hint."""
    def rms(axis):
        return lambda band: tf.sqrt(tf.reduce_mean(tf.square(band), axis=axis, keepdims=True))

    raw = gradient.numpy()
    return [
        (_normalize_with(gradient, 4, rms(None)),
         "you normalised over the whole batch; each image's band needs its own RMS: reduce over axes [1, 2, 3] "
         "(height, width, colour) with keepdims=True, not over all axes."),
        (_normalize_with(gradient, 4, rms([1, 2])),
         "you gave each colour channel its own RMS; one RMS per image and band: reduce over axes [1, 2, 3], "
         "not [1, 2]."),
        (_normalize_with(gradient, 4, lambda band: tf.math.reduce_std(band, axis=[1, 2, 3], keepdims=True)),
         "you divided by the standard deviation, which first subtracts the mean (the low-pass band has one): "
         "divide by the root mean square, tf.sqrt(tf.reduce_mean(tf.square(band), axis=[1, 2, 3], keepdims=True))."),
        (_normalize_with(gradient, 4, lambda band: tf.reduce_mean(tf.square(band), axis=[1, 2, 3], keepdims=True)),
         "you divided by the mean square; the RMS is its square root: tf.sqrt(tf.reduce_mean(tf.square(band), ...))."),
        (_normalize_with(gradient, 4, lambda band: tf.reduce_mean(tf.abs(band), axis=[1, 2, 3], keepdims=True)),
         "you divided by the mean absolute value; the RMS is tf.sqrt(tf.reduce_mean(tf.square(band), ...))."),
        (_normalize_with(gradient, 4, rms([1, 2, 3]), skip_low_pass=True),
         "the low-pass rest (bands[0], the first in the list) was not normalised: every band gets unit RMS."),
        (raw / np.sqrt(np.mean(raw ** 2, axis=(1, 2, 3), keepdims=True)),
         "you divided the whole gradient by one RMS per image; split it into bands first and divide EACH band "
         "by its own RMS, so that the weak coarse bands are strengthened."),
        (raw / np.sqrt(np.mean(raw ** 2)),
         "you divided the whole gradient by one RMS; split it into bands first and divide EACH band of each "
         "image by its own RMS."),
        (_normalize_with(gradient, 4, lambda band: 1.0 / rms([1, 2, 3])(band)),
         "you multiplied each band by its RMS; divide by it, band / rms."),
        (raw, "the gradient came back unchanged: divide each band by its RMS before merging."),
    ]


# --- MATLAB's pyramid loop ---------------------------------------------------------------------------

#: The check's pyramid: 20x22 start images, 3 levels at scale 1.4 -> 20x22, 28x30, 39x42; tiles of 24 px
#: (the first level fits in one tile, the others need 2x2), 2 steps per level.
_START_SHAPE = (2, 20, 22, 3)
_LEVELS, _SCALE, _ITERATIONS, _STEP, _TILE = 3, 1.4, 2, 0.05, 24


class _StandIns:
    """What the check hands a loop: a class gradient that depends on where a pixel is (a missing roll back
    shows) and refuses images larger than a tile, replayable random shifts (counted), and the normalisation
    (which records each gradient's size)."""

    def __init__(self):
        self.steps: list[tuple[int, int]] = []  # the size of each gradient given to normalize
        self.shifts = 0
        self._rng = np.random.default_rng(42)

    def class_gradient(self, image: Any):
        array = np.asarray(image, dtype=np.float32)
        if array.ndim != 4 or max(array.shape[1:3]) > _TILE:
            raise ValueError(f"class_gradient takes a batch of images of at most {_TILE}x{_TILE} px; got {array.shape}.")
        height, width = array.shape[1:3]
        pattern = np.sin(np.arange(height)[:, None] * 0.7 + np.arange(width)[None, :] * 0.3)[None, :, :, None]
        return tf.constant(np.tanh(2.0 * array) + pattern.astype(np.float32))

    def random_shift(self):
        self.shifts += 1
        return tf.constant(self._rng.integers(1, _TILE, size=2), tf.int32)

    def normalize(self, gradient):
        self.steps.append(tuple(int(n) for n in gradient.shape[1:3]))
        return classviz.laplacian_normalize(gradient, 2)


def _loop(class_gradient, start, random_shift, normalize, levels, scale, iterations, step_size, tile_size, *,
          sizes="floor", roll_back=True, roll=True, tiles=True, method="bicubic", sign=1.0, fixed_step=None):
    """The reference loop, or one of its common slips (what the check compares a student's loop with)."""
    image = tf.convert_to_tensor(start, tf.float32)
    height, width = image.shape[1], image.shape[2]
    if sizes == "down":  # the course's old pyramid: small first, ending at the start size
        plan = [(round(height / scale ** (levels - 1 - k)), round(width / scale ** (levels - 1 - k)))
                for k in range(levels)]  # fmt: skip
    else:
        grow = {"floor": math.floor, "round": round}.get(sizes, math.floor)
        plan, h, w = [], height, width
        for level in range(levels):
            if level > 0 or sizes == "early":
                h, w = ((math.floor(height * scale ** level), math.floor(width * scale ** level)) if sizes == "start"
                        else (grow(h * scale), grow(w * scale)))  # fmt: skip
            plan.append((h, w) if sizes != "none" else (height, width))
    for size in plan:
        if tuple(image.shape[1:3]) != size:
            image = tf.image.resize(image, size, method=method, antialias=sizes == "down")
        for _ in range(iterations):
            shift = random_shift() if roll else tf.zeros([2], tf.int32)
            rolled = tf.roll(image, shift, axis=[1, 2])
            if tiles:
                gradient = classviz.tiled_gradient(class_gradient, rolled, tile_size)
            else:  # the network sees a copy shrunk to one tile
                small = tf.image.resize(rolled, (min(size[0], tile_size), min(size[1], tile_size)), method="bicubic")
                gradient = tf.image.resize(class_gradient(small), size, method="bicubic")
            if roll_back:
                gradient = tf.roll(gradient, -shift, axis=[1, 2])
            image = image + sign * (fixed_step or step_size) * normalize(gradient)
    return image


#: Common slips in the loop: how each differs from the reference, and the hint that names it.
_LOOP_SLIPS = [
    (dict(sizes="down"), "the pyramid went down: it started small (round(H / scale ** (levels - 1 - k))) and ended at "
     "the start size. MATLAB goes UP: the first level is the start images' own size, and before each later level "
     "the image is enlarged, height = floor(height * scale), so more levels give a larger image."),
    (dict(sizes="none"), "the image was never enlarged: every level ran at the start size. Before each level after "
     "the first, enlarge it: height = floor(height * scale), width = floor(width * scale), "
     "tf.image.resize(image, (height, width), method=\"bicubic\")."),
    (dict(sizes="early"), "the image was enlarged before the FIRST level too; MATLAB takes the first level's steps at "
     "the start size (`if octave > 1`) and enlarges only before the later levels."),
    (dict(sizes="round"), "the sizes were rounded; MATLAB floors them: height = floor(height * scale) "
     "(math.floor), which here gives a different size."),
    (dict(sizes="start"), "each level's size was computed from the start size (floor(H * scale ** k)); MATLAB "
     "enlarges the previous level: height = floor(height * scale) at every level, which can differ by a pixel."),
    (dict(tiles=False), "the network saw the image shrunk to one tile and its gradient enlarged back: that throws "
     "away the detail the larger level is for. Give the gradient tile by tile at the image's own size: "
     "classviz.tiled_gradient(class_gradient, image, tile_size)."),
    (dict(roll_back=False), "the gradient was not rolled back: it belongs to the shifted copy, so roll it by -shift "
     "(tf.roll(gradient, -shift, axis=[1, 2])) before the step."),
    (dict(roll=False), "the image was not rolled before its gradient: draw shift = random_shift() each step, take "
     "the gradient of tf.roll(image, shift, axis=[1, 2]) and roll the gradient back by -shift (the jitter, which "
     "also moves the tile borders)."),
    (dict(method="bilinear"), "the image was enlarged bilinearly; use method=\"bicubic\", as MATLAB's resize does."),
    (dict(sign=-1.0), "the step went down the gradient (image - ...), which lowers the class score: add it, "
     "image + step_size * normalize(gradient)."),
    (dict(fixed_step=1.0), "the step was not scaled: image + step_size * normalize(gradient)."),
    (dict(fixed_step=2.0 / 255.0), "the step used classviz.MATLAB_STEP_SIZE; use the step_size argument (the check "
     "passes another value)."),
]


def _run(loop: Callable, **slip) -> tuple[Any, _StandIns]:
    stand_ins = _StandIns()
    start = np.random.default_rng(7).uniform(-0.05, 0.05, size=_START_SHAPE).astype(np.float32)
    arguments = (stand_ins.class_gradient, tf.constant(start), stand_ins.random_shift, stand_ins.normalize)
    options = dict(levels=_LEVELS, scale=_SCALE, iterations=_ITERATIONS, step_size=_STEP, tile_size=_TILE)
    if slip:
        return _loop(*arguments, *options.values(), **slip), stand_ins
    return call_student(loop, *arguments, hints=_LOOP_HINTS, **options), stand_ins


def check_pyramid_ascent(student_pyramid_ascent: Callable) -> None:
    """Lesson 09: ``my_pyramid_ascent(class_gradient, start, random_shift, normalize, levels, scale,
    iterations, step_size, tile_size)`` must do what ``classviz.pyramid_ascent`` (MATLAB's loop) does: on
    :class:`_StandIns`, its steps' sizes and result are compared with the reference and each of _LOOP_SLIPS."""
    answer, seen = _run(student_pyramid_ascent)
    if answer is None:
        raise ExerciseIncorrect("my_pyramid_ascent returned None: end with `return image`.")
    reference, expected = _run(None, sizes="floor")
    if seen.steps == expected.steps and first_slip(answer, reference, [], tolerance=1e-4) is None:
        passed("the images grow from the start size, floor(size * scale) a level, with a jittered, tiled, "
               "normalised gradient step at each iteration.")
        return
    hint = first_slip(answer, reference, [(_run(None, **slip)[0], hint) for slip, hint in _LOOP_SLIPS],
                      tolerance=1e-4, otherwise="")
    if hint:
        raise ExerciseIncorrect(f"my_pyramid_ascent: {hint}")
    steps = _LEVELS * _ITERATIONS
    if not seen.steps:
        raise ExerciseIncorrect("normalize was never called: step along normalize(gradient), once per step.")
    if seen.steps != expected.steps:
        raise ExerciseIncorrect(f"the steps' gradients had sizes {_sizes_text(seen.steps)} (one per call of "
                                f"normalize); expected {_sizes_text(expected.steps)}: {_ITERATIONS} steps at the start "
                                f"size, then {_ITERATIONS} at each larger level, floor(previous * scale), normalize "
                                f"called once per step on the whole image's gradient (the check runs levels={_LEVELS}, "
                                f"scale={_SCALE}, iterations={_ITERATIONS} on {_START_SHAPE[1]}x{_START_SHAPE[2]} "
                                "images).")
    if seen.shifts != steps:
        raise ExerciseIncorrect(f"random_shift() was called {seen.shifts} times; call it once per step ({steps} here), "
                                "just before the gradient, and roll with the shift it returns.")
    raise ExerciseIncorrect("my_pyramid_ascent: the sizes and calls are right, but not the images after the last "
                            "step: each step adds step_size * normalize(gradient), the gradient taken on the image "
                            "rolled by shift (tile by tile) and rolled back by -shift.")


def _sizes_text(sizes: list[tuple[int, int]]) -> str:
    return ", ".join(f"{h}x{w}" for h, w in sizes)
