"""MATLAB's ``deepDreamImage(net, layer, channels, Name, Value)``, as its documentation describes it.

    I = deepDreamImage(net, layer, channels, 'PyramidLevels', 3, 'PyramidScale', 1.4,
                       'NumIterations', 10, 'InitialImage', [], 'OutputScaling', 'linear', 'Verbose', true)

"The function uses a multi-resolution image pyramid and Laplacian Pyramid Gradient
Normalization to generate high-resolution images" (MathWorks). So, for each pyramid level from
the smallest: enlarge the image by ``PyramidScale``, then take ``NumIterations`` gradient steps
on the activation strength of each channel, each step's gradient split into frequency bands that
all get the same strength (:func:`laplacian_normalize`, from Mordvintsev's ``render_lapnorm``), so
coarse structure grows as fast as fine detail. The course adds a small random jitter (roll)
before each gradient, as render_lapnorm does.

The source chose layer 142, ``new_fc``: the class scores before the softmax. Any layer works.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from course_lib import models, validate
from course_lib.classviz.objectives import Channels, ModelLike
from course_lib.classviz.render import finish, prepare

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

#: render_lapnorm's ``scale_n=4``: the gradient is split into 4 Laplacian bands plus the low-pass rest.
LAPLACIAN_LEVELS = 4
#: render_lapnorm's 5x5 binomial smoothing kernel, the outer product of [1, 4, 6, 4, 1] / 16.
_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0], np.float32)
#: render_lapnorm's ``step=1.0`` on 0..255 pixels, i.e. 2/255 in the model range [-1, 1].
MATLAB_STEP_SIZE = 2.0 / 255.0
#: Random shift (roll) of the image before each gradient, up to this many pixels each way. This is
#: the course's addition, from Mordvintsev's render_lapnorm and Lucid (8-16 px at 224 px):
#: MathWorks documents only the pyramid and the Laplacian normalisation.
MATLAB_JITTER_PIXELS = 16


def deep_dream_image(
    model: ModelLike,
    layer: str | None,
    channels: Channels,
    *,
    pyramid_levels: int = 3,
    pyramid_scale: float = 1.4,
    num_iterations: int = 10,
    initial_image: Any = None,
    output_scaling: str = "linear",
    verbose: bool = True,
    seed: int | None = None,
    image_size: int | None = None,
    show_progress: bool = True,
) -> np.ndarray:
    """Images that strongly activate channels of a layer: MATLAB's ``deepDreamImage``.

    Args:
        model: a :class:`~course_lib.models.Classifier` (class names work as channels) or a Keras
            model taking images in [-1, 1] (MATLAB's ``net``).
        layer: the layer name (MATLAB's ``layer``), e.g. ``"dense"`` for the embedded classifier,
            ``"new_fc"`` for lesson 07's; ``None``: the last Dense layer (the class scores).
        channels: one channel or a list: indices (0-based) or class names. One image per entry.
        pyramid_levels: 'PyramidLevels' (default 3): the sizes the image grows through.
        pyramid_scale: 'PyramidScale' (default 1.4, > 1): the size ratio between levels.
        num_iterations: 'NumIterations' (default 10), per pyramid level.
        initial_image: 'InitialImage': ``None`` for noise, or a photo (anything
            :func:`course_lib.images.load` accepts), resized so its longer side is ``image_size``.
        output_scaling: 'OutputScaling': ``"linear"`` rescales each image to [0, 1]; ``"none"``
            returns the optimised values in the model range (about [-1, 1]).
        verbose: 'Verbose': print the table of iteration, activation strength, pyramid level.
        seed: random seed for noise and jitter (default ``config.settings.seed``, read now).
        image_size: side of the square output (default: the classifier's input size, else 224).
        show_progress: show a progress bar when ``verbose`` is off.

    Returns:
        float32 array (N, H, W, 3), one image per channel: in [0, 1] for ``"linear"``, in the
        model range for ``"none"``.

    Raises:
        ValueError: a bad layer, channel, size or parameter, saying what is allowed.

    Example:
        >>> classifier = models.dog_breed_classifier()
        >>> tile = deep_dream_image(classifier, "dense", ["Chihuahua", "Doberman"])
        >>> plots.show_grid(tile, ["Chihuahua", "Doberman"])
    """
    pyramid_levels = validate.whole_number("pyramid_levels", pyramid_levels, low=1, example=3)
    pyramid_scale = validate.number("pyramid_scale", pyramid_scale, low=1.0, low_open=True, example=1.4)
    num_iterations = validate.whole_number("num_iterations", num_iterations, low=1, example=10)
    run = prepare(model, layer, channels, image_size=image_size, initial_image=initial_image, seed=seed,
                  output_scaling=output_scaling, verbose=verbose, show_progress=show_progress,
                  total_steps=num_iterations * pyramid_levels, title="MATLAB-style class images")  # fmt: skip
    result = _pyramid_ascent(run.target, run.indices, run.start, pyramid_levels, pyramid_scale, num_iterations,
                             run.rng, run.report)  # fmt: skip
    return finish(run, result, output_scaling)


def _pyramid_ascent(target, indices, start, levels, scale, iterations, rng, report) -> np.ndarray:
    height, width = start.shape[1:3]
    sizes = [(round(height / scale ** (levels - 1 - level)), round(width / scale ** (levels - 1 - level)))
             for level in range(levels)]  # fmt: skip
    min_size = models.min_input_size(target.extractor)
    if min(sizes[0]) < min_size:
        raise ValueError(
            f"The smallest pyramid level would be {sizes[0][1]}x{sizes[0][0]} px, below the network's {min_size} px: "
            f"use fewer pyramid_levels (e.g. {max(1, levels - 1)}), a smaller pyramid_scale or a larger image_size."
        )
    gradient = target.pixel_gradient
    channel_ids = tf.constant(indices, tf.int32)
    image = tf.image.resize(start, sizes[0], antialias=True)
    for level, size in enumerate(sizes, start=1):
        image = tf.image.resize(image, size, method="bicubic")
        for iteration in range(1, iterations + 1):
            shift = rng.integers(-MATLAB_JITTER_PIXELS, MATLAB_JITTER_PIXELS + 1, size=2).astype(np.int32)
            grad, strength = gradient(image, channel_ids, tf.constant(shift))
            image = image + MATLAB_STEP_SIZE * _compiled_laplacian_normalize(grad)
            report(iteration, iterations, float(tf.reduce_mean(strength)), level)
    return image.numpy()


# --- Laplacian-pyramid gradient normalisation (Mordvintsev's render_lapnorm) ---


def _binomial_kernel() -> tf.Tensor:
    kernel = np.outer(_BINOMIAL, _BINOMIAL)
    kernel = kernel / kernel.sum()
    # One 5x5 kernel per colour channel, channels kept apart (render_lapnorm's k5x5 * eye(3)).
    return tf.constant(kernel[:, :, None, None] * np.eye(3, dtype=np.float32)[None, None], tf.float32)


def laplacian_split(image: tf.Tensor, levels: int = LAPLACIAN_LEVELS) -> list[tf.Tensor]:
    """Split images (N, H, W, 3) into ``levels`` band-pass images plus a low-pass rest.

    Returns:
        ``[low_pass, coarsest_band, ..., finest_band]`` (render_lapnorm's order): each band is
        what is lost by blurring and halving the size; :func:`laplacian_merge` puts them back
        together exactly.
    """
    kernel = _binomial_kernel()
    bands = []
    for _ in range(levels):
        low = tf.nn.conv2d(image, kernel, strides=2, padding="SAME")
        up = tf.nn.conv2d_transpose(low, kernel * 4.0, tf.shape(image), strides=2, padding="SAME")
        bands.append(image - up)
        image = low
    bands.append(image)
    return bands[::-1]


def laplacian_merge(bands: Sequence[tf.Tensor]) -> tf.Tensor:
    """The inverse of :func:`laplacian_split`: ``laplacian_merge(laplacian_split(x)) == x``."""
    kernel = _binomial_kernel()
    image = bands[0]
    for band in bands[1:]:
        image = tf.nn.conv2d_transpose(image, kernel * 4.0, tf.shape(band), strides=2, padding="SAME") + band
    return image


def normalize_bands(bands: Sequence[tf.Tensor], epsilon: float = 1e-10) -> list[tf.Tensor]:
    """Divide each band of each image by its root mean square (render_lapnorm's ``normalize_std``)."""
    return [band / tf.maximum(tf.sqrt(tf.reduce_mean(tf.square(band), axis=[1, 2, 3], keepdims=True)), epsilon)
            for band in bands]  # fmt: skip


def laplacian_normalize(gradient: tf.Tensor, levels: int = LAPLACIAN_LEVELS) -> tf.Tensor:
    """Give every frequency band of the gradient unit RMS, then add the bands back together.

    Raw gradients of a classifier are dominated by fine, pixel-level detail; a step along them
    paints noise. After this normalisation coarse bands change the image as much as fine ones,
    so large shapes can form (render_lapnorm; MATLAB's deepDreamImage does the same).
    """
    return laplacian_merge(normalize_bands(laplacian_split(gradient, levels)))


#: :func:`laplacian_normalize`, compiled once for any image size.
_compiled_laplacian_normalize = tf.function(
    laplacian_normalize, input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)]
)
