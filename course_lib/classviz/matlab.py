"""MATLAB's ``deepDreamImage(net, layer, channels, Name, Value)``, as its documentation describes it.

    I = deepDreamImage(net, layer, channels, 'PyramidLevels', 3, 'PyramidScale', 1.4,
                       'NumIterations', 10, 'InitialImage', [], 'OutputScaling', 'linear', 'Verbose', true)

"The function uses a multi-resolution image pyramid and Laplacian Pyramid Gradient
Normalization to generate high-resolution images" (MathWorks). So, for each pyramid level from
the smallest: enlarge the image by ``PyramidScale``, then take ``NumIterations`` gradient steps
on the activation strength of each channel, each step's gradient split into frequency bands that
all get the same strength (:func:`laplacian_normalize`, from Mordvintsev's ``render_lapnorm``), so
coarse structure grows as fast as fine detail. MathWorks documents only the pyramid and the
normalisation: the small random jitter (roll) before each gradient is the course's addition,
from render_lapnorm and Lucid.

:func:`pyramid_ascent` is that loop (lesson 09's exercise); :func:`pyramid_images` runs any such
loop (a student's) with :func:`deep_dream_image`'s set-up: the class gradient, the grey start
images, the random shifts, MATLAB's table and output scaling.

MATLAB maximises the layer it is given; the source chose layer 142, ``new_fc``: the class scores
before the softmax.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from course_lib import models, validate
from course_lib.classviz.objectives import Channels, ModelLike
from course_lib.classviz.render import Run, finish, prepare

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

#: A pyramid loop: ``ascent(class_gradient, start, random_shift, normalize, *, levels, scale,
#: iterations, step_size) -> images`` (see :func:`pyramid_ascent`).
Ascent = Callable[..., Any]


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
    return pyramid_images(pyramid_ascent, model, layer, channels, pyramid_levels=pyramid_levels,
                          pyramid_scale=pyramid_scale, num_iterations=num_iterations, initial_image=initial_image,
                          output_scaling=output_scaling, verbose=verbose, seed=seed, image_size=image_size,
                          show_progress=show_progress)  # fmt: skip


def pyramid_ascent(
    class_gradient: Callable[[tf.Tensor], tf.Tensor],
    start: Any,
    random_shift: Callable[[], tf.Tensor],
    normalize: Callable[[tf.Tensor], tf.Tensor],
    levels: int = 3,
    scale: float = 1.4,
    iterations: int = 10,
    step_size: float = MATLAB_STEP_SIZE,
) -> tf.Tensor:
    """MATLAB's pyramid loop: grow images through ``levels`` sizes, ``iterations`` jittered,
    normalised gradient steps at each (the reference solution of lesson 09's exercise).

    Args:
        class_gradient: images (N, h, w, 3) -> the gradient of each image's class score with
            respect to its pixels, same shape.
        start: the start images (N, H, W, 3) in the model range; the result has their size.
        random_shift: () -> a (dy, dx) int32 tensor, drawn once per step (the jitter).
        normalize: gradient -> the step direction (:func:`laplacian_normalize`).
        levels, scale: level ``k`` (0 = smallest) has size ``round(H / scale ** (levels - 1 - k))``
            by ``round(W / scale ** (levels - 1 - k))``; the last level is the full size.
        iterations: steps per level.
        step_size: how far each step goes along the normalised gradient.

    Returns:
        The images (N, H, W, 3) after ``levels * iterations`` steps.
    """
    height, width = start.shape[1], start.shape[2]
    sizes = [(round(height / scale ** (levels - 1 - level)), round(width / scale ** (levels - 1 - level)))
             for level in range(levels)]  # fmt: skip
    image = tf.convert_to_tensor(start, tf.float32)
    for size in sizes:
        image = tf.image.resize(image, size, method="bicubic", antialias=True)
        for _ in range(iterations):
            shift = random_shift()
            gradient = class_gradient(tf.roll(image, shift, axis=[1, 2]))
            gradient = tf.roll(gradient, -shift, axis=[1, 2])
            image = image + step_size * normalize(gradient)
    return image


def pyramid_images(
    ascent: Ascent,
    model: ModelLike,
    layer: str | None,
    channels: Channels,
    *,
    pyramid_levels: int = 3,
    pyramid_scale: float = 1.4,
    num_iterations: int = 10,
    initial_image: Any = None,
    output_scaling: str = "linear",
    verbose: bool = False,
    seed: int | None = None,
    image_size: int | None = None,
    show_progress: bool = True,
    normalize: Callable[[tf.Tensor], tf.Tensor] | None = None,
    jitter: int = MATLAB_JITTER_PIXELS,
    step_size: float = MATLAB_STEP_SIZE,
) -> np.ndarray:
    """Class images made by any pyramid loop (a student's) with :func:`deep_dream_image`'s set-up.

    ``deep_dream_image(...)`` is ``pyramid_images(pyramid_ascent, ...)``. This sets up what the
    loop is given: ``class_gradient`` (the gradient of each image's channel, which also prints
    MATLAB's table when ``verbose``), the grey start images, ``random_shift`` (up to ``jitter``
    pixels each way; 0: no jitter) and ``normalize`` (default: the Laplacian normalisation), then
    checks the loop's result and applies 'OutputScaling'.

    Args:
        ascent: the loop, called as ``ascent(class_gradient, start, random_shift, normalize,
            levels=..., scale=..., iterations=..., step_size=...)`` (see :func:`pyramid_ascent`).
        model, layer, channels, pyramid_levels, pyramid_scale, num_iterations, initial_image,
            output_scaling, verbose, seed, image_size, show_progress: as :func:`deep_dream_image`.
        normalize: gradient -> step direction (default :func:`laplacian_normalize`).
        jitter: largest random shift in pixels (default 16; 0 turns the jitter off).
        step_size: passed to the loop (default :data:`MATLAB_STEP_SIZE`).

    Example:
        >>> classviz.pyramid_images(my_pyramid_ascent, classifier, "dense", ["Doberman"], normalize=my_normalize)
    """
    if not callable(ascent):
        raise ValueError(f"ascent must be a function like classviz.pyramid_ascent, got {ascent!r}.")
    pyramid_levels = validate.whole_number("pyramid_levels", pyramid_levels, low=1, example=3)
    pyramid_scale = validate.number("pyramid_scale", pyramid_scale, low=1.0, low_open=True, example=1.4)
    num_iterations = validate.whole_number("num_iterations", num_iterations, low=1, example=10)
    jitter = validate.whole_number("jitter", jitter, low=0, example=MATLAB_JITTER_PIXELS)
    step_size = validate.positive_number("step_size", step_size, example=MATLAB_STEP_SIZE)
    run = prepare(model, layer, channels, image_size=image_size, initial_image=initial_image, seed=seed,
                  output_scaling=output_scaling, verbose=verbose, show_progress=show_progress,
                  total_steps=num_iterations * pyramid_levels, title="MATLAB-style class images")  # fmt: skip
    height, width = run.start.shape[1:3]
    shrink = pyramid_scale ** (pyramid_levels - 1)
    smallest = min(round(height / shrink), round(width / shrink))
    min_size = models.min_input_size(run.target.extractor)
    if smallest < min_size:
        raise ValueError(
            f"The smallest pyramid level would be {smallest} px, below the network's {min_size} px: "
            f"use fewer pyramid_levels (e.g. {max(1, pyramid_levels - 1)}), a smaller pyramid_scale or a larger "
            "image_size."
        )
    result = ascent(_reporting_gradient(run, num_iterations), tf.constant(run.start), _shifts(run.rng, jitter),
                    normalize if normalize is not None else _compiled_laplacian_normalize, levels=pyramid_levels,
                    scale=pyramid_scale, iterations=num_iterations, step_size=step_size)  # fmt: skip
    if result is None:
        raise ValueError(f"{getattr(ascent, '__name__', 'the loop')} returned None: end it with `return image`.")
    result = np.asarray(result, np.float32)
    if result.shape != run.start.shape:
        raise ValueError(
            f"{getattr(ascent, '__name__', 'the loop')} returned shape {result.shape}; expected the start images' "
            f"shape {run.start.shape} (the last pyramid level is the full size)."
        )
    return finish(run, result, output_scaling)


def _reporting_gradient(run: Run, iterations: int) -> Callable[[tf.Tensor], tf.Tensor]:
    """The class gradient handed to a loop; each call is one step, a new image size a new level."""
    channel_ids = tf.constant(run.indices, tf.int32)
    no_shift = tf.zeros([2], tf.int32)
    state = {"size": None, "level": 0, "iteration": 0}

    def class_gradient(image: Any) -> tf.Tensor:
        image = tf.cast(image, tf.float32)
        gradient, strength = run.target.pixel_gradient(image, channel_ids, no_shift)
        size = tuple(image.shape[1:3])
        if size != state["size"]:
            state.update(size=size, level=state["level"] + 1, iteration=0)
        state["iteration"] += 1
        run.report(state["iteration"], iterations, float(tf.reduce_mean(strength)), state["level"])
        return gradient

    return class_gradient


def _shifts(rng: np.random.Generator, jitter: int) -> Callable[[], tf.Tensor]:
    """() -> a random (dy, dx), each in [-jitter, jitter]."""
    return lambda: tf.constant(rng.integers(-jitter, jitter + 1, size=2), tf.int32)


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
