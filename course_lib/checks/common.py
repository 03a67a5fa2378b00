"""What every exercise check shares: the two failures, the success line, calling the student's code.

A check prints one line starting with "Correct" when the exercise is right. When it is not, it
raises :class:`ExerciseNotDone` (the student has not written it yet) or :class:`ExerciseIncorrect`
with a message that says what was expected, what came back and what to try. In Jupyter these
show as that message alone: the check's own source is never printed (it would give the answer
away), while an error inside the student's function still shows the student's line.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


class CheckFailure(AssertionError):
    """Base of the two failures; Jupyter shows only the message (see ``_render_traceback_``)."""

    def _render_traceback_(self) -> list[str]:
        # IPython calls this instead of formatting the traceback, so the check's code (which holds
        # the answer) is not shown: only what is wrong and what to try.
        red, reset = "\x1b[31m", "\x1b[0m"
        return [f"{red}{type(self).__name__}{reset}: {self}"]


class ExerciseNotDone(CheckFailure):
    """The exercise still raises ``NotImplementedError`` (the student edition's stub)."""


class ExerciseIncorrect(CheckFailure):
    """The student's answer runs but disagrees with the expected result."""


def passed(what: str) -> None:
    """Print the one line a check prints on success."""
    print(f"Correct: {what}")


#: A common slip, recognised by the error it raises: (exception type, pattern in its message, hint).
Hint = tuple[type, str, str]


def call_student(function: Callable, *args: Any, hints: Sequence[Hint] = (), **kwargs: Any) -> Any:
    """Call the student's function; turn the stub, and common slips, into a clear message.

    Args:
        function: the student's function.
        hints: errors that a known slip raises, each with the hint to give instead of a long
            TensorFlow traceback, e.g. ``(ValueError, "convert a value \\(None\\)", "call tape.watch(img)")``.
    """
    name = getattr(function, "__name__", "this function")
    try:
        return function(*args, **kwargs)
    except NotImplementedError as error:
        instruction = str(error).rstrip(". ")
        raise ExerciseNotDone(
            f"{name} is not written yet: {instruction}. "
            "Replace the `raise NotImplementedError(...)` line with your code and run the cell again."
        ) from None
    except Exception as error:  # noqa: BLE001 - any slip is reported, never swallowed
        for kind, pattern, hint in hints:
            if isinstance(error, kind) and re.search(pattern, str(error)):
                raise ExerciseIncorrect(f"{name} raised {type(error).__name__} ({first_line(error)}). {hint}") from None
        raise


def first_line(error: BaseException) -> str:
    """The first line of an error's message, without TensorFlow's ``{{function_node ...}}`` prefix."""
    text = re.sub(r"\{\{function_node [^}]*\}\}\s*", "", str(error)).strip()
    return text.splitlines()[0][:200] if text else type(error).__name__


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
