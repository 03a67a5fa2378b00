"""Argument checks, one rule per kind of argument, shared by every module and the command line.

A student who passes ``steps=-1``, ``step_size=float("nan")`` or ``seed=1.5`` should hear what
was wrong and what to pass instead, before any work starts, and the same mistake should get the
same answer whichever function it was passed to. So every public function checks its arguments
with these helpers, and each kind of argument has exactly one rule:

==================  ===========================================================================
kind                rule
==================  ===========================================================================
whole number        an ``int`` (or NumPy integer), or a float with no fraction (``1e3``); never
                    a ``bool``; within ``[low, high]``
number              a finite real number (``int`` or ``float``, never ``bool``); optional bounds
positive number     a finite number > 0 (step sizes, learning rates, scales)
seed                ``None`` (the course's seed, ``DEEPDREAM_SEED``, read now) or a whole number >= 0
choice              one of a few strings, with a did-you-mean
octaves             a non-empty iterable of whole numbers (``range(-2, 3)``), read once
max_dim             ``None`` (keep the size) or a whole number of pixels >= 1
==================  ===========================================================================

Every error is a ``ValueError`` whose message names the argument, shows the value received and,
where there is one, an example of a good value.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from course_lib import config

__all__ = ["whole_number", "number", "positive_number", "seed", "choice", "octaves", "max_dim"]


def _try(name: str, example: Any) -> str:
    return f" Try {name}={example!r}." if example is not None else ""


def whole_number(name: str, value: Any, *, low: int = 0, high: int | None = None, example: Any = None) -> int:
    """``value`` as an ``int`` in ``[low, high]``.

    Floats with no fraction are accepted (``1e3`` is 1000 steps); ``1.5``, ``True`` and strings
    are refused.

    Example:
        >>> validate.whole_number("steps", 100, low=1)
        100
    """
    allowed = f"between {low} and {high}" if high is not None else f">= {low}"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be a whole number {allowed}, not {value!r}.{_try(name, example)}")
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name} is {value}, but it must be {allowed}.{_try(name, example)}")
    return int(value)


def number(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    example: Any = None,
) -> float:
    """``value`` as a finite ``float``, within the bounds given (closed unless ``*_open``).

    Example:
        >>> validate.number("momentum", 0.9, low=0.0, high=1.0, high_open=True)
        0.9
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, not {value!r}.{_try(name, example)}")
    result = float(value)
    if not math.isfinite(result):
        raise ValueError(f"{name} is {value!r}, but it must be a finite number.{_try(name, example)}")
    too_low = low is not None and (result <= low if low_open else result < low)
    too_high = high is not None and (result >= high if high_open else result > high)
    if too_low or too_high:
        lower = "" if low is None else f"{'>' if low_open else '>='} {low}"
        upper = "" if high is None else f"{'<' if high_open else '<='} {high}"
        raise ValueError(f"{name} is {value!r}, but it must be {' and '.join(filter(None, [lower, upper]))}."
                         f"{_try(name, example)}")
    return result


def positive_number(name: str, value: Any, *, example: Any = None) -> float:
    """``value`` as a finite ``float`` > 0 (a step size, a learning rate, a scale).

    Example:
        >>> validate.positive_number("step_size", 0.01)
        0.01
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a positive number, not {value!r}.{_try(name, example)}")
    result = float(value)
    if not math.isfinite(result) or result <= 0:
        raise ValueError(f"{name} is {value!r}, but it must be a positive number (finite, > 0).{_try(name, example)}")
    return result


def seed(value: Any) -> int:
    """A random seed: ``None`` means the course's seed (``config.settings.seed``, read now, not at
    import); otherwise a whole number >= 0 (NumPy refuses negative seeds)."""
    if value is None:
        return int(config.settings.seed)
    return whole_number("seed", value, low=0, example=42)


def choice(name: str, value: Any, options: Iterable[str]) -> str:
    """``value`` if it is one of ``options``; otherwise an error that lists them and suggests the closest.

    Example:
        >>> validate.choice("output_scaling", "linear", ("linear", "none"))
        'linear'
    """
    options = tuple(options)
    if isinstance(value, str) and value in options:
        return value
    close = difflib.get_close_matches(str(value), options, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}, not {value!r}.{hint}")


def octaves(value: Any) -> list[int]:
    """The octave numbers as a list of ``int``, read once (a generator would be empty the second time).

    Raises:
        ValueError: for no octave at all, or one that is not a whole number (``True`` and ``1.0`` included).

    Example:
        >>> validate.octaves(range(-2, 3))
        [-2, -1, 0, 1, 2]
    """
    octave_list = list(value)
    if not octave_list:
        raise ValueError("octaves is empty, so nothing would be dreamed. Use e.g. octaves=range(-2, 3).")
    for octave in octave_list:
        if isinstance(octave, (bool, np.bool_)) or not isinstance(octave, (int, np.integer)):
            raise ValueError(f"octaves must be whole numbers like range(-2, 3); got {octave!r}.")
    return [int(octave) for octave in octave_list]


def max_dim(value: Any) -> int | None:
    """A ``max_dim`` (the longest side to shrink a photo to): a whole number of pixels >= 1, or ``None``
    (keep the size).

    Code that stores a ``max_dim`` for later (an upload widget, a command line) checks it at once,
    with the same message :func:`course_lib.images.load` would give later.

    Example:
        >>> validate.max_dim(500)
        500
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"max_dim must be a whole number of pixels such as 500, or None; got {value!r}.")
    if value < 1:
        raise ValueError(f"max_dim must be at least 1 pixel; got {value}. Use e.g. max_dim=500, or None to keep the size.")
    return int(value)
