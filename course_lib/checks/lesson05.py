"""Exercise checks of lesson 05: the work of an octave dream, and the octave loop."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from course_lib import dream, images
from course_lib.checks.common import (ExerciseIncorrect, cached, call_student, expect_number, first_slip, passed,
                                      small_dream_model, smooth_picture)

__all__ = ['check_octave_loop', 'check_pixel_steps']


# --- Exercise 1: pixel-steps, the work of a dream -------------------------------------------------

def _pixel_steps(sizes: Sequence[tuple[int, int]], steps: int) -> float:
    return float(sum(height * width for height, width in sizes) * steps)


#: Rounding the octave sides instead of truncating them moves each side by under 1 px, the check's
#: pixel counts (smallest side 80 px) by under 1 %: accepted; every slip is 10 % or more off.
_ROUNDING = 0.01


def check_pixel_steps(student_pixel_steps: Callable) -> None:
    """Lesson 05: ``pixel_steps(base_shape, steps_per_octave, octaves=(0,), octave_scale=1.30)``: the sum over
    the octaves of height x width x steps, sizes as ``dream.octave_sizes`` (within 1 %: rounding is fine)."""
    cases = [
        ((375, 500), 50, range(-2, 3), 1.30),
        ((293, 236), 100, (0,), 1.30),
        ((160, 120), 20, range(-1, 2), 1.5),
        ((1000, 750), 10, (2, 1, 0), 1.30),
    ]
    for base_shape, steps, octaves, scale in cases:
        call = f"pixel_steps({base_shape}, {steps}, {_show_octaves(octaves)}, {scale})"
        value = expect_number(call_student(student_pixel_steps, base_shape, steps, octaves, scale), call,
                              "End with `return total`.")
        expected = _pixel_steps(dream.octave_sizes(base_shape, octaves, scale), steps)
        hint = first_slip(value, expected, [
            (expected / steps, "You left out the steps: every octave runs steps_per_octave steps over all its "
                               "pixels, so multiply each octave's pixels by steps_per_octave."),
            (len(octaves) * base_shape[0] * base_shape[1] * steps,
             "Every octave counted the photo's own size; octave n has each side times octave_scale ** n."),
            (_pixel_steps([(int(base_shape[0] * scale * n), int(base_shape[1] * scale * n)) for n in octaves], steps),
             "Each side is multiplied by octave_scale ** n (a power), not octave_scale * n."),
            (float(sum(int(base_shape[0] * scale ** n) for n in octaves) * steps),
             "Count pixels, height x width, not one side."),
            (float(sum(base_shape[0] * base_shape[1] * scale ** n for n in octaves) * steps),
             "Both sides grow by octave_scale ** n, so the pixels grow by octave_scale ** (2 * n): "
             "multiply the octave's height by its width."),
            (_pixel_steps(dream.octave_sizes(base_shape, octaves, 1.30), steps), "You used 1.30 instead of the octave_scale argument."),
            (_pixel_steps(dream.octave_sizes(base_shape, range(-2, 3), scale), steps),
             "You used range(-2, 3) instead of the octaves argument."),
        ], tolerance=_ROUNDING, reach=_ROUNDING, otherwise=(
            "Sum, over the octaves n, of int(height * octave_scale ** n) * int(width * octave_scale ** n) * steps_per_octave."))
        if hint:
            raise ExerciseIncorrect(f"{call} returned {value:,.0f}, expected {expected:,.0f}. {hint}")
    passed("pixel_steps adds up each octave's height x width x steps.")


def _show_octaves(octaves: Any) -> str:
    return repr(octaves) if not isinstance(octaves, range) else f"range({octaves.start}, {octaves.stop})"


# --- Exercise 2: the octave loop ------------------------------------------------------------------

def _fake_dream(img: Any) -> Any:
    """What the checks' stand-in for ``dream_octave`` does to a picture: a fixed change of every value."""
    return 0.8 * img + 0.2 * tf.sin(3.0 * img + 1.0)


