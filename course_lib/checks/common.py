"""The toolkit every exercise check uses. A check prints one "Correct: ..." line, or raises
:class:`ExerciseNotDone` (the stub) or :class:`ExerciseIncorrect` (what was expected, what came back,
what to try); Jupyter shows the message alone, never the check's source (it holds the answer).

One way to do each thing: :func:`call_student` calls the student's code quietly and turns known
errors into hints; :func:`expect_pair`, :func:`expect_number` and :func:`expect_array` read the
answer; :func:`first_slip` decides: correct, the closest slip, or neither; :func:`assert_close`
compares exact things; :func:`cached` builds a check's models and references once.
"""
from __future__ import annotations

import contextlib
import functools
import io
import re
from collections.abc import Callable, Sequence
from typing import Any

import keras
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


def last_line(error: BaseException) -> str:
    """What went wrong, from the last line of an error's readable message (where a tracing error,
    after "in user code:" and a stack, says it), with the error's type, at most 160 characters."""
    lines = [line.strip() for line in readable(error).splitlines() if line.strip()]
    last = lines[-1][:160] if lines else type(error).__name__
    return last if last.startswith(type(error).__name__) else f"{type(error).__name__}: {last}"


def _quote(message: str, found: re.Match) -> str:
    """The words of ``message`` around a hint's match: its line (from the match on if the line is
    long, as Keras's are), to the end of that sentence, at most 160 characters."""
    start = message.rfind("\n", 0, found.start()) + 1
    line = message[start:].split("\n", 1)[0]
    if len(line) > 160:
        line = message[found.start():].split("\n", 1)[0]
    return line.split(". ", 1)[0].strip()[:160]


def call_student(function: Callable, *args: Any, hints: Sequence[Hint] = (), **kwargs: Any) -> Any:
    """Call the student's function quietly (what it prints stays out of the check's one line);
    turn the stub (``NotImplementedError``) into :class:`ExerciseNotDone`, and an error that matches
    one of ``hints``, e.g. ``(ValueError, "convert a value \\(None\\)", "call tape.watch(img)")``,
    into :class:`ExerciseIncorrect` quoting the matched words (TensorFlow's messages can be pages
    long) and the hint. Other errors, and a check's own stand-in's :class:`CheckFailure`, pass.
    """
    name = getattr(function, "__name__", "this function")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return function(*args, **kwargs)
    except CheckFailure:
        raise
    except NotImplementedError as error:
        instruction = str(error).rstrip(". ")
        raise ExerciseNotDone(f"{name} is not written yet: {instruction}. Replace the `raise NotImplementedError(...)` "
                              "line with your code and run the cell again.") from None
    except Exception as error:  # noqa: BLE001 - any slip is reported, never swallowed
        message = readable(error)
        for kind, pattern, hint in hints:
            found = re.search(pattern, message)
            if isinstance(error, kind) and found:
                quote = _quote(message, found)
                raise ExerciseIncorrect(f"{name} raised {type(error).__name__} ({quote}). {hint}") from None
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
    """The student's answer as one float, or a message that it must be one number; ``how`` says how
    to make it one, e.g. "Add the layers' means up with tf.reduce_sum(losses)."."""
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


def expect_array(answer: Any, what: str, shape: tuple[int, ...], returns: str, why: str = "") -> np.ndarray:
    """The student's answer as a float64 array of ``shape``, or a message: ``{what} returned nothing;
    end with `return {returns}`.`` or ``{what} returned shape ...; expected {shape}{why}.``"""
    if answer is None:
        raise ExerciseIncorrect(f"{what} returned nothing; end with `return {returns}`.")
    array = np.asarray(answer, dtype=np.float64)
    if array.shape != tuple(shape):
        raise ExerciseIncorrect(f"{what} returned shape {array.shape}; expected {tuple(shape)}{why}.")
    return array


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
    e, gap = _change(expected, start), _gap(answer, expected, start)
    scale = float(np.linalg.norm(e)) if e is not None else 0.0
    return gap / scale if scale > 0 else (0.0 if gap == 0 else float("inf"))


