"""The tutorial's gradient-ascent step, coded once: the loss, the normalised gradient, the step, the clip.

Every dream in the course takes this step (lesson 04 has the student write it):
:class:`course_lib.dream.DeepDream` and the guided dream of :mod:`course_lib.beyond` through
:func:`ascent_step`, the tiled dream of :mod:`course_lib.tiles` through :func:`normalize` and
:func:`ascend` (its gradient comes tile by tile), and the naive class images of
:mod:`course_lib.classviz` through the same two on a batch. This module sits below all of them
and imports none of them, so that none of them has to import another for the step.

One step, as in the TensorFlow tutorial (tensorflow.org/tutorials/generative/deepdream)::

    g = d loss / d img
    img = clip(img + g / (std(g) + 1e-8) * step_size, -1, 1)
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from course_lib import dream_graph  # noqa: E402

# --- Constants from the TensorFlow DeepDream tutorial (tensorflow.org/tutorials/generative/deepdream) ---
#: ``run_deep_dream_simple(img, steps=100, step_size=0.01)``.
STEP_SIZE = 0.01
#: ``gradients /= tf.math.reduce_std(gradients) + 1e-8``: keeps the division finite on a flat gradient.
GRADIENT_EPSILON = 1e-8
#: ``tf.clip_by_value(img, -1, 1)``: the model's input range.
PIXEL_MIN, PIXEL_MAX = -1.0, 1.0


def calc_loss(img: tf.Tensor, model: keras.Model, layer_weights: Sequence[float] | None = None) -> tf.Tensor:
    """The tutorial's DeepDream loss: the sum, over the chosen layers, of each layer's mean activation.

    Each layer is *averaged* (not summed) so that a big, shallow layer does not drown a small, deep
    one: every layer counts the same, whatever its size.

    Args:
        img: one image, shape (height, width, 3), float in [-1, 1] (no batch axis).
        model: a Keras model from an image batch to one activation or a list of them.
        layer_weights: optional weight per layer output (non-negative, finite), to dream more of
            one layer than another. ``None`` means 1 for every layer, as in the tutorial.

    Returns:
        A scalar float32 tensor; gradient ascent makes it larger.

    Example:
        >>> loss = calc_loss(tf.zeros([128, 128, 3]), feature_extractor(bb, ["mixed3", "mixed5"]))
    """
    img_batch = tf.expand_dims(img, axis=0)
    layer_activations = model(img_batch, training=False)
    if not isinstance(layer_activations, (list, tuple)):
        layer_activations = [layer_activations]
    losses = [tf.math.reduce_mean(activation) for activation in layer_activations]
    if layer_weights is not None:
        weights = check_layer_weights(layer_weights, len(losses))
        losses = [weight * loss for weight, loss in zip(weights, losses)]
    return tf.reduce_sum(losses)


def check_layer_weights(layer_weights: Sequence[float] | None, layer_count: int) -> tuple[float, ...] | None:
    """Validate per-layer weights: one per layer, each finite and >= 0, not all zero.

    Returns:
        The weights as a tuple of floats, or ``None`` when ``layer_weights`` is ``None``.

    Raises:
        ValueError: saying which weight is wrong and what is expected.
    """
    if layer_weights is None:
        return None
    if isinstance(layer_weights, (int, float)):
        layer_weights = [layer_weights]
    weights = tuple(float(w) for w in layer_weights)
    if len(weights) != layer_count:
        raise ValueError(
            f"layer_weights has {len(weights)} value(s) but the model has {layer_count} output layer(s). "
            f"Give one weight per layer, e.g. {[1.0] * layer_count}."
        )
    for index, weight in enumerate(weights):
        if not math.isfinite(weight) or weight < 0:
            raise ValueError(
                f"layer_weights[{index}] is {weight}; each weight must be a finite number >= 0 (e.g. 1.0)."
            )
    if not any(weights):
        raise ValueError("layer_weights are all 0, so there is nothing to dream. Make at least one weight > 0.")
    return weights


def loss_function(model: keras.Model, layer_weights: Sequence[float] | None, optimize: bool, precision: str,
                  forms: Any = None) -> tuple[Callable[[tf.Tensor], tf.Tensor], str]:
    """``(image -> loss, precision used)`` for an engine: always a function equal to :func:`calc_loss`.

    With ``optimize``, the fast graph of :func:`course_lib.dream_graph.fast_loss_function` where
    that module knows the network (``forms`` pins its strided gradients' forms, see
    :func:`course_lib.strided_gradients.choose_forms`); otherwise, or for a network it does not
    know, :func:`calc_loss` on the Keras model.

    Raises:
        ValueError: an unknown ``precision``, or ``"bfloat16"`` for a network the fast graph cannot rebuild.
    """
    if precision not in dream_graph.PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(dream_graph.PRECISIONS)}, not {precision!r}.")
    if optimize:
        fast = dream_graph.fast_loss_function(model, layer_weights, precision=precision, forms=forms)
        if fast is not None:
            if fast[1] == "bfloat16" and precision == "auto":
                print("DeepDream computes in bfloat16 on this CPU (Intel AMX): faster, gradients within "
                      "a few per cent of float32. Pass precision='float32' for the exact numbers.")
            return fast
    if precision == "bfloat16":
        raise ValueError(f"precision='bfloat16' needs a network course_lib.dream_graph can rebuild; "
                         f"{model.name} holds other layers. Use precision='float32'.")
    return (lambda img: calc_loss(img, model, layer_weights)), "float32"


def normalize(gradients: tf.Tensor, std: tf.Tensor | None = None, *, axis: Sequence[int] | None = None) -> tf.Tensor:
    """``gradients / (std + 1e-8)``: the tutorial's normalisation, so every step moves the pixels alike.

    Args:
        gradients: the loss's gradient with respect to the image.
        std: its standard deviation when the caller gathered it itself (the tiled gradient sums it
            tile by tile); ``None`` computes ``tf.math.reduce_std(gradients, axis)``.
        axis: the axes of one image, for a batch of images each normalised alone (e.g. ``[1, 2, 3]``).
    """
    if std is None:
        std = tf.math.reduce_std(gradients, axis=axis, keepdims=axis is not None)
    return gradients / (std + GRADIENT_EPSILON)


def ascend(img: tf.Tensor, normalized_gradients: tf.Tensor, step_size: tf.Tensor | float) -> tf.Tensor:
    """``clip(img + normalized_gradients * step_size, -1, 1)``: gradient *ascent*, in the model's range.

    The loss grows, so the image excites the chosen layers more.
    """
    return tf.clip_by_value(img + normalized_gradients * step_size, PIXEL_MIN, PIXEL_MAX)


def ascent_step(loss_fn: Callable[[tf.Tensor], tf.Tensor], img: tf.Tensor,
                step_size: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """One step of the tutorial's gradient ascent: ``(loss, clip(img + g / (std(g) + 1e-8) * step_size))``.

    ``g`` is the gradient of ``loss_fn(img)`` with respect to the image.

    Raises:
        ValueError: the loss does not depend on the image (its gradient is ``None``).
    """
    with tf.GradientTape() as tape:
        # The image is a plain tensor, and GradientTape only watches variables by itself.
        tape.watch(img)
        loss = loss_fn(img)
    gradients = tape.gradient(loss, img)
    if gradients is None:
        raise ValueError("The loss does not depend on the image (its gradient is None): compute it from the "
                         "network's features (for a guided objective, from dream_features) with TensorFlow operations.")
    return loss, ascend(img, normalize(gradients), step_size)
