"""Exercise checks of lesson 04."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from course_lib.checks.common import ExerciseIncorrect, assert_close, call_student, passed

__all__ = ['check_gradient_ascent_step']


def check_gradient_ascent_step(student_step: Callable, backbone: Any) -> None:
    """Lesson 04: ``gradient_ascent_step(img, model, step_size)`` must return ``(loss, new_img)`` with
    ``new_img = clip(img + g / (std(g) + 1e-8) * step_size, -1, 1)``, ``g`` the gradient of
    ``dream.calc_loss`` at ``img`` and ``loss`` its value before the step (computed here directly).

    Args:
        student_step: the student's function.
        backbone: the lesson's :class:`course_lib.models.Backbone`.
    """
    import tensorflow as tf

    from course_lib import dream, models

    model = models.feature_extractor(backbone, list(backbone.dream_layers))
    # Values up to the edges of [-1, 1] and a large step, so that clipping matters.
    img = tf.random.stateless_uniform((72, 56, 3), seed=(5, 6), minval=-1, maxval=1)
    step_size = 0.05
    with tf.GradientTape() as tape:
        tape.watch(img)
        expected_loss = dream.calc_loss(img, model)
    gradients = tape.gradient(expected_loss, img)
    normalised = gradients / (tf.math.reduce_std(gradients) + 1e-8)
    expected_img = tf.clip_by_value(img + normalised * step_size, -1, 1).numpy()

    answer = call_student(student_step, img, model, step_size)
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise ExerciseIncorrect(
            f"gradient_ascent_step returned {type(answer).__name__}; expected a pair (loss, new_img): "
            "end with `return loss, img`."
        )
    loss, new_img = answer
    new_img = np.asarray(new_img, dtype=np.float64)
    if new_img.shape != expected_img.shape:
        raise ExerciseIncorrect(
            f"new_img has shape {new_img.shape}; it must keep the image's shape {expected_img.shape} "
            "(no batch axis)."
        )
    if np.ndim(loss) != 0:
        raise ExerciseIncorrect(f"loss has shape {np.shape(loss)}; it must be one number, calc_loss(img, model).")
    assert_close(float(loss), float(expected_loss), "the loss (computed before the step)", atol=1e-4, rtol=1e-4)
    image = img.numpy().astype(np.float64)
    if new_img.max() > 1 + 1e-6 or new_img.min() < -1 - 1e-6:
        raise ExerciseIncorrect(
            f"new_img has values from {new_img.min():.3f} to {new_img.max():.3f}: clip it to [-1, 1] "
            "with tf.clip_by_value(img, -1, 1)."
        )
    descent = np.clip(image - normalised.numpy() * step_size, -1, 1)
    if np.allclose(new_img, descent, atol=1e-4):
        raise ExerciseIncorrect(
            "new_img went *down* the gradient (img - gradients * step_size): that makes the loss smaller. "
            "Gradient ascent adds: img + gradients * step_size."
        )
    unnormalised = np.clip(image + gradients.numpy() * step_size, -1, 1)
    if np.allclose(new_img, unnormalised, atol=1e-5):
        raise ExerciseIncorrect(
            "new_img moved by the raw gradient, which is tiny: divide the gradient by "
            "tf.math.reduce_std(gradients) + 1e-8 before the step."
        )
    assert_close(new_img, expected_img, "new_img after one step", atol=1e-4)
    passed("gradient_ascent_step normalises the gradient, steps up it and clips to [-1, 1].")
