"""Exercise checks of lesson 09."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from course_lib.checks.common import ExerciseIncorrect, assert_close, call_student, passed

__all__ = ['check_laplacian_normalize']


def check_laplacian_normalize(student_laplacian_normalize: Callable) -> None:
    """Compare the student's Laplacian-pyramid normalisation with ``classviz.laplacian_normalize``.

    The test gradient is deliberately unbalanced (strong fine detail, weak coarse structure), like
    a real classifier gradient, so returning it unchanged or dividing by one overall RMS both fail.
    """
    import tensorflow as tf

    from course_lib import classviz

    rng = np.random.default_rng(9)
    coarse = tf.image.resize(rng.normal(size=(2, 6, 6, 3)).astype(np.float32) * 0.05, [48, 48]).numpy()
    gradient = tf.constant(coarse + rng.normal(size=(2, 48, 48, 3)).astype(np.float32) * 20.0)
    expected = classviz.laplacian_normalize(gradient, 4).numpy()
    actual = np.asarray(call_student(student_laplacian_normalize, gradient, 4))
    if actual.shape == expected.shape:
        per_image_rms = np.sqrt(np.mean(gradient.numpy() ** 2, axis=(1, 2, 3), keepdims=True))
        if np.allclose(actual, gradient.numpy() / per_image_rms, atol=1e-3):
            raise ExerciseIncorrect("You divided the whole gradient by one RMS; divide EACH band by its own RMS.")
    assert_close(actual, expected, "laplacian_normalize(gradient, levels=4)", atol=1e-3, rtol=1e-3)
    passed("each Laplacian band of the gradient gets unit RMS before the bands are merged back.")
