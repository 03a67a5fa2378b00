"""Exercise checks: compare a student's function with the library's, and say clearly what differs.

A check prints one line starting with "Correct" when the exercise is right. When it is not, it
raises :class:`ExerciseNotDone` (the student has not written it yet) or :class:`ExerciseIncorrect`
with a message that says what was expected and what came back, so a notebook run stops at the
first wrong exercise, in CI as for a student.

Every check is a function ``check_<what>(student_function)`` and is deterministic: its printed
line is the same in fast and full mode, so notebooks mark check cells ``# NBVAL_CHECK_OUTPUT``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


class ExerciseNotDone(AssertionError):
    """The exercise still raises ``NotImplementedError`` (the student edition's stub)."""


class ExerciseIncorrect(AssertionError):
    """The student's answer runs but disagrees with the expected result."""


def passed(what: str) -> None:
    """Print the one line a check prints on success."""
    print(f"Correct: {what}")


def call_student(function: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call the student's function, turning the student-edition stub into a clear message."""
    try:
        return function(*args, **kwargs)
    except NotImplementedError as error:
        raise ExerciseNotDone(
            f"{getattr(function, '__name__', 'this function')} is not written yet: {error}. "
            "Replace the `raise NotImplementedError(...)` line with your code and run the cell again."
        ) from None


def assert_close(actual: Any, expected: Any, what: str, *, atol: float = 1e-4, rtol: float = 1e-4) -> None:
    """Compare numbers or arrays; on a mismatch say shapes, the largest difference and an example."""
    actual_array = np.asarray(actual, dtype=np.float64)
    expected_array = np.asarray(expected, dtype=np.float64)
    if actual_array.shape != expected_array.shape:
        raise ExerciseIncorrect(
            f"{what}: expected shape {expected_array.shape}, got {actual_array.shape}."
        )
    if not np.allclose(actual_array, expected_array, atol=atol, rtol=rtol):
        difference = np.abs(actual_array - expected_array)
        worst = np.unravel_index(int(np.argmax(difference)), difference.shape) if difference.shape else ()
        raise ExerciseIncorrect(
            f"{what}: values differ by up to {float(difference.max()):.4g} "
            f"(at index {tuple(int(i) for i in worst)}: expected {float(expected_array[worst]):.4g}, "
            f"got {float(actual_array[worst]):.4g})."
        )


# ---------------------------------------------------------------------------------------------
# The checks of each lesson follow, in lesson order. Each says what it compares in its docstring.
# ---------------------------------------------------------------------------------------------
