"""MATLAB's ``deepDreamImage(net, layer, channels, Name, Value)``, as its source and help text describe it.

    I = deepDreamImage(net, layer, channels, 'PyramidLevels', 3, 'PyramidScale', 1.4,
                       'NumIterations', 10, 'InitialImage', [], 'OutputScaling', 'linear', 'Verbose', true)

"The function uses a multi-resolution image pyramid and Laplacian Pyramid Gradient
Normalization to generate high-resolution images" (MathWorks). The pyramid goes UP: MATLAB starts
at the initial image's size (for a class layer: the network's input size), takes
``NumIterations`` steps, and before each later level enlarges the image,
``height = floor(height * octaveScale)`` (``deepDreamImageLaplacianNorm.m``). "Increase the number
of pyramid levels to produce larger output images [...]. Set the number of levels to 1 to produce
an image the same size as 'InitialImage'" (the help text): 3 levels at 1.4 from 224 px give
224, 313, 438 px. The network's input has a fixed size, so each gradient of a larger image is
computed tile by tile (``TiledGradients.computeTiledGradient``: tiles of the input size, the image
zero-padded at the end to whole tiles) after a random roll of up to one tile, which moves the tile
borders every step. Each step's gradient is split into frequency bands that all get the same
strength (:func:`laplacian_normalize`, from Mordvintsev's ``render_lapnorm``), so coarse structure
grows as fast as fine detail. MATLAB rolls only when it tiles; the course rolls at every step
(its jitter, as render_lapnorm and Lucid do).

:func:`pyramid_ascent` is that loop (lesson 09's exercise), :func:`tiled_gradient` the tiled
gradient; :func:`pyramid_images` runs any such loop (a student's) with :func:`deep_dream_image`'s
set-up: the class gradient, the grey start images, the random shifts, MATLAB's table and output
scaling.

MATLAB maximises the layer it is given; the source chose layer 142, ``new_fc``: the class scores
before the softmax.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from course_lib import validate
from course_lib.classviz.objectives import Channels, ModelLike
from course_lib.classviz.render import DEFAULT_IMAGE_SIZE, MAX_IMAGE_SIZE, Run, finish, prepare

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

#: render_lapnorm's ``scale_n=4``: the gradient is split into 4 Laplacian bands plus the low-pass rest.
LAPLACIAN_LEVELS = 4
#: render_lapnorm's 5x5 binomial smoothing kernel, the outer product of [1, 4, 6, 4, 1] / 16.
_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0], np.float32)
#: MATLAB's internal ``StepSize = 1`` on 0..255 pixels (render_lapnorm's ``step=1.0`` too), i.e.
#: 2/255 in the model range [-1, 1].
MATLAB_STEP_SIZE = 2.0 / 255.0

#: A pyramid loop: ``ascent(class_gradient, start, random_shift, normalize, *, levels, scale,
#: iterations, step_size, tile_size) -> images`` (see :func:`pyramid_ascent`).
Ascent = Callable[..., Any]


def pyramid_sizes(height: int, width: int, levels: int, scale: float) -> list[tuple[int, int]]:
    """The (height, width) of each pyramid level, first to last, as ``deepDreamImageLaplacianNorm``:
    the first level is the start size, each later one ``floor(previous * scale)``.

    Example:
        >>> pyramid_sizes(224, 224, 3, 1.4)
        [(224, 224), (313, 313), (438, 438)]
    """
    sizes = [(int(height), int(width))]
    for _ in range(levels - 1):
        height, width = sizes[-1]
        sizes.append((math.floor(height * scale), math.floor(width * scale)))
    return sizes


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
        pyramid_levels: 'PyramidLevels' (default 3): more levels, larger images; 1 keeps the start size.
        pyramid_scale: 'PyramidScale' (default 1.4, > 1): each level after the first is
            ``floor(previous side * pyramid_scale)``.
        num_iterations: 'NumIterations' (default 10), per pyramid level.
        initial_image: 'InitialImage': ``None`` for noise, or a photo (anything
            :func:`course_lib.images.load` accepts), resized so its longer side is ``image_size``.
        output_scaling: 'OutputScaling': ``"linear"`` rescales each image to [0, 1]; ``"none"``
            returns the optimised values in the model range (about [-1, 1]).
        verbose: 'Verbose': print the table of iteration, activation strength, pyramid level.
        seed: random seed for noise and jitter (default ``config.settings.seed``, read now).
        image_size: side of the start image, the first level (default: the classifier's input
            size, else 224, as MATLAB starts at the network's input size). The output is larger:
            see :func:`pyramid_sizes`.
        show_progress: show a progress bar when ``verbose`` is off.

    Returns:
        float32 array (N, H, W, 3), one image per channel, H and W the last pyramid level's
        (3 levels at 1.4 from 224 px: 438 px): in [0, 1] for ``"linear"``, in the model range
        for ``"none"``.

    Raises:
        ValueError: a bad layer, channel, size or parameter, saying what is allowed.

    Example:
        >>> classifier = models.dog_breed_classifier()
        >>> tile = deep_dream_image(classifier, "dense", ["Chihuahua", "Doberman"])
        >>> tile.shape   # 160 px (the classifier's input), then 224 and 313 px
        (2, 313, 313, 3)
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
    tile_size: int = DEFAULT_IMAGE_SIZE,
) -> tf.Tensor:
    """MATLAB's pyramid loop (the reference solution of lesson 09's exercise): ``iterations``
    jittered, tiled, normalised gradient steps at the start size, then the same at each larger level.

    Args:
        class_gradient: images (N, h, w, 3) of at most ``tile_size`` per side -> the gradient of
            each image's class score with respect to its pixels, same shape.
        start: the start images (N, H, W, 3) in the model range: the first level.
        random_shift: () -> a (dy, dx) int32 tensor, drawn once per step (the jitter).
        normalize: gradient -> the step direction (:func:`laplacian_normalize`).
        levels, scale: the levels' sizes, :func:`pyramid_sizes`: the start size, then
            ``floor(previous * scale)``; the image is enlarged (bicubic) before each level after the first.
        iterations: steps per level.
        step_size: how far each step goes along the normalised gradient.
        tile_size: the network's input size: larger images get their gradient tile by tile.

    Returns:
        The images after ``levels * iterations`` steps, the last level's size.
    """
    image = tf.convert_to_tensor(start, tf.float32)
    height, width = image.shape[1], image.shape[2]
    for level in range(levels):
        if level > 0:
            height, width = math.floor(height * scale), math.floor(width * scale)
            image = tf.image.resize(image, (height, width), method="bicubic")
        for _ in range(iterations):
            shift = random_shift()
            gradient = tiled_gradient(class_gradient, tf.roll(image, shift, axis=[1, 2]), tile_size)
            gradient = tf.roll(gradient, -shift, axis=[1, 2])
            image = image + step_size * normalize(gradient)
    return image


def tiled_gradient(class_gradient: Callable[[tf.Tensor], tf.Tensor], image: Any, tile_size: int) -> tf.Tensor:
    """The gradient of images larger than the network's input, tile by tile (MATLAB's
    ``computeTiledGradient``, without its roll: :func:`pyramid_ascent` rolls before every step).

    An image no larger than ``tile_size`` either way is passed whole. A larger one is zero-padded
    at the bottom and right to whole tiles, each ``tile_size`` square is given to
    ``class_gradient`` (all images of the batch at once), and the tiles' gradients are put back in
    place; the padding is cut off. Every pixel lies in exactly one tile.
    """
    tile_size = validate.whole_number("tile_size", tile_size, low=1, example=DEFAULT_IMAGE_SIZE)
    image = tf.convert_to_tensor(image, tf.float32)
    height, width = int(image.shape[1]), int(image.shape[2])
    if height <= tile_size and width <= tile_size:
        return tf.convert_to_tensor(class_gradient(image), tf.float32)
    rows, columns = -(-height // tile_size), -(-width // tile_size)
    padded = tf.pad(image, [[0, 0], [0, rows * tile_size - height], [0, columns * tile_size - width], [0, 0]])
    gradient_rows = []
    for row in range(rows):
        tiles = []
        for column in range(columns):
            y, x = row * tile_size, column * tile_size
            tiles.append(tf.convert_to_tensor(class_gradient(padded[:, y:y + tile_size, x:x + tile_size]), tf.float32))
        gradient_rows.append(tf.concat(tiles, axis=2))
    return tf.concat(gradient_rows, axis=1)[:, :height, :width]


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
    jitter: int | None = None,
    step_size: float = MATLAB_STEP_SIZE,
) -> np.ndarray:
    """Class images made by any pyramid loop (a student's) with :func:`deep_dream_image`'s set-up.

    ``deep_dream_image(...)`` is ``pyramid_images(pyramid_ascent, ...)``. This sets up what the
    loop is given: ``class_gradient`` (the gradient of each image's channel, for images of at most
    the network's input size, MATLAB's tile size), the grey start images, ``random_shift`` and
    ``normalize`` (default: the Laplacian normalisation, wrapped so that each call, one per step,
    prints a row of MATLAB's table when ``verbose``), then checks the loop's result and applies
    'OutputScaling'.

    Args:
        ascent: the loop, called as ``ascent(class_gradient, start, random_shift, normalize,
            levels=..., scale=..., iterations=..., step_size=..., tile_size=...)`` (see :func:`pyramid_ascent`).
        model, layer, channels, pyramid_levels, pyramid_scale, num_iterations, initial_image,
            output_scaling, verbose, seed, image_size, show_progress: as :func:`deep_dream_image`.
        normalize: gradient -> step direction (default :func:`laplacian_normalize`).
        jitter: ``None`` (default): each shift is a random (dy, dx) in [0, tile size), as MATLAB's
            roll before tiling, so that tile borders can fall anywhere; a number n: in [-n, n];
            0 turns the jitter off.
        step_size: passed to the loop (default :data:`MATLAB_STEP_SIZE`).

    Example:
        >>> classviz.pyramid_images(my_pyramid_ascent, classifier, "dense", ["Doberman"], normalize=my_normalize)
    """
    if not callable(ascent):
        raise ValueError(f"ascent must be a function like classviz.pyramid_ascent, got {ascent!r}.")
    pyramid_levels = validate.whole_number("pyramid_levels", pyramid_levels, low=1, example=3)
    pyramid_scale = validate.number("pyramid_scale", pyramid_scale, low=1.0, low_open=True, example=1.4)
    num_iterations = validate.whole_number("num_iterations", num_iterations, low=1, example=10)
    if jitter is not None:
        jitter = validate.whole_number("jitter", jitter, low=0, example=16)
    step_size = validate.positive_number("step_size", step_size, example=MATLAB_STEP_SIZE)
    run = prepare(model, layer, channels, image_size=image_size, initial_image=initial_image, seed=seed,
                  output_scaling=output_scaling, verbose=verbose, show_progress=show_progress,
                  total_steps=num_iterations * pyramid_levels, title="MATLAB-style class images")  # fmt: skip
    sizes = pyramid_sizes(*run.start.shape[1:3], pyramid_levels, pyramid_scale)
    if max(sizes[-1]) > MAX_IMAGE_SIZE:
        raise ValueError(
            f"The last pyramid level would be {sizes[-1][0]}x{sizes[-1][1]} px, above {MAX_IMAGE_SIZE} px (minutes per "
            f"step on a CPU): use fewer pyramid_levels (e.g. {max(1, pyramid_levels - 1)}), a smaller pyramid_scale "
            "or a smaller image_size."
        )
    tile_size = run.target.input_size or DEFAULT_IMAGE_SIZE
    gradient, report = _reporting(run, tile_size, num_iterations)
    step_direction = normalize if normalize is not None else _compiled_laplacian_normalize
    result = ascent(gradient, tf.constant(run.start), _shifts(run.rng, tile_size if jitter is None else jitter,
                                                              centred=jitter is not None),
                    lambda grad: report(step_direction(grad), grad), levels=pyramid_levels, scale=pyramid_scale,
                    iterations=num_iterations, step_size=step_size, tile_size=tile_size)  # fmt: skip
    name = getattr(ascent, "__name__", "the loop")
    if result is None:
        raise ValueError(f"{name} returned None: end it with `return image`.")
    result = np.asarray(result, np.float32)
    expected = (run.start.shape[0], *sizes[-1], 3)
    if result.shape != expected:
        raise ValueError(
            f"{name} returned shape {result.shape}; expected {expected}: the last of the pyramid's sizes "
            f"{', '.join(f'{h}x{w}' for h, w in sizes)} (each level floor(previous * pyramid_scale))."
        )
    return finish(run, result, output_scaling)


def _reporting(run: Run, tile_size: int, iterations: int) -> tuple[Callable, Callable]:
    """The class gradient handed to a loop, and the step report wrapped around its ``normalize``.

    ``class_gradient`` refuses images larger than the network's input (MATLAB's network has a
    fixed input size) and remembers each tile's activation strength; each ``normalize`` call is
    one step: it prints the step's row (the mean strength over its tiles, as MATLAB's
    ``computeTiledGradient`` averages them); a new gradient size starts a new level.
    """
    channel_ids = tf.constant(run.indices, tf.int32)
    no_shift = tf.zeros([2], tf.int32)
    state: dict[str, Any] = {"size": None, "level": 0, "iteration": 0, "strengths": []}

    def class_gradient(image: Any) -> tf.Tensor:
        image = tf.cast(image, tf.float32)
        if image.shape.rank != 4 or max(image.shape[1], image.shape[2]) > tile_size:
            raise ValueError(
                f"class_gradient takes a batch (N, h, w, 3) of images of at most {tile_size}x{tile_size} px, the "
                f"network's input size; got shape {tuple(image.shape)}. Give a larger image's gradient tile by "
                "tile: classviz.tiled_gradient(class_gradient, image, tile_size)."
            )
        gradient, strength = run.target.pixel_gradient(image, channel_ids, no_shift)
        state["strengths"].append(float(tf.reduce_mean(strength)))
        return gradient

    def report(direction: tf.Tensor, gradient: tf.Tensor) -> tf.Tensor:
        size = tuple(gradient.shape[1:3])
        if size != state["size"]:
            state.update(size=size, level=state["level"] + 1, iteration=0)
        state["iteration"] += 1
        strength = float(np.mean(state["strengths"])) if state["strengths"] else float("nan")
        state["strengths"] = []
        run.report(state["iteration"], iterations, strength, state["level"])
        return direction

    return class_gradient, report


def _shifts(rng: np.random.Generator, limit: int, *, centred: bool) -> Callable[[], tf.Tensor]:
    """() -> a random (dy, dx): each in [-limit, limit] if ``centred``, else in [0, limit)."""
    if centred:
        return lambda: tf.constant(rng.integers(-limit, limit + 1, size=2), tf.int32)
    return lambda: tf.constant(rng.integers(0, limit, size=2), tf.int32)


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
