"""Exercise checks of lesson 03: the tutorial's ``calc_loss``, and a weighted loss."""
from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from course_lib.checks.common import ExerciseIncorrect, Hint, call_student, passed

__all__ = ['check_calc_loss', 'check_weighted_loss']

#: The hint for a model called without a batch axis (Keras: "Invalid input shape ... incompatible").
BATCH_AXIS_HINT = (
    "The network takes a *batch* of images, shape (1, height, width, 3): "
    "add a batch axis first: img_batch = tf.expand_dims(img, axis=0)."
)
BATCH_AXIS_HINTS: tuple[Hint, ...] = (
    (ValueError, r"Expected shape.*incompatible shape|expected min_ndim|expected ndim", BATCH_AXIS_HINT),
)
#: The hint for one mean over all layers at once (their shapes differ, so they cannot be stacked).
ONE_MEAN_HINTS: tuple[Hint, ...] = (
    (Exception, r"Shapes of all inputs must match",
     "The layers have different shapes, so they cannot be averaged together: take "
     "tf.math.reduce_mean of each layer's activation on its own, then add these means up."),
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def call_quietly(function: Callable, *args: Any, hints: Sequence[Hint] = (), **kwargs: Any) -> Any:
    """:func:`call_student`, with the student's prints (e.g. ``print("Tracing")``) kept out of the
    check's output, and a known slip reported by the words of TensorFlow's message that matched.

    TensorFlow's messages can be long (inside a ``tf.function`` they start with "in user code:"
    and a stack; Keras prints the whole input array): the message quotes only the matched line,
    from the match on. A slip not in ``hints`` is raised unchanged, so the student sees their own line.
    """
    name = getattr(function, "__name__", "this function")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            return call_student(function, *args, **kwargs)
    except ExerciseIncorrect:
        raise
    except Exception as error:  # noqa: BLE001 - matched against the hints, else raised unchanged
        message = str(error)
        for kind, pattern, hint in hints:
            found = re.search(pattern, message)
            if isinstance(error, kind) and found:
                said = _ANSI.sub("", message[found.start():].split("\n", 1)[0]).split(". ", 1)[0].strip()[:160]
                raise ExerciseIncorrect(f"{name} raised {type(error).__name__} ({said}). {hint}") from None
        raise


def _one_number(answer: Any, name: str, how: str) -> float:
    """The student's answer as a float, or a message saying a loss is one number."""
    if np.ndim(answer) != 0:
        raise ExerciseIncorrect(
            f"{name} returned {type(answer).__name__} with shape {np.shape(answer)}; expected one number "
            f"(a scalar tensor). {how}"
        )
    try:
        return float(answer)
    except (TypeError, ValueError):
        raise ExerciseIncorrect(f"{name} returned {answer!r}; expected one number (a scalar tensor). {how}") from None


def check_calc_loss(student_calc_loss: Callable, backbone: Any) -> None:
    """Lesson 03: ``calc_loss(img, model)`` must equal ``dream.calc_loss(img, model)``: the sum
    over the model's output layers of each layer's mean activation, for a model of two layers and
    one of a single layer, called directly and inside a ``tf.function`` (as lesson 04 calls it).

    Slips recognised by their effect or their error: no batch axis, sums instead of means, only
    the first or the last layer, means averaged instead of added, a global model instead of the
    argument, a single output layer not wrapped in a list.

    Args:
        student_calc_loss: the student's function.
        backbone: the lesson's :class:`course_lib.models.Backbone`.
    """
    import tensorflow as tf

    from course_lib import dream, models

    # A shallow layer and a deep one: many more values in the first, so a sum would differ from a mean.
    layers = [backbone.blocks[0], backbone.dream_layers[-1]]
    model = models.feature_extractor(backbone, layers)
    img = tf.random.stateless_uniform((96, 80, 3), seed=(3, 4), minval=-1, maxval=1)
    name = "calc_loss"
    adding = "Add the layers' means up with tf.reduce_sum(losses)."

    value = _one_number(call_quietly(student_calc_loss, img, model, hints=BATCH_AXIS_HINTS + ONE_MEAN_HINTS), name, adding)
    expected = float(dream.calc_loss(img, model))
    if not np.isclose(value, expected, rtol=1e-4, atol=1e-5):
        activations = model(tf.expand_dims(img, axis=0))
        means = [float(tf.reduce_mean(a)) for a in activations]
        sums = [float(tf.reduce_sum(a)) for a in activations]
        lesson_model = models.feature_extractor(backbone)  # the lesson's dream_model: same layers
        lesson_loss = float(dream.calc_loss(img, lesson_model))
        slips = [
            (sum(sums), "That is the sum of every activation. Average each layer instead "
                        "(tf.math.reduce_mean(act)): each layer is averaged so that a big shallow layer, with many "
                        "more values, does not drown a small deep one."),
            (means[0], "That is the first layer's mean alone. Add up the means of *every* layer the model "
                       "returns (is your `return` inside the loop?)."),
            (means[-1], "That is the last layer's mean alone. Keep every layer's mean in a list "
                        "(losses.append(...)) and add them all up with tf.reduce_sum(losses)."),
            (float(np.mean(means)), "That is the *average* of the layers' means. " + adding),
            (lesson_loss, "That is the loss of the lesson's dream_model, not of the model you were given: "
                          "use the `model` argument."),
        ]
        hint = next((text for number, text in slips if np.isclose(value, number, rtol=1e-4, atol=1e-5)),
                    "Pass tf.expand_dims(img, axis=0) through the model, take tf.math.reduce_mean of each "
                    "layer's activation, and add these means up with tf.reduce_sum.")
        raise ExerciseIncorrect(
            f"For a random 80x96 image and the layers {layers}, calc_loss gave {value:.5f}, "
            f"expected {expected:.5f}. {hint}"
        )

    single = models.feature_extractor(backbone, [backbone.dream_layers[0]])
    wrap = ("With a single output layer the model returns one tensor, not a list of tensors: make it a list "
            "first, as the tutorial does: if len(layer_activations) == 1: layer_activations = [layer_activations].")
    value = _one_number(call_quietly(student_calc_loss, img, single), name, adding)
    expected = float(dream.calc_loss(img, single))
    if not np.isclose(value, expected, rtol=1e-4, atol=1e-5):
        raise ExerciseIncorrect(f"For a model with one output layer, calc_loss gave {value:.5f}, expected "
                                f"{expected:.5f}. {wrap}")

    graph_hints: tuple[Hint, ...] = (
        (Exception, r"is out of scope and cannot be used here", wrap),
        (Exception, r"Iterating over a symbolic", wrap),
        (Exception, r"numpy|symbolic|Tensor\b.*(bool|int|float)|Python (bool|int|float)",
         "Lesson 04 runs calc_loss inside a tf.function, where tensors have no values yet: use TensorFlow "
         "operations only (no .numpy(), float() or np.*)."),
    )
    for what, a_model in (("one output layer", single), ("two output layers", model)):
        compiled = tf.function(lambda picture, m=a_model: student_calc_loss(picture, m),
                               input_signature=(tf.TensorSpec([None, None, 3], tf.float32),))
        compiled.__name__ = name
        value = _one_number(call_quietly(compiled, img, hints=graph_hints), name, adding)
        expected = float(dream.calc_loss(img, a_model))
        if not np.isclose(value, expected, rtol=1e-4, atol=1e-5):
            raise ExerciseIncorrect(
                f"Inside a tf.function, for a model with {what}, calc_loss gave {value:.5f}, expected "
                f"{expected:.5f}." + (f" {wrap}" if a_model is single else "")
            )
    passed("calc_loss adds up each layer's mean activation, for one layer or several, also inside a tf.function.")


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
        answer = call_quietly(student_calc_loss_weighted, img, model, list(weights), hints=BATCH_AXIS_HINTS)
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
