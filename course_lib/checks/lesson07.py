"""Exercise checks of lesson 07."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from course_lib.checks.common import ExerciseIncorrect, call_student, passed

__all__ = ['check_augmenter']


def _factor_range(factor: Any) -> tuple[float, float]:
    """A Keras factor (a number f means -f..f) as a (low, high) pair."""
    if factor is None:
        return (0.0, 0.0)
    if isinstance(factor, (int, float)):
        return (-float(factor), float(factor))
    low, high = factor
    return (float(low), float(high))


def check_augmenter(student_make_augmenter: Callable) -> None:
    """Compare the student's augmenter with the source's imageDataAugmenter settings.

    Expected: a horizontal RandomFlip, a RandomTranslation of 30/224 of the side in both
    directions, and a RandomZoom with independent height and width factors that scale the
    content by 0.9..1.1 (exactly 1/1.1 - 1 .. 1/0.9 - 1; +-0.1 is accepted as close enough).
    """
    import keras

    augment = call_student(student_make_augmenter, 0)
    if not isinstance(augment, keras.Layer):
        raise ExerciseIncorrect(f"make_augmenter should return a keras.Sequential of layers; got {type(augment).__name__}.")
    layers = {type(layer).__name__: layer for layer in getattr(augment, "layers", [augment])}
    missing = [name for name in ("RandomFlip", "RandomTranslation", "RandomZoom") if name not in layers]
    if missing:
        raise ExerciseIncorrect(f"The augmenter lacks {', '.join(missing)}; the source reflects, translates and scales.")
    if layers["RandomFlip"].mode != "horizontal":
        raise ExerciseIncorrect(
            f"RandomFlip mode is {layers['RandomFlip'].mode!r}; 'RandXReflection' flips left-right only: use 'horizontal'."
        )
    shift = 30 / 224
    translation = layers["RandomTranslation"]
    for axis in ("height_factor", "width_factor"):
        low, high = _factor_range(getattr(translation, axis))
        if abs(low + shift) > 2e-3 or abs(high - shift) > 2e-3:
            raise ExerciseIncorrect(
                f"RandomTranslation {axis} covers {low:.3f}..{high:.3f} of the side; the source's +-30 px on a "
                f"224 px input is +-{shift:.3f} (30 / 224)."
            )
    zoom = layers["RandomZoom"]
    exact = (1 / 1.1 - 1, 1 / 0.9 - 1)
    for axis in ("height_factor", "width_factor"):
        factor = getattr(zoom, axis)
        if factor is None:
            raise ExerciseIncorrect(
                "RandomZoom needs a width_factor too: the source scales x ('RandXScale') and y ('RandYScale') independently."
            )
        low, high = _factor_range(factor)
        if abs(low - exact[0]) > 0.012 or abs(high - exact[1]) > 0.012:
            raise ExerciseIncorrect(
                f"RandomZoom {axis} covers {low:.3f}..{high:.3f}; a scale of 0.9..1.1 needs about "
                f"{exact[0]:.3f}..{exact[1]:.3f} (a zoom factor z shows the content at 1 / (1 + z))."
            )
    batch = np.full((2, 48, 48, 3), 128.0, dtype=np.float32)
    output = np.asarray(augment(batch, training=True))
    if output.shape != batch.shape:
        raise ExerciseIncorrect(f"The augmenter changed the batch shape from {batch.shape} to {output.shape}.")
    passed("the augmenter flips left-right, shifts up to 30/224 of the side and scales by 0.9-1.1 in x and y.")
