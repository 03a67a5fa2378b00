"""Exercise checks of lesson 00."""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from course_lib.checks.common import ExerciseIncorrect, assert_close, call_student, passed

__all__ = ['check_megapixels']

#: (height, width) of the test pictures: a small photo, a 12 MP phone photo, one pixel.
_SHAPES = [(375, 500), (3000, 4000), (1, 1)]


def check_megapixels(student_megapixels: Callable) -> None:
    """Lesson 00: ``megapixels(image)`` must be height * width / 1e6 (compared on three shapes).

    Recognises the common slips by their result: counting the colour channels too, pixels not in
    millions, a "megapixel" of 1024 * 1024, floor division, rounding, and swapping nothing else.
    """
    for height, width in _SHAPES:
        picture = np.zeros((height, width, 3), dtype=np.uint8)
        answer = call_student(student_megapixels, picture)
        if answer is None:
            raise ExerciseIncorrect("megapixels returned nothing; end the function with `return ...`.")
        try:
            value = float(answer)
        except (TypeError, ValueError):
            raise ExerciseIncorrect(
                f"megapixels returned {type(answer).__name__} {answer!r}; it must return one number, "
                "e.g. height * width / 1e6."
            ) from None
        pixels = height * width
        expected = pixels / 1e6
        if math.isclose(value, expected, rel_tol=1e-9, abs_tol=1e-12):
            continue
        what = f"megapixels of a {height}x{width} image (shape {picture.shape})"
        if math.isclose(value, 3 * expected, rel_tol=1e-9):
            raise ExerciseIncorrect(
                f"{what}: expected {expected:g}, got {value:g}: you counted the 3 colour channels too: "
                "megapixels count height x width, so use image.shape[0] * image.shape[1] "
                "(image.size also counts the channels)."
            )
        if math.isclose(value, pixels, rel_tol=1e-9) or math.isclose(value, 3 * pixels, rel_tol=1e-9):
            raise ExerciseIncorrect(
                f"{what}: expected {expected:g}, got {value:g}: that is the number of "
                f"{'values' if math.isclose(value, 3 * pixels) else 'pixels'}, not millions of pixels. "
                "Divide by 1e6 (one million)."
            )
        if math.isclose(value, pixels / 2**20, rel_tol=1e-9) or math.isclose(value, 3 * pixels / 2**20, rel_tol=1e-9):
            raise ExerciseIncorrect(
                f"{what}: expected {expected:g}, got {value:g}. A megapixel is 1,000,000 pixels "
                "(cameras count in millions), not 1024 x 1024: divide by 1e6."
            )
        if math.isclose(value, pixels // 10**6) or math.isclose(value, math.floor(expected * 10) / 10):
            raise ExerciseIncorrect(
                f"{what}: expected {expected:g}, got {value:g}: the fraction was dropped. Use / (true "
                "division), not // or int(), and do not round: 0.1875 megapixels is a fine answer."
            )
        if any(math.isclose(value, round(expected, digits)) for digits in range(4)):
            raise ExerciseIncorrect(
                f"{what}: expected {expected:g}, got {value:g}: do not round inside the function; "
                "round only when you print it (f\"{megapixels(photo):.2f}\")."
            )
        assert_close(value, expected, what, atol=0, rtol=1e-9)
    passed("megapixels counts height x width pixels, in millions.")
