"""Exercise checks of lesson 03: the tutorial's ``calc_loss``, and a weighted loss."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from course_lib import dream, models
from course_lib.checks.common import ExerciseIncorrect, Hint, call_student, expect_number, first_slip, passed

__all__ = ['check_calc_loss', 'check_weighted_loss']

#: The hint for a model called without a batch axis (Keras: "Invalid input shape ... incompatible").
BATCH_AXIS_HINTS: tuple[Hint, ...] = (
    (ValueError, r"Expected shape.*incompatible shape|expected min_ndim|expected ndim",
     "The network takes a *batch* of images, shape (1, height, width, 3): "
     "add a batch axis first: img_batch = tf.expand_dims(img, axis=0)."),
)
#: The hint for one mean over all layers at once (their shapes differ, so they cannot be stacked).
ONE_MEAN_HINTS: tuple[Hint, ...] = (
    (Exception, r"Shapes of all inputs must match",
     "The layers have different shapes, so they cannot be averaged together: take "
     "tf.math.reduce_mean of each layer's activation on its own, then add these means up."),
)
#: Losses are one forward pass: float32 means over ~1e5 activations carry a relative round-off of
#: ~1e-6 (either kernel family, compiled or eager), so 1e-4 accepts any correct order of operations,
#: while every slip named here changes the loss by 10 % or more.
LOSS_TOLERANCE = 1e-4


def check_calc_loss(student_calc_loss: Callable, backbone: Any) -> None:
    """Lesson 03: ``calc_loss(img, model)`` must equal ``dream.calc_loss(img, model)``, the sum of each output
    layer's mean activation, for models of two layers and of one, directly and inside a ``tf.function``."""
    # A shallow layer and a deep one: many more values in the first, so a sum would differ from a mean.
    layers = [backbone.blocks[0], backbone.dream_layers[-1]]
    model = models.feature_extractor(backbone, layers)
    img = tf.random.stateless_uniform((96, 80, 3), seed=(3, 4), minval=-1, maxval=1)
    name = "calc_loss"
    adding = "Add the layers' means up with tf.reduce_sum(losses)."

    value = expect_number(call_student(student_calc_loss, img, model, hints=BATCH_AXIS_HINTS + ONE_MEAN_HINTS),
                          name, adding)
    expected = float(dream.calc_loss(img, model))
    if abs(value - expected) > LOSS_TOLERANCE * abs(expected):
        activations = model(tf.expand_dims(img, axis=0))
        means = [float(tf.reduce_mean(a)) for a in activations]
        slips = [
            (sum(float(tf.reduce_sum(a)) for a in activations),
             "That is the sum of every activation. Average each layer instead (tf.math.reduce_mean(act)): each layer "
             "is averaged so that a big shallow layer, with many more values, does not drown a small deep one."),
            (means[0], "That is the first layer's mean alone. Add up the means of *every* layer the model "
                       "returns (is your `return` inside the loop?)."),
            (means[-1], "That is the last layer's mean alone. Keep every layer's mean in a list "
                        "(losses.append(...)) and add them all up with tf.reduce_sum(losses)."),
            (float(np.mean(means)), "That is the *average* of the layers' means. " + adding),
            (float(dream.calc_loss(img, models.feature_extractor(backbone))),  # the lesson's dream_model
             "That is the loss of the lesson's dream_model, not of the model you were given: use the `model` argument."),
        ]
        hint = first_slip(value, expected, slips, tolerance=LOSS_TOLERANCE, otherwise=(
            "Pass tf.expand_dims(img, axis=0) through the model, take tf.math.reduce_mean of each "
            "layer's activation, and add these means up with tf.reduce_sum."))
        raise ExerciseIncorrect(f"For a random 80x96 image and the layers {layers}, calc_loss gave {value:.5f}, "
                                f"expected {expected:.5f}. {hint}")

    single = models.feature_extractor(backbone, [backbone.dream_layers[0]])
    wrap = ("With a single output layer the model returns one tensor, not a list of tensors: make it a list "
            "first, as the tutorial does: if len(layer_activations) == 1: layer_activations = [layer_activations].")
    value = expect_number(call_student(student_calc_loss, img, single), name, adding)
    expected = float(dream.calc_loss(img, single))
    if abs(value - expected) > LOSS_TOLERANCE * abs(expected):
        raise ExerciseIncorrect(f"For a model with one output layer, calc_loss gave {value:.5f}, expected "
                                f"{expected:.5f}. {wrap}")

    graph_hints: tuple[Hint, ...] = (
        (Exception, r"is out of scope and cannot be used here|Iterating over a symbolic", wrap),
        (Exception, r"numpy|symbolic|Tensor\b.*(bool|int|float)|Python (bool|int|float)",
         "Lesson 04 runs calc_loss inside a tf.function, where tensors have no values yet: use TensorFlow "
         "operations only (no .numpy(), float() or np.*)."),
    )
    signature = (tf.TensorSpec([None, None, 3], tf.float32),)
    for what, a_model in (("one output layer", single), ("two output layers", model)):
        compiled = tf.function(lambda picture, m=a_model: student_calc_loss(picture, m), input_signature=signature)
        compiled.__name__ = name
        value = expect_number(call_student(compiled, img, hints=graph_hints), name, adding)
        # The reference compiled the same way: a graph of the same operations.
        expected = float(tf.function(lambda picture, m=a_model: dream.calc_loss(picture, m), input_signature=signature)(img))
        if abs(value - expected) > LOSS_TOLERANCE * abs(expected):
            raise ExerciseIncorrect(
                f"Inside a tf.function, for a model with {what}, calc_loss gave {value:.5f}, expected "
                f"{expected:.5f}." + (f" {wrap}" if a_model is single else "")
            )
    passed("calc_loss adds up each layer's mean activation, for one layer or several, also inside a tf.function.")


def check_weighted_loss(student_calc_loss_weighted: Callable, backbone: Any) -> None:
    """Lesson 03: ``calc_loss_weighted(img, model, layer_weights)`` must equal ``dream.calc_loss(img, model,
    layer_weights)``: the weighted sum of each layer's mean activation (``backbone``: the lesson's)."""
    names = list(backbone.dream_layers)
    model = models.feature_extractor(backbone, names)
    img = tf.random.stateless_uniform((96, 80, 3), seed=(3, 4), minval=-1, maxval=1)
    activations = model(tf.expand_dims(img, axis=0))
    means = [float(tf.reduce_mean(activation)) for activation in activations]
    sums = [float(tf.reduce_sum(activation)) for activation in activations]
    for weights in ([1.0, 1.0], [0.25, 2.0], [0.0, 1.0]):
        answer = call_student(student_calc_loss_weighted, img, model, list(weights), hints=BATCH_AXIS_HINTS)
        value = expect_number(answer, "calc_loss_weighted", "Add the weighted layer losses up with tf.reduce_sum.")
        expected = float(dream.calc_loss(img, model, weights))
        hint = first_slip(value, expected, [
            (sum(means), "That is the unweighted loss: multiply each layer's mean by its weight."),
            (sum(w * s for w, s in zip(weights, sums)),
             "That is a weighted sum of the *summed* activations: use tf.math.reduce_mean for each layer."),
        ], tolerance=LOSS_TOLERANCE, otherwise="Each layer's loss is weight * tf.math.reduce_mean(activation); the total is their sum.")
        if hint:
            raise ExerciseIncorrect(
                f"With layer_weights={weights}, calc_loss_weighted gave {value:.5f}, expected {expected:.5f}. {hint}")
    passed("calc_loss_weighted adds up each layer's mean activation times its weight.")
