"""The toolkit every exercise check uses: the two failures, the success line, calling the student's
code, reading what it returned, and naming the slip closest to a wrong answer.

A check prints one line starting with "Correct" when the exercise is right. When it is not, it
raises :class:`ExerciseNotDone` (the student has not written it yet) or :class:`ExerciseIncorrect`
with a message that says what was expected, what came back and what to try. In Jupyter these
show as that message alone: the check's own source is never printed (it would give the answer
away), while an error inside the student's function still shows the student's line.

One way to do each thing:

- :func:`call_student` calls the student's code, quietly, and turns known errors into hints;
- :func:`expect_pair` and :func:`expect_number` read a pair or one number from the answer;
- :func:`first_slip` decides: correct, the slip whose result is closest, or neither;
- :func:`assert_close` compares exact things (counts, a few values) and says where they differ.
"""
from __future__ import annotations

import contextlib
import functools
import io
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


# --- Calling the student's code ------------------------------------------------------------------

#: A common slip, recognised by the error it raises: (exception type, pattern in its message, hint).
Hint = tuple[type, str, str]

_NOISE = re.compile(r"\x1b\[[0-9;]*m|\{\{function_node [^}]*\}\}\s*")


def readable(error: BaseException) -> str:
    """An error's message without ANSI colours, TensorFlow's ``{{function_node ...}}`` prefix and
    its ``[Op:...]`` suffix: the words a student can read."""
    text = getattr(error, "message", None) or str(error)
    return re.sub(r"\s*\[Op:[^\]]*\]\s*$", "", _NOISE.sub("", text).strip())


def first_line(error: BaseException) -> str:
    """The first line of an error's readable message (at most 200 characters)."""
    text = readable(error)
    return text.splitlines()[0][:200] if text else type(error).__name__


def _quote(message: str, found: re.Match) -> str:
    """The words of ``message`` around a hint's match: its line (from the match on if the line is
    long, as Keras's are), to the end of that sentence, at most 160 characters."""
    start = message.rfind("\n", 0, found.start()) + 1
    line = message[start:].split("\n", 1)[0]
    if len(line) > 160:
        line = message[found.start():].split("\n", 1)[0]
    return line.split(". ", 1)[0].strip()[:160]


def call_student(function: Callable, *args: Any, hints: Sequence[Hint] = (), **kwargs: Any) -> Any:
    """Call the student's function quietly; turn the stub, and known slips, into a clear message.

    Quiet: what the student's code prints (the tutorial's ``print("Tracing")``, say) is kept out
    of the check's output, which is one line that notebooks compare (``# NBVAL_CHECK_OUTPUT``).
    A ``NotImplementedError`` (the stub) becomes :class:`ExerciseNotDone`. An error that matches
    one of ``hints`` becomes :class:`ExerciseIncorrect` quoting the matched words of the message
    (TensorFlow's can be pages long: "in user code:", a stack, Keras's dump of the input) and the
    hint. Any other error is raised unchanged, so the student sees their own line. A check's own
    stand-in (e.g. a recorder passed as an argument) may raise a :class:`CheckFailure`: it passes.

    Args:
        function: the student's function (or object to call).
        hints: errors that a known slip raises, each with the hint to give instead of a long
            traceback, e.g. ``(ValueError, "convert a value \\(None\\)", "call tape.watch(img)")``.
    """
    name = getattr(function, "__name__", "this function")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return function(*args, **kwargs)
    except CheckFailure:
        raise
    except NotImplementedError as error:
        instruction = str(error).rstrip(". ")
        raise ExerciseNotDone(
            f"{name} is not written yet: {instruction}. "
            "Replace the `raise NotImplementedError(...)` line with your code and run the cell again."
        ) from None
    except Exception as error:  # noqa: BLE001 - any slip is reported, never swallowed
        message = readable(error)
        for kind, pattern, hint in hints:
            found = re.search(pattern, message)
            if isinstance(error, kind) and found:
                raise ExerciseIncorrect(f"{name} raised {type(error).__name__} ({_quote(message, found)}). {hint}") from None
        raise


# --- Reading the answer --------------------------------------------------------------------------