class _Recorder:
    """A stand-in for ``dream_octave(img, steps)`` that records the size and steps of every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], Any]] = []

    def __call__(self, img: Any, steps: Any) -> Any:
        img = tf.cast(img, tf.float32)
        with contextlib.suppress(TypeError, ValueError):  # a tensor of steps is recorded as a number
            steps = int(steps)
        shape = tuple(int(side) for side in img.shape)
        if len(shape) != 3:
            raise ExerciseIncorrect(f"dream_octave was given a picture of shape {shape}: pass the picture itself, "
                                    "(height, width, 3), with no batch axis.")
        self.calls.append((shape, steps))
        return _fake_dream(img)


def _octave_loop(img: Any, dream_octave: Callable, steps: int, octaves: Sequence[int], scale: float) -> Any:
    """The right loop, ending at the image's own size."""
    base_shape = tuple(img.shape[:2])
    for size in dream.octave_sizes(base_shape, octaves, scale):
        img = dream_octave(tf.image.resize(img, size), steps)
    return tf.image.resize(img, base_shape)


def _size_hint(seen: list[tuple[int, int]], base: tuple[int, int], octaves: Sequence[int], scale: float) -> str:
    """Recognise a wrong list of octave sizes by the slip that makes it."""
    expected = dream.octave_sizes(base, octaves, scale)
    compounded, current = [], base
    for n in octaves:
        current = (int(current[0] * scale ** n), int(current[1] * scale ** n))
        compounded.append(current)
    slips = [
        (compounded, "Each size must come from the *base* shape (the photo's, read once before the loop), not from "
                     "the image as it is now: after the first octave it is already resized, so the factors compound."),
        ([(int(base[0] * scale * n), int(base[1] * scale * n)) for n in octaves],
         "The size is base * octave_scale ** n (a power), not octave_scale * n."),
        (expected[::-1], "The octaves ran largest first: run them in the order given (range(-2, 3): smallest "
                         "first), so patterns begun small grow with the picture."),
        ([(round(base[0] * scale ** n), round(base[1] * scale ** n)) for n in octaves],
         "You rounded the sizes; like the tutorial (tf.cast to int32), drop the fraction."),
        ([(w, h) for h, w in expected], "Height and width are swapped: sizes are (height, width), like img.shape."),
        ([base, *expected[:-1]], "Each octave must resize first and then dream: the first dream ran at the "
                                 "photo's own size."),
        (dream.octave_sizes(base, octaves, 1.30), "You used 1.30 instead of the octave_scale argument."),
        (dream.octave_sizes(base, range(-2, 3), scale), "You used range(-2, 3) instead of the octaves argument."),
        (dream.octave_sizes(base, range(-2, 3), 1.30), "You used range(-2, 3) and 1.30 instead of the octaves and "
                                                       "octave_scale arguments."),
    ]
    hint = first_slip(seen, expected, slips, tolerance=0, reach=0, otherwise="")
    if hint or len(seen) == len(expected):
        return hint or "Octave n has each side of the base shape times octave_scale ** n, fraction dropped."
    return f"dream_octave must run once per octave: {len(expected)} times here, not {len(seen)}."


#: Errors that common slips of the octave loop raise, with the fix.
_LOOP_HINTS = [
    (Exception, "must be >= 0|must be positive",
     "An octave size came out zero or negative: the size is base * octave_scale ** n (a power, "
     "never negative), not octave_scale * n."),
    (TypeError, "to EagerTensor of dtype int32",
     "The base shape is whole numbers (int32) and octave_scale ** n is not: cast first, "
     "tf.cast(base_shape, tf.float32) * octave_scale ** n, then back with tf.cast(..., tf.int32)."),
    (ValueError, "'size' must be a 1-D int32 Tensor",
     "tf.image.resize needs whole-number sizes: tf.cast(new_shape, tf.int32) (or int(...) for each side), "
     "which drops the fraction like the tutorial."),
]


