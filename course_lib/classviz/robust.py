"""The robust method: Lucid's recipe for class images people can recognise.

The image is a scaled Fourier spectrum in decorrelated colour (:mod:`.param`); every Adam step
sees it randomly padded, jittered, scaled and rotated (:mod:`.transforms`), so only patterns that
survive all of those (eyes, noses, fur) pay off. Optionally a diversity term pushes several
images of one channel apart (Olah, Mordvintsev, Schubert, "Feature Visualization", Distill 2017).
Switches turn each ingredient off (``fourier``, ``decorrelate``, ``transforms``), so a lesson can
show what each one adds.
"""
from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from course_lib import validate
from course_lib.classviz.objectives import Channels, ChannelTarget, ModelLike, gather_channels
from course_lib.classviz.param import FourierImage, PixelImage, pixels_to_images, spectrum_to_images
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
    fourier: bool = True,
    decorrelate: bool = True,
    transforms: bool = True,
) -> np.ndarray:
    """Images that strongly activate channels of a layer, made with transformation robustness.

    The three switches take the recipe apart, one ingredient at a time (lesson 09's ablation,
    after Distill's "Feature Visualization"); all on (the default) is the full robust method.

    Args:
        model, layer, channels: as :func:`course_lib.classviz.deep_dream_image`; repeat a class
            in ``channels`` to get several images of it (with ``diversity`` > 0 they differ).
        num_iterations: Adam steps (default 256).
        image_size: side of the square output (default: the classifier's input size, else 224).
        initial_image: ``None`` (a grey, faintly textured start) or a photo to start from.
        diversity: weight of a term that pushes images of the same channel apart (0: off).
        output_scaling, verbose, seed, show_progress: as :func:`course_lib.classviz.deep_dream_image`.
        fourier: store the image as its scaled Fourier spectrum (:class:`.param.FourierImage`);
            ``False``: as its pixels (:class:`.param.PixelImage`).
        decorrelate: store decorrelated colour channels (ImageNet's colour covariance); ``False``:
            red, green and blue directly.
        transforms: show the model a randomly padded, jittered, scaled and rotated copy at every
            step (:mod:`.transforms`); ``False``: the image itself.

    Returns:
        float32 array (N, H, W, 3), one image per channel. The first k images do not depend on
        how many are made (each has its own random start; the transforms are drawn apart).

    Example:
        >>> tile = robust_class_images(models.dog_breed_classifier(), "dense", ["Chihuahua", "pug"])
        >>> pixels_only = robust_class_images(classifier, "dense", ["pug"], fourier=False, decorrelate=False)
    """
    num_iterations = validate.whole_number("num_iterations", num_iterations, low=1, example=DEFAULT_ITERATIONS)
    diversity = validate.number("diversity", diversity, low=0.0, example=0.5)
    fourier, decorrelate, transforms = (_switch(name, value) for name, value in
                                        (("fourier", fourier), ("decorrelate", decorrelate), ("transforms", transforms)))
    run = prepare(model, layer, channels, image_size=image_size, initial_image=initial_image, seed=seed,
                  output_scaling=output_scaling, verbose=verbose, show_progress=show_progress,
                  total_steps=num_iterations, title="robust class images", every_row=False)  # fmt: skip
    photo = None if initial_image is None else (run.start + 1.0) / 2.0
    height, width = run.start.shape[1:3]
    start_rng, transform_rng = run.rng.spawn(2)  # apart, so neither depends on the other's draws
    kind = FourierImage if fourier else PixelImage
    parameterization = kind(len(run.indices), height, width, start_rng, photo, decorrelate=decorrelate)
    optimizer = keras.optimizers.Adam(ROBUST_LEARNING_RATE)
    same_channel = np.equal.outer(run.indices, run.indices) & ~np.eye(len(run.indices), dtype=bool)
    arguments = dict(
        constants=parameterization.constants(),
        indices=tf.constant(run.indices, tf.int32), same_channel=tf.constant(same_channel, tf.float32),
        diversity_weight=tf.constant(diversity, tf.float32),
    )  # fmt: skip
    step = _robust_gradient(run.target, fourier, transforms, tuple(parameterization.variable.shape))
    for iteration in range(1, num_iterations + 1):
        transform = random_transform_parameters(transform_rng, min(height, width))
        gradient, strength = step(parameterization.variable, transform=transform, **arguments)
        optimizer.apply_gradients([(gradient, parameterization.variable)])
        run.report(iteration, num_iterations, float(tf.reduce_mean(strength)), 1)
    return finish(run, parameterization().numpy() * 2.0 - 1.0, output_scaling)


def _switch(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, not {value!r}.")
    return bool(value)


#: One compiled gradient per target's feature extractor, reused by later calls.
_GRADIENTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _robust_gradient(target: ChannelTarget, fourier: bool, transforms: bool, shape: tuple[int, ...]) -> Callable:
    """Compiled once per target, recipe and parameter shape: gradient of the robust loss with respect
    to the parameters. (One trace per shape: TensorFlow's gradient of ``irfft2d`` fails when a trace
    made for one batch size is relaxed to another.)"""
    per_model = _GRADIENTS.setdefault(target.extractor, {})
    key = (target.layer_name, target.kernel is not None, fourier, transforms, shape)
    if key in per_model:
        return per_model[key]
    to_images = spectrum_to_images if fourier else pixels_to_images

    @tf.function(reduce_retracing=True)
    def gradient(variable, constants, indices, same_channel, diversity_weight, transform):
        with tf.GradientTape() as tape:
            tape.watch(variable)
            picture = to_images(variable, **constants)
            if transforms:
                picture = robust_transform(picture, **transform)
            scores, features = target.activations(picture * 2.0 - 1.0)
            strength = gather_channels(scores, indices)
            count = tf.cast(tf.shape(strength)[0], tf.float32)
            similarity = _diversity_similarity(features, same_channel)
            loss = -tf.reduce_sum(strength) + diversity_weight * count * similarity
        return tape.gradient(loss, variable), strength

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