def expect_pair(answer: Any, what: str, names: str, how: str) -> tuple[Any, Any]:
    """The student's answer as a pair, or a message: ``{what} returned ...; expected a pair {names}: {how}``.

    Example: ``loss, img = expect_pair(answer, "DeepDream", "(loss, img)", "end with `return loss, img`")``.
    """
    if isinstance(answer, (tuple, list)) and len(answer) == 2:
        return answer[0], answer[1]
    got = f"a {type(answer).__name__} of {len(answer)}" if isinstance(answer, (tuple, list)) else type(answer).__name__
    raise ExerciseIncorrect(f"{what} returned {got}; expected a pair {names}: {how}.")


def expect_number(value: Any, what: str, how: str = "") -> float:
    """The student's answer as one float, or a message saying it must be one number (a scalar).

    ``how`` says how to make it one, e.g. "Add the layers' means up with tf.reduce_sum(losses)."
    """
    how = f" {how}" if how else ""
    if value is None:
        raise ExerciseIncorrect(f"{what} returned nothing; it must return one number: end with `return ...`.{how}")
    if np.ndim(value) != 0:
        raise ExerciseIncorrect(f"{what} returned {type(value).__name__} with shape {tuple(np.shape(value))}; "
                                f"it must return one number (a scalar).{how}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ExerciseIncorrect(f"{what} returned {type(value).__name__} {str(value)[:60]!r}; it must return "
                                f"one number.{how}") from None


# --- Right, or which slip ------------------------------------------------------------------------

#: What a slip computes instead, with the hint that names it: (the slipped result, hint).
Slip = tuple[Any, str]

#: Accept an answer whose change is within 5 % of the expected change (relative norm): see first_slip.
TOLERANCE = 0.05
#: Name a slip only if it is at most half as far from the answer as any other candidate.
MARGIN = 0.5


def _change(value: Any, start: Any) -> np.ndarray | None:
    array = np.asarray(value, dtype=np.float64)
    if start is not None:
        if np.shape(start) != array.shape:
            return None
        array = array - np.asarray(start, dtype=np.float64)
    return array if np.all(np.isfinite(array)) else None


def distance(answer: Any, expected: Any, *, start: Any = None) -> float:
    """How far ``answer`` is from ``expected``, relative to the change ``expected`` makes from
    ``start`` (from zero if ``start`` is None): ``||a - e|| / ||e||`` with ``a = answer - start``,
    ``e = expected - start``. Infinite when the shapes differ or a value is not finite."""
    a, e = _change(answer, start), _change(expected, start)
    if a is None or e is None or a.shape != e.shape:
        return float("inf")
    scale = float(np.linalg.norm(e))
    gap = float(np.linalg.norm(a - e))
    return gap / scale if scale > 0 else (0.0 if gap == 0 else float("inf"))


