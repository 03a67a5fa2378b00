"""Exercise checks of lesson 00."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from course_lib.checks.common import ExerciseIncorrect, assert_close, call_student, passed

__all__ = ['check_megapixels']


def check_megapixels(student_megapixels: Callable) -> None:
    """Compare the student's ``megapixels(image)`` with height * width / 1e6 on three shapes."""
    for height, width in [(375, 500), (3000, 4000), (1, 1)]:
        picture = np.zeros((height, width, 3), dtype=np.uint8)
        answer = call_student(student_megapixels, picture)
        expected = height * width / 1e6
        if answer is None:
            raise ExerciseIncorrect("megapixels returned nothing; end the function with `return ...`.")
        assert_close(answer, expected, f"megapixels of a {height}x{width} image")
    passed("megapixels counts height x width pixels, in millions.")
