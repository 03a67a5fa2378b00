"""Exercise checks of lesson 05."""
from __future__ import annotations

from collections.abc import Callable


from course_lib.checks.common import ExerciseIncorrect, call_student, passed

__all__ = ['check_octave_shape']


def check_octave_shape(student_octave_shape: Callable) -> None:
    """Lesson 05: ``octave_shape(base_shape, n, octave_scale=1.30)`` must give the tutorial's octave
    size, ``int(side * octave_scale ** n)`` for height and width (compared with ``dream.octave_sizes``).
    """
    from course_lib import dream

    cases = [((375, 500), n, None) for n in range(-2, 3)]
    cases += [((293, 236), n, 1.5) for n in (-3, -1, 0, 2)] + [((1001, 749), 1, 1.3), ((640, 427), -1, 1.4)]
    for base_shape, n, scale in cases:
        arguments = (base_shape, n) if scale is None else (base_shape, n, scale)
        answer = call_student(student_octave_shape, *arguments)
        call = f"octave_shape({base_shape}, {n}{'' if scale is None else f', {scale}'})"
        if answer is None:
            raise ExerciseIncorrect(f"{call} returned nothing; end with `return height, width`.")
        try:
            height, width = (float(side) for side in answer)
        except (TypeError, ValueError):
            raise ExerciseIncorrect(
                f"{call} returned {answer!r}; expected a pair of whole numbers (height, width)."
            ) from None
        if not (height.is_integer() and width.is_integer()):
            raise ExerciseIncorrect(f"{call} returned ({height}, {width}); sizes are whole pixels: use int(...).")
        expected = dream.octave_sizes(base_shape, [n], dream.OCTAVE_SCALE if scale is None else scale)[0]
        factor = (dream.OCTAVE_SCALE if scale is None else scale) ** n
        if (height, width) == tuple(expected):
            continue
        if (height, width) == tuple(expected[::-1]):
            hint = "Height and width are swapped: return (height, width), in the order base_shape gives them."
        elif (height, width) == (round(base_shape[0] * factor), round(base_shape[1] * factor)):
            hint = "You rounded; the tutorial drops the fraction (int(...), like tf.cast to int32)."
        elif scale is not None and (height, width) == dream.octave_sizes(base_shape, [n])[0]:
            hint = "You used 1.30 instead of the octave_scale argument."
        else:
            hint = "Each side is multiplied by octave_scale ** n (a power: n = -2 means divide by 1.3 twice)."
        raise ExerciseIncorrect(f"{call} returned ({int(height)}, {int(width)}), expected {tuple(expected)}. {hint}")
    passed("octave_shape scales both sides by octave_scale ** n and drops the fraction.")
