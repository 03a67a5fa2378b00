"""Exercise checks of lesson 02."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from course_lib.checks.common import ExerciseIncorrect, assert_close, call_student, passed

__all__ = ['check_dream_model']


def check_dream_model(student_make_dream_model: Callable, backbone: Any) -> None:
    """Lesson 02: ``make_dream_model(base_model, names)`` must return a Keras model whose outputs
    are the activations of the named layers, in order (compared with ``models.feature_extractor``).

    Args:
        student_make_dream_model: the student's function.
        backbone: the lesson's :class:`course_lib.models.Backbone`.
    """
    import keras
    import tensorflow as tf

    from course_lib import models

    # Two layers the lesson does not use by default, in deep-then-shallow order, so that neither a
    # hard-coded answer nor a sorted one passes.
    names = [backbone.blocks[len(backbone.blocks) // 2], backbone.blocks[1]]
    dream_model = call_student(student_make_dream_model, backbone.model, list(names))
    if not isinstance(dream_model, keras.Model):
        raise ExerciseIncorrect(
            f"make_dream_model returned {type(dream_model).__name__}; expected a keras.Model, built with "
            "tf.keras.Model(inputs=base_model.input, outputs=layers)."
        )
    picture = tf.random.stateless_uniform((1, 64, 48, 3), seed=(1, 2), minval=-1, maxval=1)
    answer = dream_model(picture)
    if not isinstance(answer, (list, tuple)) or len(answer) != len(names):
        raise ExerciseIncorrect(
            f"for the layers {names} the model must return a list of {len(names)} activations, one per "
            f"layer; it returned {type(answer).__name__}"
            f"{f' of length {len(answer)}' if isinstance(answer, (list, tuple)) else ''}."
        )
    expected = models.feature_extractor(backbone, names)(picture)
    for name, got, want in zip(names, answer, expected):
        assert_close(np.asarray(got), np.asarray(want), f"activations of {name}", atol=1e-4)
    passed("make_dream_model returns the activations of the layers you name, in order.")
