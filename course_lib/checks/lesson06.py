"""Exercise checks of lesson 06."""
from __future__ import annotations

from collections.abc import Callable


from course_lib.checks.common import ExerciseIncorrect, call_student, passed

__all__ = ['check_tile_bounds']


def check_tile_bounds(student_tile_bounds: Callable) -> None:
    """Lesson 06: ``tile_bounds(length, tile_size)`` must cut ``0..length`` into as few tiles as
    possible (``ceil(length / tile_size)``), none longer than ``tile_size``, covering every pixel.

    Several answers are right (equal tiles, or full tiles and a shorter last one), so this checks
    those properties rather than comparing with ``tiles.tile_bounds``.
    """
    import math

    for length, tile_size in [(1000, 512), (2048, 512), (512, 512), (100, 512), (1650, 512), (7, 3), (1, 1), (513, 512)]:
        call = f"tile_bounds({length}, {tile_size})"
        answer = call_student(student_tile_bounds, length, tile_size)
        if answer is None:
            raise ExerciseIncorrect(f"{call} returned nothing; end with `return bounds`.")
        try:
            bounds = [int(bound) for bound in answer]
        except (TypeError, ValueError):
            raise ExerciseIncorrect(f"{call} returned {answer!r}; expected a list of whole numbers.") from None
        if not bounds or bounds[0] != 0:
            raise ExerciseIncorrect(f"{call} returned {bounds}; the first boundary must be 0 (the top or left edge).")
        if bounds[-1] != length:
            raise ExerciseIncorrect(
                f"{call} returned {bounds}; the last boundary must be {length}, the edge, so the pixels at the "
                "right and bottom edges are in a tile too (the tutorial's version skips them)."
            )
        sizes = [end - start for start, end in zip(bounds, bounds[1:])]
        if any(size <= 0 for size in sizes):
            raise ExerciseIncorrect(f"{call} returned {bounds}; boundaries must increase, every tile holding pixels.")
        if max(sizes) > tile_size:
            raise ExerciseIncorrect(
                f"{call} returned {bounds}: a tile of {max(sizes)} px, longer than tile_size={tile_size}."
            )
        fewest = math.ceil(length / tile_size)
        if len(sizes) != fewest:
            raise ExerciseIncorrect(
                f"{call} returned {bounds}: {len(sizes)} tiles where {fewest} suffice (ceil(length / tile_size)); "
                "every tile costs a forward and a backward pass."
            )
    passed("tile_bounds covers every pixel with as few tiles as possible, none longer than tile_size.")
