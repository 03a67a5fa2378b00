"""Exercise checks of lesson 03."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from course_lib.checks.common import ExerciseIncorrect, call_student, passed

__all__ = ['check_weighted_loss']


def check_weighted_loss(student_calc_loss_weighted: Callable, backbone: Any) -> None:
    """Lesson 03: ``calc_loss_weighted(img, model, layer_weights)`` must equal
    ``dream.calc_loss(img, model, layer_weights)``: the weighted sum of each layer's mean activation.

    Args:
        student_calc_loss_weighted: the student's function.
        backbone: the lesson's :class:`course_lib.models.Backbone`.
    """
    import tensorflow as tf

    from course_lib import dream, models

    names = list(backbone.dream_layers)
    model = models.feature_extractor(backbone, names)
    img = tf.random.stateless_uniform((96, 80, 3), seed=(3, 4), minval=-1, maxval=1)
    activations = model(tf.expand_dims(img, axis=0))
    means = [float(tf.reduce_mean(activation)) for activation in activations]
    sums = [float(tf.reduce_sum(activation)) for activation in activations]
    for weights in ([1.0, 1.0], [0.25, 2.0], [0.0, 1.0]):
        answer = call_student(student_calc_loss_weighted, img, model, list(weights))
        try:
            value = float(answer)
        except (TypeError, ValueError):
            raise ExerciseIncorrect(
                f"calc_loss_weighted returned {type(answer).__name__} with shape {np.shape(answer)}; expected "
                "one number (a scalar tensor). Add the weighted layer losses up with tf.reduce_sum."
            ) from None
        expected = float(dream.calc_loss(img, model, weights))
        if np.isclose(value, expected, rtol=1e-4, atol=1e-5):
            continue
        if np.isclose(value, sum(means), rtol=1e-4) and weights != [1.0, 1.0]:
            hint = "That is the unweighted loss: multiply each layer's mean by its weight."
        elif np.isclose(value, sum(w * s for w, s in zip(weights, sums)), rtol=1e-4):
            hint = "That is a weighted sum of the *summed* activations: use tf.math.reduce_mean for each layer."
        else:
            hint = "Each layer's loss is weight * tf.math.reduce_mean(activation); the total is their sum."
        raise ExerciseIncorrect(
            f"With layer_weights={weights}, calc_loss_weighted gave {value:.5f}, expected {expected:.5f}. {hint}"
        )
    passed("calc_loss_weighted adds up each layer's mean activation times its weight.")
