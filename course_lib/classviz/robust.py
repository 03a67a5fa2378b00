"""The robust method: Lucid's recipe for class images people can recognise.

The image is a scaled Fourier spectrum in decorrelated colour (:mod:`.param`); every Adam step
sees it randomly padded, jittered, scaled and rotated (:mod:`.transforms`), so only patterns that
survive all of those (eyes, noses, fur) pay off. Optionally a diversity term pushes several
images of one channel apart (Olah, Mordvintsev, Schubert, "Feature Visualization", Distill 2017).
"""
from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from course_lib import validate
from course_lib.classviz.objectives import Channels, ChannelTarget, ModelLike, gather_channels
from course_lib.classviz.param import FourierImage, spectrum_to_images
from course_lib.classviz.render import finish, prepare
from course_lib.classviz.transforms import random_transform_parameters, robust_transform

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

#: Adam steps by default: small steps need more of them (Lucid renders 512; 256 is enough here,
#: see bench/classviz_quality.py).
DEFAULT_ITERATIONS = 256
#: Adam's learning rate. Lucid's default is 0.05; 0.03 gave less saturated colours here.
ROBUST_LEARNING_RATE = 0.03


def robust_class_images(
    model: ModelLike,
    layer: str | None,
    channels: Channels,
    *,
    num_iterations: int = DEFAULT_ITERATIONS,
    image_size: int | None = None,
    initial_image: Any = None,
    diversity: float = 0.0,
    output_scaling: str = "linear",
    verbose: bool = True,
    seed: int | None = None,
    show_progress: bool = True,
) -> np.ndarray:
    """Images that strongly activate channels of a layer, made with transformation robustness.

    Args:
        model, layer, channels: as :func:`course_lib.classviz.deep_dream_image`; repeat a class
            in ``channels`` to get several images of it (with ``diversity`` > 0 they differ).
        num_iterations: Adam steps (default 256).
        image_size: side of the square output (default: the classifier's input size, else 224).
        initial_image: ``None`` (a grey, faintly textured start) or a photo to start from.
        diversity: weight of a term that pushes images of the same channel apart (0: off).
        output_scaling, verbose, seed, show_progress: as :func:`course_lib.classviz.deep_dream_image`.

    Returns:
        float32 array (N, H, W, 3), one image per channel.

    Example:
        >>> tile = robust_class_images(models.dog_breed_classifier(), "dense", ["Chihuahua", "pug"])
    """
    num_iterations = validate.whole_number("num_iterations", num_iterations, low=1, example=DEFAULT_ITERATIONS)
    diversity = validate.number("diversity", diversity, low=0.0, example=0.5)
    run = prepare(model, layer, channels, image_size=image_size, initial_image=initial_image, seed=seed,
                  output_scaling=output_scaling, verbose=verbose, show_progress=show_progress,
                  total_steps=num_iterations, title="robust class images", every_row=False)  # fmt: skip
    photo = None if initial_image is None else (run.start + 1.0) / 2.0
    height, width = run.start.shape[1:3]
    parameterization = FourierImage(len(run.indices), height, width, run.rng, photo)
    optimizer = keras.optimizers.Adam(ROBUST_LEARNING_RATE)
    same_channel = np.equal.outer(run.indices, run.indices) & ~np.eye(len(run.indices), dtype=bool)
    arguments = dict(
        frequency_scale=parameterization.frequency_scale, size=parameterization.size,
        indices=tf.constant(run.indices, tf.int32), same_channel=tf.constant(same_channel, tf.float32),
        diversity_weight=tf.constant(diversity, tf.float32),
    )  # fmt: skip
    step = _robust_gradient(run.target)
    for iteration in range(1, num_iterations + 1):
        transform = random_transform_parameters(run.rng, min(height, width))
        gradient, strength = step(parameterization.spectrum, transform=transform, **arguments)
        optimizer.apply_gradients([(gradient, parameterization.spectrum)])
        run.report(iteration, num_iterations, float(tf.reduce_mean(strength)), 1)
    return finish(run, parameterization().numpy() * 2.0 - 1.0, output_scaling)


#: One compiled gradient per target's feature extractor, reused by later calls.
_GRADIENTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _robust_gradient(target: ChannelTarget) -> Callable:
    """Compiled once per target: gradient of the robust loss with respect to the spectrum."""
    per_model = _GRADIENTS.setdefault(target.extractor, {})
    key = (target.layer_name, target.kernel is not None)
    if key in per_model:
        return per_model[key]

    @tf.function(reduce_retracing=True)
    def gradient(spectrum, frequency_scale, size, indices, same_channel, diversity_weight, transform):
        with tf.GradientTape() as tape:
            tape.watch(spectrum)
            picture = robust_transform(spectrum_to_images(spectrum, frequency_scale, size), **transform)
            scores, features = target.activations(picture * 2.0 - 1.0)
            strength = gather_channels(scores, indices)
            count = tf.cast(tf.shape(strength)[0], tf.float32)
            similarity = _diversity_similarity(features, same_channel)
            loss = -tf.reduce_sum(strength) + diversity_weight * count * similarity
        return tape.gradient(loss, spectrum), strength

    per_model[key] = gradient
    return gradient


def _diversity_similarity(features: tf.Tensor, same_channel: tf.Tensor) -> tf.Tensor:
    """Mean cosine similarity between the features of images of the same channel (Lucid's diversity).

    ``same_channel[i, j]`` is 1 where images i != j visualise the same channel, else 0.
    """
    if len(features.shape) == 4:  # a feature map: compare Gram matrices (style), as Lucid does
        flat = tf.reshape(features, [tf.shape(features)[0], -1, tf.shape(features)[-1]])
        gram = tf.matmul(flat, flat, transpose_a=True) / tf.cast(tf.shape(flat)[1], tf.float32)
        features = tf.reshape(gram, [tf.shape(gram)[0], -1])
    unit = tf.math.l2_normalize(features, axis=1)
    similarity = tf.matmul(unit, unit, transpose_b=True)
    return tf.reduce_sum(similarity * same_channel) / tf.maximum(tf.reduce_sum(same_channel), 1.0)