def first_slip(answer: Any, expected: Any, slips: Sequence[Slip], *, start: Any = None,
               tolerance: float = TOLERANCE, margin: float = MARGIN, reach: float = float("inf"),
               otherwise: str = "It differs from the expected result.") -> str | None:
    """None if ``answer`` is right; else the hint of the slip whose result is closest to it, if it
    is clearly the closest; else ``otherwise``.

    The comparison is made on the *change* each result makes from ``start`` (e.g. the input image
    of a dream step; None compares the values themselves, e.g. a loss), on the scale of the
    expected change. With ``a``, ``e`` and ``s_i`` the changes of the answer, the expected result
    and slip i, and ``r = ||a|| / ||e||``::

        d(a, e) = ||a - e|| / ||e||,        d(a, e)**2 = (r - 1)**2 + 2 r (1 - cos(a, e))

    so ``d <= tolerance`` bounds both the relative norm, ``|r - 1| <= tolerance``, and the
    direction, ``cos(a, e) >= 1 - tolerance**2 / 2``: with the default 0.05, the answer's change is
    within 5 % of the expected one in length and within 2.9 degrees of it in direction.

    Why 0.05: a reference computed the same way as the answer (same engine, compiled or eager
    alike) differs from it by float32 round-off only, ``d`` ~ 1e-6. Run by the other kernel family
    (oneDNN or Eigen), round-off can tip a ReLU unit over its kink and change its gradient, and
    the steps amplify that: 3 dream steps of lesson 04's check differ by ``d`` = 3e-3 between the
    two families (max 0.014 on single values; measured on an AMD EPYC), still 15 times below. A
    relative noise of 1e-3 on the gradient moves ``d`` by about 1e-3, on the result by about
    ``1e-3 * ||expected|| / ||e||`` (tests/test_checks_perturbed.py shows both accepted). The
    slips lesson 04's check names move ``d`` by 0.5 or more (one step of two, 0.6; steps of 0.01
    instead of 0.02 or 0.05, 0.5 and 0.8; the raw gradient, 1; the lesson's model instead of the
    argument, 0.9; descent, 1.7 to 2): every one far outside. A check whose nearest slip is closer
    passes its own ``tolerance`` (lesson 06's tiled gradient: 3e-3).

    Why the margin: a slip is named only if it is closest and the runner-up (any other slip, or
    the expected result itself) is at least ``1 / margin`` = twice as far. An answer with a slip
    the check does not know, or equally near two slips, gets ``otherwise`` rather than a wrong
    hint. Candidates that are the same result (within ``tolerance`` of each other) count once, the
    first listed, so a list may hold slips that coincide for some inputs.

    Args:
        answer: the student's result (array, tensor, image or number).
        expected: the reference result, computed the same way as the answer where possible.
        slips: ``(slipped result, hint)`` pairs, in order of preference when two coincide.
        start: what both results changed (the input image), or None.
        reach: name a slip only if the answer is this near it (relative, as ``d``): for an exact
            formula (a count, a product) whose slips are exact too, e.g. ``reach=tolerance``.
    """
    if distance(answer, expected, start=start) <= tolerance:
        return None
    e = _change(expected, start)
    scale = float(np.linalg.norm(e)) if e is not None else 0.0
    candidates = [(expected, None), *slips]
    gaps = [_gap(answer, candidate, start) for candidate, _ in candidates]
    best = int(np.argmin(gaps))
    if not np.isfinite(gaps[best]):
        return otherwise
    same = [i for i, (candidate, _) in enumerate(candidates)
            if _gap(candidates[best][0], candidate, start) <= tolerance * scale]
    others = [gap for i, gap in enumerate(gaps) if i not in same]
    hint = candidates[min(same)][1]
    if hint is None or gaps[best] > reach * scale or (others and gaps[best] > margin * min(others)):
        return otherwise
    return hint


def _gap(answer: Any, candidate: Any, start: Any) -> float:
    """``||a - c||``: the distance between two results (their changes from ``start`` share it)."""
    a, c = _change(answer, start), _change(candidate, start)
    return float(np.linalg.norm(a - c)) if a is not None and c is not None and a.shape == c.shape else float("inf")


@functools.cache
def small_dream_model() -> Any:
    """A tiny feature extractor for checks (lessons 05, 06): three seeded 3x3 convolutions ("valid",
    so the border of a picture matters), two of them outputs, like two dream layers. Fast on any
    picture of a few pixels or more, and the same numbers on every machine and in fast and full mode.
    """
    import keras

    inputs = keras.Input(shape=(None, None, 3))
    x, outputs = inputs, []
    for filters, strides, seed in ((8, 1, 1), (12, 2, 2), (12, 1, 3)):
        x = keras.layers.Conv2D(filters, 3, strides=strides, activation="relu",
                                kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                                bias_initializer=keras.initializers.Constant(0.05))(x)
        outputs.append(x)
    return keras.Model(inputs, outputs[1:], name="small_dream_model")


def assert_close(actual: Any, expected: Any, what: str, *, atol: float = 1e-4, rtol: float = 1e-4,
                 hint: str = "") -> None:
    """Compare numbers or arrays value by value; on a mismatch say the shapes, the largest
    difference and an example, then ``hint`` (what to try). For exact things (counts, a formula of
    a few operations); a result of many operations is compared with :func:`first_slip`."""
    actual_array = np.asarray(actual, dtype=np.float64)
    expected_array = np.asarray(expected, dtype=np.float64)
    hint = f" {hint}" if hint else ""
    if actual_array.shape != expected_array.shape:
        raise ExerciseIncorrect(f"{what}: expected shape {expected_array.shape}, got {actual_array.shape}.{hint}")
    if not np.allclose(actual_array, expected_array, atol=atol, rtol=rtol, equal_nan=True):
        difference = np.abs(actual_array - expected_array)
        difference = np.where(np.isnan(difference), np.inf, difference)
        worst = np.unravel_index(int(np.argmax(difference)), difference.shape) if difference.shape else ()
        raise ExerciseIncorrect(
            f"{what}: values differ by up to {float(difference.max()):.4g} "
            f"(at index {tuple(int(i) for i in worst)}: expected {float(expected_array[worst]):.4g}, "
            f"got {float(actual_array[worst]):.4g}).{hint}"
        )