def first_slip(answer: Any, expected: Any, slips: Sequence[Slip], *, start: Any = None,
               tolerance: float = TOLERANCE, margin: float = MARGIN, reach: float = float("inf"),
               otherwise: str = "It differs from the expected result.") -> str | None:
    """None if ``answer`` is right; else the hint of the slip clearly closest to it; else ``otherwise``.

    Results are compared by the *change* they make from ``start`` (the input image of a dream step;
    None compares the values, e.g. a loss), on the scale of the expected change. With ``a`` and
    ``e`` the changes of the answer and the expected result, and ``r = ||a|| / ||e||``::

        d(a, e) = ||a - e|| / ||e||,        d(a, e)**2 = (r - 1)**2 + 2 r (1 - cos(a, e))

    so ``d <= tolerance`` bounds the length, ``|r - 1| <= tolerance``, and the direction,
    ``cos(a, e) >= 1 - tolerance**2 / 2``: with 0.05, within 5 % and 2.9 degrees.

    Why 0.05: a reference computed the same way as the answer (same engine, compiled or eager alike)
    differs by float32 round-off, ``d`` ~ 1e-6. The other kernel family (oneDNN or Eigen) can tip a
    ReLU over its kink, and steps amplify that: 3 dream steps of lesson 04's check differ by ``d`` =
    3e-3 between the families (max 0.014 on single values; measured on an AMD EPYC), 15 times below.
    A relative noise of 1e-3 on the gradient moves ``d`` by about 1e-3, on the result by about
    ``1e-3 * ||expected|| / ||e||`` (tests/test_checks_perturbed.py accepts both). Lesson 04's slips
    move ``d`` by 0.5 or more (one step of two, 0.6; steps of 0.01 instead of 0.02 or 0.05, 0.5 and
    0.8; the raw gradient, 1; the lesson's model, 0.9; descent, 1.7 to 2). A check whose nearest slip
    is closer passes its own ``tolerance`` (lesson 06's tiled gradient: 3e-3).

    Why the margin: a slip is named only if the runner-up (another slip, or the expected result) is
    at least ``1 / margin`` = twice as far, so an unknown slip, or one equally near two, gets
    ``otherwise``, not a wrong hint. Candidates within ``tolerance`` of each other count once, the
    first listed. ``slips`` are ``(slipped result, hint)`` pairs; ``reach`` names a slip only if the
    answer is this near it (as ``d``): for an exact formula whose slips are exact, ``reach=tolerance``.
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


#: What :func:`cached` built: models and compiled references, so a check run again (after a fix) waits
#: only for the student's code.
_CACHE: dict[Any, Any] = {}


def cached(key: Any, build: Callable[[], Any]) -> Any:
    """``build()``, made once per ``key`` (hashable: e.g. the backbone's model and what is built)."""
    if key not in _CACHE:
        _CACHE[key] = build()
    return _CACHE[key]


@functools.cache
def small_dream_model() -> Any:
    """A tiny seeded feature extractor for checks: three 3x3 "valid" convolutions (the border
    matters), two of them outputs like two dream layers; the same numbers on every machine."""
    inputs = keras.Input(shape=(None, None, 3))
    x, outputs = inputs, []
    for filters, strides, seed in ((8, 1, 1), (12, 2, 2), (12, 1, 3)):
        x = keras.layers.Conv2D(filters, 3, strides=strides, activation="relu",
                                kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
                                bias_initializer=keras.initializers.Constant(0.05))(x)
        outputs.append(x)
    return keras.Model(inputs, outputs[1:], name="small_dream_model")


def smooth_picture(height: int, width: int) -> np.ndarray:
    """A smooth RGB uint8 test picture: red grows to the right, green downwards, blue is a soft blob."""
    rows, columns = np.linspace(0.0, 1.0, height)[:, None], np.linspace(0.0, 1.0, width)[None, :]
    blue = np.exp(-((rows - 0.4) ** 2 + (columns - 0.6) ** 2) / 0.08)
    picture = np.stack([np.broadcast_to(columns, (height, width)), np.broadcast_to(rows, (height, width)), blue], -1)
    return np.round(40 + 180 * picture).astype(np.uint8)


def assert_close(actual: Any, expected: Any, what: str, *, atol: float = 1e-4, rtol: float = 1e-4,
                 hint: str = "") -> None:
    """Compare numbers or arrays value by value; on a mismatch say the shapes, the largest
    difference and an example, then ``hint`` (what to try). For exact things (counts, a formula of
    a few operations); a result of many operations is compared with :func:`first_slip`."""
    actual_array, expected_array = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    hint = f" {hint}" if hint else ""
    if actual_array.shape != expected_array.shape:
        raise ExerciseIncorrect(f"{what}: expected shape {expected_array.shape}, got {actual_array.shape}.{hint}")
    if not np.allclose(actual_array, expected_array, atol=atol, rtol=rtol, equal_nan=True):
        difference = np.abs(actual_array - expected_array)
        difference = np.where(np.isnan(difference), np.inf, difference)
        worst = np.unravel_index(int(np.argmax(difference)), difference.shape) if difference.shape else ()
        raise ExerciseIncorrect(f"{what}: values differ by up to {float(difference.max()):.4g} (at index "
                                f"{tuple(int(i) for i in worst)}: expected {float(expected_array[worst]):.4g}, got "
                                f"{float(actual_array[worst]):.4g}).{hint}")
