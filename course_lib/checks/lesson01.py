"""Exercise checks of lesson 01."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from course_lib.checks.common import ExerciseIncorrect, assert_close, call_student, passed

__all__ = ['check_normalise', 'check_deprocess']


def _pixel_ramp() -> np.ndarray:
    """A small uint8 test picture holding every value 0..255 in each channel (channels differ)."""
    ramp = np.arange(256, dtype=np.uint8).reshape(8, 32)
    return np.stack([ramp, ramp[::-1], np.roll(ramp, 7, axis=1)], axis=-1)


def check_normalise(student_normalise: Callable) -> None:
    """Lesson 01: ``normalise(uint8 image)`` must equal ``images.to_model_range`` (0 -> -1, 255 -> 1)."""
    from course_lib import images

    picture = _pixel_ramp()
    answer = np.asarray(call_student(student_normalise, picture.copy()))
    if not np.issubdtype(answer.dtype, np.floating):
        raise ExerciseIncorrect(
            f"normalise returned {answer.dtype} values; the network needs floating-point numbers. "
            "Convert first, e.g. img.astype(np.float32)."
        )
    if answer.shape == picture.shape and answer.min() >= -1e-6 and answer.max() <= 1 + 1e-6:
        raise ExerciseIncorrect(
            f"normalise returned values from {answer.min():.2f} to {answer.max():.2f}: that is the range "
            "[0, 1]. The network expects [-1, 1]: 0 must become -1 and 255 must become 1."
        )
    assert_close(answer, images.to_model_range(picture), "normalise(img)", atol=1e-5)
    passed("normalise maps 0..255 to -1..1.")


def check_deprocess(student_deprocess: Callable) -> None:
    """Lesson 01: ``deprocess(values in [-1, 1])`` must give the rounded uint8 image (-1 -> 0, 1 -> 255)."""
    from course_lib import images

    picture = _pixel_ramp()
    # The exact model-range values of every pixel, plus values between them, as a dream produces.
    between = np.linspace(-1, 1, 8 * 32 * 3, dtype=np.float32).reshape(picture.shape)
    for values in (images.to_model_range(picture), between):
        answer = np.asarray(call_student(student_deprocess, values.copy()))
        if answer.dtype != np.uint8:
            raise ExerciseIncorrect(
                f"deprocess returned {answer.dtype} values; an image to show needs uint8. "
                "End with .astype(np.uint8) (after rounding)."
            )
        expected = images.from_model_range(values)
        if answer.shape == expected.shape:
            difference = np.abs(answer.astype(int) - expected.astype(int))
            if difference.max() == 1:
                raise ExerciseIncorrect(
                    f"{int(np.count_nonzero(difference))} pixels are off by one: round before converting to "
                    "uint8 (np.round), because converting 254.99998 truncates it to 254."
                )
        assert_close(answer, expected, "deprocess(img)", atol=0.5, rtol=0)
    passed("deprocess maps -1..1 back to 0..255, rounded.")