def check_octave_loop(student_loop: Callable) -> None:
    """Lesson 05: ``run_deep_dream_with_octaves(img, dream_octave, steps_per_octave, octaves, octave_scale)``
    must, for each octave n in order, resize to ``int(base * octave_scale ** n)`` (base read once), keep
    ``dream_octave(img, steps_per_octave)``, and resize back to the base at the end: first with a recording
    stand-in for ``dream_octave``, then against ``dream.run_deep_dream`` with a small model."""
    name = "run_deep_dream_with_octaves"
    cases = [((47, 61), (1, 2), 1.30, 3), ((47, 61), range(-2, 3), 1.30, 3), ((52, 38), (-1, 0, 1), 1.5, 2)]
    for base, octaves, scale, steps in cases:
        img = tf.random.stateless_uniform((*base, 3), seed=(5, sum(base)), minval=-1, maxval=1)
        call = f"{name}(img of {base[0]}x{base[1]}, dream_octave, {steps}, {_show_octaves(octaves)}, {scale})"
        recorder = _Recorder()
        answer = call_student(student_loop, img, recorder, steps, octaves, scale, hints=_LOOP_HINTS)
        if not recorder.calls:
            raise ExerciseIncorrect(f"{call} never called dream_octave: each octave calls "
                                    "img = dream_octave(img, steps_per_octave) after resizing.")
        wrong_steps = [given for _, given in recorder.calls if given != steps]
        if wrong_steps:
            raise ExerciseIncorrect(f"{call} called dream_octave(img, {wrong_steps[0]!r}); pass steps_per_octave "
                                    f"({steps} here) as its second argument.")
        seen = [shape[:2] for shape, _ in recorder.calls]
        expected_sizes = dream.octave_sizes(base, octaves, scale)
        if seen != expected_sizes:
            raise ExerciseIncorrect(f"{call} dreamed at sizes {seen}; expected {expected_sizes}. "
                                    f"{_size_hint(seen, base, octaves, scale)}")
        if answer is None:
            raise ExerciseIncorrect(f"{call} returned nothing; end with `return img`.")
        result = np.asarray(answer, dtype=np.float64)
        if result.shape[:2] != base:
            last = " (the last octave's size)" if result.shape[:2] == expected_sizes[-1] else ""
            raise ExerciseIncorrect(f"{call} returned a picture of {result.shape[0]}x{result.shape[1]}{last}; it must "
                                    f"come back at the base size {base[0]}x{base[1]}: after the loop, resize once more "
                                    "to the base shape.")
        # The same resizes and stand-in dream as the loop: a change 5 % off is another loop (see first_slip).
        hint = first_slip(result, _octave_loop(img, lambda picture, _: _fake_dream(picture), steps, octaves,
                                               scale).numpy(), [
            (_octave_loop(img, lambda picture, _: picture, steps, octaves, scale).numpy(),
             "dream_octave's result was dropped: keep it, img = dream_octave(img, steps_per_octave)."),
            (tf.image.resize(_fake_dream(tf.image.resize(img, expected_sizes[-1])), base).numpy(),
             "Each octave started again from the photo: resize the dream so far (img), so every octave builds on "
             "the one before."),
        ], start=img, otherwise=("Resize the dream so far to the octave's size (tf.image.resize), dream on it, keep "
                                 "the result; resize back to the base size after the loop."))
        if hint:
            raise ExerciseIncorrect(f"{call} returned the wrong picture. {hint}")

    # The real thing: the same dream as the library's octave loop, with a small model.
    # The small model's compiled dream step, plain Keras and float32: the fast graph would print notes.
    engine = cached(("small engine", small_dream_model()),
                    lambda: dream.DeepDream(small_dream_model(), optimize=False, precision="float32"))
    step_size, steps, octaves = 0.05, 3, range(-2, 3)

    def dream_octave(picture: Any, steps: int) -> Any:
        return engine(tf.cast(picture, tf.float32), tf.constant(int(steps)), tf.constant(step_size))[1]

    photo = smooth_picture(61, 83)
    expected = dream.run_deep_dream(photo, engine, steps, step_size, octaves=octaves, show_progress=False)
    answer = call_student(student_loop, tf.constant(images.to_model_range(photo)), dream_octave, steps, octaves, 1.30,
                          hints=_LOOP_HINTS)
    result = images.from_model_range(np.asarray(answer, dtype=np.float32))
    difference = np.abs(result.astype(int) - expected.astype(int))
    if difference.max() > 2:
        raise ExerciseIncorrect("On a 61x83 photo with a small model, your loop's dream differs from "
                                f"dream.run_deep_dream(..., octaves=range(-2, 3)) by up to {difference.max()} levels "
                                "of 255. Keep the picture in [-1, 1] as dream_octave returns it; resize with "
                                "tf.image.resize (bilinear).")
    passed("your octave loop dreams smallest first at base * octave_scale ** n and returns at the base size: "
           "the same dream as dream.run_deep_dream.")
