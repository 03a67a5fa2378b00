"""Exercise checks of lesson 00."""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from course_lib.checks.common import ExerciseIncorrect, call_student, expect_number, first_slip, passed

__all__ = ['check_megapixels']

#: (height, width) of the test pictures: a small photo, a 12 MP phone photo, one pixel.
_SHAPES = [(375, 500), (3000, 4000), (1, 1)]


def check_megapixels(student_megapixels: Callable) -> None:
    """Lesson 00: ``megapixels(image)`` must be height * width / 1e6 (on three shapes). A product and a
    division are exact in float64 up to one rounding (1e-16): 1e-9 accepts any order of the operations."""
    for height, width in _SHAPES:
        picture = np.zeros((height, width, 3), dtype=np.uint8)
        value = expect_number(call_student(student_megapixels, picture), "megapixels", "E.g. height * width / 1e6.")
        pixels = height * width
        expected = pixels / 1e6
        dropped = ("the fraction was dropped. Use / (true division), not // or int(), and do not round: 0.1875 "
                   "megapixels is a fine answer.")
        rounded = "do not round inside the function; round only when you print it (f\"{megapixels(photo):.2f}\")."
        mebi = "A megapixel is 1,000,000 pixels (cameras count in millions), not 1024 x 1024: divide by 1e6."
        hint = first_slip(value, expected, [
            (3 * expected, "you counted the 3 colour channels too: megapixels count height x width, so use "
                           "image.shape[0] * image.shape[1] (image.size also counts the channels)."),
            (pixels, "that is the number of pixels, not millions of pixels. Divide by 1e6 (one million)."),
            (3 * pixels, "that is the number of values, not millions of pixels. Divide by 1e6 (one million)."),
            (pixels / 2**20, mebi), (3 * pixels / 2**20, mebi),
            (pixels // 10**6, dropped), (math.floor(expected * 10) / 10, dropped),
            *((round(expected, digits), rounded) for digits in range(4)),
        ], tolerance=1e-9, reach=1e-9, otherwise="it must be height * width / 1e6.")
        if hint:
            raise ExerciseIncorrect(f"megapixels of a {height}x{width} image (shape {picture.shape}): expected "
                                    f"{expected:g}, got {value:g}: {hint}")
    passed("megapixels counts height x width pixels, in millions.")
