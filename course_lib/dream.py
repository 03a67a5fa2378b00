"""DeepDream, the TensorFlow tutorial's algorithm: loss, compiled gradient ascent, octaves and tiles.

The names follow the TensorFlow tutorial (``calc_loss``, ``DeepDream``, ``run_deep_dream_simple``,
``random_roll``, ``TiledGradients``, ``run_deep_dream_with_octaves``) so that a student can hold
the tutorial and this module side by side. Three things differ, each for a reason:

* **Which model dreams is an argument, not a global.** Every ``run_*`` function takes
  ``dream_model``: a :class:`course_lib.models.Backbone` (dreams with its default layers), a
  feature-extractor ``keras.Model`` (from :func:`course_lib.models.feature_extractor`), or an engine
  (:class:`DeepDream`) you built yourself. Engines are built once per model and reused, so a whole
  octave run traces (compiles) the gradient-ascent step exactly once.
* **Faster, the same numbers in float32.** :class:`DeepDream` computes the same loss and the same
  gradient as the tutorial, but through :mod:`course_lib.dream_graph` where that module knows the
  network (batch normalisation folded into the convolutions, input gradients written as forward
  convolutions). In float32 the numbers match the tutorial's to ~1e-6. With the default
  ``precision="auto"``, InceptionV3 on a CPU with Intel AMX computes in bfloat16 instead (about
  2.5x faster, gradients within a few per cent, said in a printed line); pass
  ``precision="float32"`` for the exact numbers. ``tests/test_dream.py`` checks the result against
  a plain ``tf.GradientTape`` on the Keras model.
* **Tiles cover every pixel, sized at run time.** The tutorial's ``TiledGradients`` skipped the
  last row and column of tiles and (before tensorflow/docs PR 1995) read the image size at trace
  time. Here the tiles partition the whole image, with sizes computed from ``tf.shape`` at run time.

Images go in as uint8 RGB (anything :func:`course_lib.images.load` reads) and come back as uint8.
Inside, pixels are floats in [-1, 1], the range the backbones expect.

Example:
    >>> from course_lib import dream, models
    >>> bb = models.backbone("dog_breeds")
    >>> dreamed = dream.run_deep_dream_with_octaves(photo, bb, steps_per_octave=50)
"""
from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from course_lib import config, dream_graph, images, models  # noqa: E402
from course_lib.progress import Progress, in_notebook  # noqa: E402

# --- Constants from the TensorFlow DeepDream tutorial (tensorflow.org/tutorials/generative/deepdream) ---
#: ``run_deep_dream_simple(img, steps=100, step_size=0.01)``.
STEP_SIZE = 0.01
#: ``gradients /= tf.math.reduce_std(gradients) + 1e-8``: keeps the division finite on a flat gradient.
GRADIENT_EPSILON = 1e-8
#: ``tf.clip_by_value(img, -1, 1)``: the model's input range.
PIXEL_MIN, PIXEL_MAX = -1.0, 1.0
#: ``OCTAVE_SCALE = 1.30`` and ``for n in range(-2, 3)`` in "Taking it up an octave".
OCTAVE_SCALE = 1.30
OCTAVES = range(-2, 3)
#: ``run_deep_dream_simple(img=img, steps=50, step_size=0.01)`` inside the tutorial's octave loop.
STEPS_PER_OCTAVE = 50
#: ``TiledGradients.__call__(self, img, img_size, tile_size=512)``.
TILE_SIZE = 512
#: The tutorial's tiled loop: ``steps_per_octave=100`` and a preview ``if step % 10 == 0``.
TILED_STEPS_PER_OCTAVE = 100
#: How many steps run inside the graph between two previews (the tutorial's tiled loop shows every 10th step).
STEPS_PER_PREVIEW = 10


# ---------------------------------------------------------------------------------------------
# Loss
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# The compiled gradient-ascent step
# ---------------------------------------------------------------------------------------------


def _loss_function(model: keras.Model, layer_weights: Sequence[float] | None, optimize: bool, precision: str):
    """(``image -> loss``, precision): the fast graph when we know the network, else ``calc_loss``."""
    if precision not in dream_graph.PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(dream_graph.PRECISIONS)}, not {precision!r}.")
    if optimize:
        fast = dream_graph.loss_function(model, layer_weights, precision=precision)
        if fast is not None:
            if fast[1] == "bfloat16" and precision == "auto":
                print("DeepDream computes in bfloat16 on this CPU (Intel AMX): about 2.5x faster, gradients within "
                      "a few per cent of float32. Pass precision='float32' for the exact numbers.")
            return fast
    if precision == "bfloat16":
        raise ValueError(f"precision='bfloat16' needs a network course_lib.dream_graph can rebuild; "
                         f"{model.name} holds other layers. Use precision='float32'.")
    return (lambda img: calc_loss(img, model, layer_weights)), "float32"


def _normalised_gradient(loss_fn, img: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(loss, gradient / (std(gradient) + 1e-8)) for one image."""
    with tf.GradientTape() as tape:
        # The image is a plain tensor, and GradientTape only watches variables by itself.
        tape.watch(img)
        loss = loss_fn(img)
    gradients = tape.gradient(loss, img)
    gradients /= tf.math.reduce_std(gradients) + GRADIENT_EPSILON
    return loss, gradients


class DeepDream(tf.Module):
    """The tutorial's ``DeepDream`` module: ``steps`` gradient-ascent steps, compiled once.

    One step is ``img = clip(img + g / (std(g) + 1e-8) * step_size, -1, 1)`` where ``g`` is the
    gradient of :func:`calc_loss` with respect to the image. The loop runs inside the graph
    (``tf.range``), so many steps cost one call from Python.

    ``__call__`` has an input signature with an unknown height and width, so TensorFlow traces it
    once and then reuses the graph for every image size: an octave loop does not recompile.
    :attr:`trace_count` counts the traces so a test (or a curious student) can check.

    Args:
        model: a feature extractor (image batch -> activation or list of activations).
        layer_weights: optional weight per output layer (see :func:`calc_loss`).
        optimize: compute loss and gradient through :mod:`course_lib.dream_graph` (faster; the same
            numbers in float32) when it knows the network; ``False`` always uses the Keras model as it is.
        precision: ``"auto"`` (default: bfloat16 only where it is measurably faster, i.e. InceptionV3
            on a CPU with Intel AMX, and said so in a printed line; else float32), ``"float32"``
            (the tutorial's numbers, to ~1e-6) or ``"bfloat16"``. See :mod:`course_lib.dream_graph`.

    Attributes:
        trace_count: how many times ``__call__`` was traced (1 after any number of image sizes).
        precision: the precision actually used, ``"float32"`` or ``"bfloat16"``.

    Example:
        >>> deepdream = DeepDream(models.feature_extractor(bb))
        >>> loss, img = deepdream(img, tf.constant(100), tf.constant(0.01))
    """

    def __init__(
        self,
        model: keras.Model,
        layer_weights: Sequence[float] | None = None,
        *,
        optimize: bool = True,
        precision: str = "auto",
    ):
        super().__init__(name="deep_dream")
        self.model = model
        self.output_count = len(model.outputs)
        self.layer_weights = check_layer_weights(layer_weights, self.output_count)
        self.trace_count = 0
        self._loss_fn, self.precision = _loss_function(model, self.layer_weights, optimize, precision)

    @tf.function(
        input_signature=(
            tf.TensorSpec(shape=[None, None, 3], dtype=tf.float32),
            tf.TensorSpec(shape=[], dtype=tf.int32),
            tf.TensorSpec(shape=[], dtype=tf.float32),
        )
    )
    def __call__(self, img: tf.Tensor, steps: tf.Tensor, step_size: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Run ``steps`` steps; return (loss before the last step, new image)."""
        self.trace_count += 1  # Python code runs only while TensorFlow traces.
        loss = tf.constant(0.0)
        for _ in tf.range(steps):
            loss, gradients = _normalised_gradient(self._loss_fn, img)
            # Gradient *ascent*: the loss grows, so the image excites the chosen layers more.
            img = img + gradients * step_size
            img = tf.clip_by_value(img, PIXEL_MIN, PIXEL_MAX)
        return loss, img


#: Engines (and feature extractors) built so far, most recently used last. Each engine holds its
#: compiled graph and a copy of the weights it needs, so only the last few are kept.
_ENGINES: OrderedDict[tuple, Any] = OrderedDict()
ENGINE_CACHE_SIZE = 8


def _cached(key: tuple, build) -> Any:
    if key in _ENGINES:
        _ENGINES.move_to_end(key)
    else:
        _ENGINES[key] = build()
        while len(_ENGINES) > ENGINE_CACHE_SIZE:
            _ENGINES.popitem(last=False)
    return _ENGINES[key]


def engine_for(dream_model: Any, layer_weights: Sequence[float] | None = None) -> DeepDream:
    """The :class:`DeepDream` engine for a backbone, a feature extractor or an engine; built once.

    Reusing the engine means reusing its compiled graph: the second dream with the same model
    starts at once, without tracing again.
    """
    if isinstance(dream_model, DeepDream):
        if layer_weights is not None and check_layer_weights(layer_weights, dream_model.output_count) != dream_model.layer_weights:
            raise ValueError("This DeepDream engine was built with other layer_weights; "
                             "build a new one with DeepDream(model, layer_weights=...).")
        return dream_model
    model = _as_model(dream_model)
    # The cached engine holds the model, so the model stays alive while its id is a key: no other
    # model can come to have that id and be handed this engine.
    key = ("simple", id(model), check_layer_weights(layer_weights, len(model.outputs)))
    return _cached(key, lambda: DeepDream(model, layer_weights))


def _as_model(dream_model: Any) -> keras.Model:
    if isinstance(dream_model, models.Backbone):
        key = ("features", dream_model.name, dream_model.dream_layers)
        return _cached(key, lambda: models.feature_extractor(dream_model))
    if isinstance(dream_model, keras.Model):
        return dream_model
    raise ValueError(
        f"dream_model must be a Backbone (models.backbone(...)), a feature extractor "
        f"(models.feature_extractor(backbone, layers)) or a DeepDream engine, not {type(dream_model).__name__}."
    )


def _min_size_of(dream_model: Any) -> int:
    """The smallest image side the dreaming network accepts (see :func:`models.min_input_size`)."""
    model = dream_model.model if isinstance(dream_model, (DeepDream, TiledGradients)) else dream_model
    return models.min_input_size(model)


# ---------------------------------------------------------------------------------------------
# Parameter checks (clear errors before any work starts)
# ---------------------------------------------------------------------------------------------


def _check_positive(name: str, value: Any, example: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, not {value!r}. Try {name}={example}.") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"{name} is {value!r}, but it must be a finite number > 0. Try {name}={example}.")
    return number


def _check_seed(seed: Any) -> int:
    """The seed as an int; ``None`` means ``config.settings.seed``, read now (not at import)."""
    if seed is None:
        return int(config.settings.seed)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be a whole number such as 42, or None for the course's seed; got {seed!r}.")
    return int(seed)


def _check_steps(name: str, value: Any, example: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be a whole number >= 0, not {value!r}. Try {name}={example}.")
    if value < 0:
        raise ValueError(f"{name} is {value}, but it must be >= 0. Try {name}={example}.")
    return int(value)


def octave_sizes(
    base_shape: Sequence[int],
    octaves: Iterable[int] = OCTAVES,
    octave_scale: float = OCTAVE_SCALE,
    *,
    min_size: int = 1,
) -> list[tuple[int, int]]:
    """The (height, width) the image takes at each octave: ``base_shape * octave_scale ** octave``.

    A size whose shorter side falls below ``min_size`` (the network's smallest input) is scaled up,
    keeping its aspect ratio, to exactly ``min_size`` on the shorter side, and a note is printed:
    a dream at that octave would otherwise fail inside the network.

    Raises:
        ValueError: for an empty ``octaves``, a non-integer octave, an ``octave_scale`` that is
            not a finite number > 0, or an octave larger than :data:`course_lib.images.MAX_PIXELS`
            pixels (it would need tens of GB and be killed for lack of memory, not fail cleanly).

    Example:
        >>> octave_sizes((375, 500))
        [(221, 295), (288, 384), (375, 500), (487, 650), (633, 845)]
    """
    octave_scale = _check_positive("octave_scale", octave_scale, "1.3 (the tutorial's)")
    octave_list = list(octaves)
    if not octave_list:
        raise ValueError("octaves is empty, so nothing would be dreamed. Use e.g. octaves=range(-2, 3).")
    for octave in octave_list:
        if isinstance(octave, bool) or not isinstance(octave, (int, np.integer)):
            raise ValueError(f"octaves must be whole numbers like range(-2, 3); got {octave!r}.")
    height, width = int(base_shape[0]), int(base_shape[1])
    sizes = []
    for octave in octave_list:
        factor = octave_scale ** int(octave)
        # The tutorial: tf.cast(float_base_shape * (OCTAVE_SCALE**n), tf.int32), i.e. truncation.
        new_height, new_width = int(height * factor), int(width * factor)
        if min(new_height, new_width) < min_size:
            grow = min_size / max(min(new_height, new_width), 1)
            clamped = (max(min_size, math.ceil(new_height * grow)), max(min_size, math.ceil(new_width * grow)))
            print(
                f"Note: octave {octave} would make the image {new_height}x{new_width} px, smaller than the "
                f"network's minimum of {min_size} px; dreaming that octave at {clamped[0]}x{clamped[1]} px instead."
            )
            new_height, new_width = clamped
        if new_height * new_width > images.MAX_PIXELS:
            raise ValueError(
                f"octave {octave} would make the image {new_height}x{new_width} px "
                f"({new_height * new_width:,} pixels), more than the course's limit of {images.MAX_PIXELS:,}. "
                f"Use fewer or lower octaves (e.g. range(-2, 3)), a smaller octave_scale, or a smaller photo."
            )
        sizes.append((new_height, new_width))
    return sizes


# ---------------------------------------------------------------------------------------------
# Loops: simple, octaves
# ---------------------------------------------------------------------------------------------


def _load_image(img: Any, min_size: int) -> np.ndarray:
    return images.load(img, min_size=min_size)


#: Previews are shrunk to this longest side: enough to watch, and a 6000 px dream stays cheap to show.
PREVIEW_MAX_DIM = 512


def _show_preview(bar: Progress, img: tf.Tensor) -> None:
    """Show the dream so far in the progress bar's preview (Jupyter only; skipped elsewhere)."""
    if not (bar.enabled and in_notebook()):
        return  # converting a big image for a preview nobody sees would cost time and memory
    height, width = int(img.shape[0]), int(img.shape[1])
    if max(height, width) > PREVIEW_MAX_DIM:
        scale = PREVIEW_MAX_DIM / max(height, width)
        img = tf.image.resize(img, (max(1, round(height * scale)), max(1, round(width * scale))), "area")
    bar.preview(images.from_model_range(img.numpy()))


#: Rows converted to uint8 at a time: converting works in float64, 8 bytes per value, so a
#: 4000x3000 dream converted in one piece would need about 1 GB of temporaries.
ROWS_PER_CONVERSION = 256


def _to_uint8(img: tf.Tensor) -> np.ndarray:
    """The dream as uint8 pixels (:func:`course_lib.images.from_model_range`), a band of rows at a time."""
    pixels = img.numpy()
    return np.concatenate([images.from_model_range(pixels[top:top + ROWS_PER_CONVERSION])
                           for top in range(0, pixels.shape[0], ROWS_PER_CONVERSION)], axis=0)


def _dream_steps(
    engine: DeepDream, img: tf.Tensor, steps: int, step_size: float, bar: Progress, done: int, status: str
) -> tuple[tf.Tensor, int, float]:
    """Run ``steps`` steps in chunks (one graph call each), updating bar and preview between chunks."""
    loss = float("nan")
    remaining = steps
    step_size_tensor = tf.constant(step_size, dtype=tf.float32)
    while remaining:
        run_steps = min(remaining, STEPS_PER_PREVIEW)
        loss_tensor, img = engine(img, tf.constant(run_steps, dtype=tf.int32), step_size_tensor)
        remaining -= run_steps
        done += run_steps
        loss = float(loss_tensor)
        bar.update(done, f"{status}loss {loss:.3f}")
        _show_preview(bar, img)
    return img, done, loss


def run_deep_dream_simple(
    img: Any,
    dream_model: Any,
    steps: int = 100,
    step_size: float = STEP_SIZE,
    *,
    layer_weights: Sequence[float] | None = None,
    show_progress: bool = True,
) -> np.ndarray:
    """The tutorial's simple loop: ``steps`` gradient-ascent steps on the image at its own size.

    Args:
        img: the photo: uint8 RGB array, path, URL, PIL image (anything ``images.load`` reads).
        dream_model: a Backbone, a feature extractor, or a :class:`DeepDream` engine (see the
            module docstring). The tutorial uses a global ``deepdream``; here it is passed in.
        steps: gradient-ascent steps (the tutorial: 100). 0 returns the photo unchanged.
        step_size: how far each step moves the pixels (the tutorial: 0.01).
        layer_weights: optional weight per dream layer.
        show_progress: a progress bar (and, in Jupyter, a preview that updates in place).

    Returns:
        The dream, uint8 RGB, same size as the photo.

    Raises:
        ValueError: for a bad image, steps < 0, or a step size that is not a finite number > 0.

    Example:
        >>> dream_img = run_deep_dream_simple(original_img, models.backbone("dog_breeds"), steps=100)
    """
    steps = _check_steps("steps", steps, 100)
    step_size = _check_positive("step_size", step_size, "0.01 (the tutorial's)")
    original = _load_image(img, _min_size_of(dream_model))
    engine = engine_for(dream_model, layer_weights)
    x = tf.convert_to_tensor(images.to_model_range(original), dtype=tf.float32)
    bar = Progress(steps, "dreaming", preview=True, enabled=show_progress)
    x, _, loss = _dream_steps(engine, x, steps, step_size, bar, 0, "")
    bar.close(f"{steps} steps, loss {loss:.3f}" if steps else "0 steps")
    return _to_uint8(x)


def run_deep_dream_with_octaves(
    img: Any,
    dream_model: Any,
    steps_per_octave: int = STEPS_PER_OCTAVE,
    step_size: float = STEP_SIZE,
    octaves: Iterable[int] = OCTAVES,
    octave_scale: float = OCTAVE_SCALE,
    *,
    layer_weights: Sequence[float] | None = None,
    show_progress: bool = True,
) -> np.ndarray:
    """The tutorial's "Taking it up an octave": dream at several scales, small to large.

    Each octave resizes the dream so far to ``base_size * octave_scale ** octave`` and runs
    ``steps_per_octave`` steps. Patterns made at a small scale grow with the image, so the result
    has structure at several sizes, less noise, and a higher resolution than the simple loop.
    One engine (one trace) serves every octave.

    Args:
        img: the photo (anything ``images.load`` reads).
        dream_model: a Backbone, a feature extractor, or a :class:`DeepDream` engine.
        steps_per_octave: steps at each scale (the tutorial: 50).
        step_size: the tutorial's 0.01.
        octaves: the octave numbers, e.g. ``range(-2, 3)`` (the tutorial's).
        octave_scale: size ratio between octaves (the tutorial's 1.30).
        layer_weights: optional weight per dream layer.
        show_progress: a progress bar (and, in Jupyter, a preview that updates in place).

    Returns:
        The dream, uint8 RGB, resized back to the photo's size.

    Raises:
        ValueError: for bad parameters (see :func:`octave_sizes`). Octaves that would shrink the
            image below the network's minimum size are dreamed at that minimum, with a printed note.

    Example:
        >>> dream_img = run_deep_dream_with_octaves(original_img, models.backbone("dog_breeds"))
    """
    steps_per_octave = _check_steps("steps_per_octave", steps_per_octave, 50)
    step_size = _check_positive("step_size", step_size, "0.01 (the tutorial's)")
    octaves = list(octaves)  # read once: a generator would be empty by the time the loop reads it
    min_size = _min_size_of(dream_model)
    original = _load_image(img, min_size)
    sizes = octave_sizes(original.shape[:2], octaves, octave_scale, min_size=min_size)
    engine = engine_for(dream_model, layer_weights)
    x = tf.convert_to_tensor(images.to_model_range(original), dtype=tf.float32)
    bar = Progress(steps_per_octave * len(sizes), "dreaming", preview=True, enabled=show_progress)
    done, loss = 0, float("nan")
    for octave_number, size in zip(octaves, sizes):
        x = tf.image.resize(x, size)
        x, done, loss = _dream_steps(engine, x, steps_per_octave, step_size, bar, done, f"octave {octave_number}, ")
    bar.close(f"{len(sizes)} octaves, loss {loss:.3f}")
    x = tf.image.resize(x, original.shape[:2])
    return _to_uint8(x)


# ---------------------------------------------------------------------------------------------
# Random roll and tiled gradients (large images in bounded memory)
# ---------------------------------------------------------------------------------------------


def random_roll(
    img: tf.Tensor, maxroll: int | tf.Tensor, generator: tf.random.Generator | None = None
) -> tuple[tf.Tensor, tf.Tensor]:
    """Shift the image by a random (dy, dx) in [-maxroll, maxroll), wrapping around the edges.

    Tiles are cut at fixed places; rolling the image first moves the cuts to a different place in
    the picture at every step, so no seam can build up at a tile border.

    Returns:
        ``(shift, rolled_image)``; roll back with ``tf.roll(x, -shift, axis=[0, 1])``.
    """
    shift = _random_shift(maxroll, generator)
    img_rolled = tf.roll(img, shift=shift, axis=[0, 1])
    return shift, img_rolled


def _random_shift(maxroll: int | tf.Tensor, generator: tf.random.Generator | None = None) -> tf.Tensor:
    """(dy, dx), each uniform in [-maxroll, maxroll), as in the tutorial's ``random_roll``."""
    maxroll = tf.cast(maxroll, tf.int32)
    if generator is None:
        return tf.random.uniform(shape=[2], minval=-maxroll, maxval=maxroll, dtype=tf.int32)
    return generator.uniform(shape=[2], minval=-maxroll, maxval=maxroll, dtype=tf.int32)


def tile_bounds(length: tf.Tensor | int, tile_size: tf.Tensor | int) -> tf.Tensor:
    """Where tiles start and end along one side: ``n + 1`` bounds for ``n = ceil(length / tile_size)`` tiles.

    The tiles partition the whole side (every pixel in exactly one tile, edge included) and are
    as equal as possible (lengths differ by at most 1), so none is a thin sliver: each is at least
    ``ceil(tile_size / 2)`` pixels long, or the whole side when that is shorter than ``tile_size``.
    (A side of ``tile_size + 1`` gives the shortest tiles: 513 px with 512 px tiles gives 256 + 257.)
    Computed from tensors, so it works with sizes known only at run time.

    Example:
        >>> tile_bounds(1000, 512).numpy()
        array([   0,  500, 1000], dtype=int32)
        >>> tile_bounds(513, 512).numpy()
        array([  0, 256, 513], dtype=int32)
    """
    length = tf.cast(length, tf.int32)
    tile_size = tf.cast(tile_size, tf.int32)
    count = tf.maximum((length + tile_size - 1) // tile_size, 1)
    return (tf.range(count + 1) * length) // count


class TiledGradients(tf.Module):
    """The tutorial's ``TiledGradients``: the dream gradient of a large image, one tile at a time.

    Memory grows with the tile, not the image: the network never sees more than
    ``tile_size x tile_size`` pixels at once. Before tiling, the image is rolled by a random shift
    (as :func:`random_roll` does) so tile borders fall somewhere new at every step and leave no
    seams. The roll is applied one band of tiles at a time, never to a full copy of the image, and
    the standard deviation is summed tile by tile: a 4000x3000 photo (6760x5070 px at octave 2)
    dreams in under 4 GiB (``bench/memory_tiled.py``).

    Fixed against the tutorial: the image size is read with ``tf.shape`` at run time (the bug
    tensorflow/docs PR 1995 fixed), and the tiles cover every pixel, edge tiles included (the
    tutorial skipped the last tile in each direction).

    Args:
        model: a feature extractor.
        tile_size: the largest tile side in pixels (the tutorial: 512).
        layer_weights: optional weight per output layer.
        optimize, precision: as in :class:`DeepDream`.
        seed: seeds :attr:`generator`, which draws the random roll (default ``config.settings.seed``).
            :func:`run_deep_dream_with_tiles` re-seeds it at the start of every run.

    Attributes:
        generator: the ``tf.random.Generator`` of the random rolls. It keeps its state between
            calls, so reset it (``generator.reset_from_seed(seed)``) to repeat a dream exactly.

    Example:
        >>> get_tiled_gradients = TiledGradients(models.feature_extractor(bb), tile_size=512)
        >>> gradients = get_tiled_gradients(img)   # same shape as img, std 1
    """

    def __init__(
        self,
        model: keras.Model,
        tile_size: int = TILE_SIZE,
        layer_weights: Sequence[float] | None = None,
        *,
        optimize: bool = True,
        precision: str = "auto",
        seed: int | None = None,
    ):
        super().__init__(name="tiled_gradients")
        self.model = model
        self.tile_size = int(_check_steps("tile_size", tile_size, TILE_SIZE))
        if self.tile_size < 1:
            raise ValueError(f"tile_size is {tile_size}; it must be >= 1 (the tutorial uses 512).")
        self.output_count = len(model.outputs)
        self.layer_weights = check_layer_weights(layer_weights, self.output_count)
        self.trace_count = 0
        self.generator = tf.random.Generator.from_seed(_check_seed(seed))
        self._loss_fn, self.precision = _loss_function(model, self.layer_weights, optimize, precision)

    @tf.function(input_signature=(tf.TensorSpec(shape=[None, None, 3], dtype=tf.float32),))
    def __call__(self, img: tf.Tensor) -> tf.Tensor:
        """The normalised gradient (std 1) of the summed tile losses, same shape as ``img``."""
        self.trace_count += 1
        # The tutorial rolls the whole image (random_roll) and cuts the rolled copy into tiles. Here
        # the same roll is applied one band of tile rows at a time, so no rolled copy of the whole
        # image is ever made (at 6760x5070 px it would be 400 MB): rolled[y] = img[(y - shift) mod H].
        shift = _random_shift(self.tile_size, self.generator)
        # Run-time sizes (tf.shape), never img.shape, which is [None, None, 3] while tracing.
        image_shape = tf.shape(img)
        y_bounds = tile_bounds(image_shape[0], self.tile_size)
        x_bounds = tile_bounds(image_shape[1], self.tile_size)
        tile_rows = tf.size(y_bounds) - 1
        tile_columns = tf.size(x_bounds) - 1
        rows = tf.TensorArray(tf.float32, size=tile_rows, infer_shape=False)
        # The standard deviation is gathered tile by tile (sum and sum of squares, in float64), so
        # no image-sized temporary is needed for it either.
        total = tf.constant(0.0, tf.float64)
        total_of_squares = tf.constant(0.0, tf.float64)
        for row in tf.range(tile_rows):
            band_rows = tf.math.floormod(tf.range(y_bounds[row], y_bounds[row + 1]) - shift[0], image_shape[0])
            band = tf.roll(tf.gather(img, band_rows, axis=0), shift=shift[1], axis=1)
            # Tiles of one band are joined side by side: transpose so TensorArray.concat joins along width.
            row_tiles = tf.TensorArray(tf.float32, size=tile_columns, infer_shape=False)
            for column in tf.range(tile_columns):
                img_tile = band[:, x_bounds[column]:x_bounds[column + 1]]
                with tf.GradientTape() as tape:
                    tape.watch(img_tile)
                    loss = self._loss_fn(img_tile)
                tile_gradients = tape.gradient(loss, img_tile)
                total += tf.reduce_sum(tf.cast(tile_gradients, tf.float64))
                total_of_squares += tf.reduce_sum(tf.square(tf.cast(tile_gradients, tf.float64)))
                row_tiles = row_tiles.write(column, tf.transpose(tile_gradients, [1, 0, 2]))
            band_gradients = tf.transpose(row_tiles.concat(), [1, 0, 2])
            # Undo the random shift: across the width now, band by band; down the height below.
            rows = rows.write(row, tf.roll(band_gradients, shift=-shift[1], axis=1))
        gradients = tf.reshape(rows.concat(), image_shape)
        gradients = tf.roll(gradients, shift=-shift[0], axis=0)
        # Normalize the gradients: the same tf.math.reduce_std(gradients) as the tutorial, from the sums.
        count = tf.cast(tf.size(gradients), tf.float64)
        variance = tf.maximum(total_of_squares / count - tf.square(total / count), 0.0)
        gradients /= tf.cast(tf.sqrt(variance), tf.float32) + GRADIENT_EPSILON
        return gradients


def tiled_engine_for(dream_model: Any, tile_size: int = TILE_SIZE, layer_weights: Sequence[float] | None = None) -> TiledGradients:
    """The :class:`TiledGradients` for a backbone, a feature extractor or itself; built once per model."""
    if isinstance(dream_model, TiledGradients):
        return dream_model
    model = dream_model.model if isinstance(dream_model, DeepDream) else _as_model(dream_model)
    tile_size = _check_steps("tile_size", tile_size, TILE_SIZE)
    key = ("tiled", id(model), tile_size, check_layer_weights(layer_weights, len(model.outputs)))
    return _cached(key, lambda: TiledGradients(model, tile_size, layer_weights))


@tf.function(
    input_signature=(
        tf.TensorSpec(shape=[None, None, 3], dtype=tf.float32),
        tf.TensorSpec(shape=[None, None, 3], dtype=tf.float32),
        tf.TensorSpec(shape=[], dtype=tf.float32),
    )
)
def _ascend(img: tf.Tensor, gradients: tf.Tensor, step_size: tf.Tensor) -> tf.Tensor:
    """``clip(img + gradients * step_size, -1, 1)`` in one graph, so TensorFlow can reuse buffers
    (at 6760x5070 px every temporary copy of the image is 400 MB)."""
    return tf.clip_by_value(img + gradients * step_size, PIXEL_MIN, PIXEL_MAX)


def run_deep_dream_with_tiles(
    img: Any,
    dream_model: Any,
    steps_per_octave: int = TILED_STEPS_PER_OCTAVE,
    step_size: float = STEP_SIZE,
    octaves: Iterable[int] = OCTAVES,
    octave_scale: float = OCTAVE_SCALE,
    tile_size: int = TILE_SIZE,
    *,
    layer_weights: Sequence[float] | None = None,
    seed: int | None = None,
    show_progress: bool = True,
) -> np.ndarray:
    """The tutorial's tiled octave loop (its second ``run_deep_dream_with_octaves``): big images, bounded memory.

    The same octaves as :func:`run_deep_dream_with_octaves`, but every step computes the gradient
    tile by tile (:class:`TiledGradients`), so a 4000x3000 photo dreams in a few GiB.

    Args:
        img: the photo (anything ``images.load`` reads).
        dream_model: a Backbone, a feature extractor, or a :class:`TiledGradients`.
        steps_per_octave: the tutorial's tiled loop uses 100.
        step_size, octaves, octave_scale: as in :func:`run_deep_dream_with_octaves`.
        tile_size: the largest tile side in pixels (the tutorial's 512). Tiles can be as short as
            half of it (see :func:`tile_bounds`), so it must be at least twice the network's
            minimum input size (150 px for InceptionV3, 64 px for the MobileNetV2 backbones).
        layer_weights: optional weight per dream layer.
        seed: seed of the random rolls, the only random thing in a dream (default
            ``config.settings.seed``): the same photo, settings and seed give the same dream.
        show_progress: a progress bar (and, in Jupyter, a preview every 10 steps).

    Returns:
        The dream, uint8 RGB, the photo's size.

    Raises:
        ValueError: for bad parameters, e.g. a ``tile_size`` under twice the network's minimum
            size, or an octave larger than :data:`course_lib.images.MAX_PIXELS` pixels.
    """
    steps_per_octave = _check_steps("steps_per_octave", steps_per_octave, 100)
    step_size = _check_positive("step_size", step_size, "0.01 (the tutorial's)")
    tile_size = _check_steps("tile_size", tile_size, TILE_SIZE)
    seed = _check_seed(seed)
    octaves = list(octaves)  # read once: a generator would be empty by the time the loop reads it
    min_size = _min_size_of(dream_model)
    if tile_size < 2 * min_size:
        # tile_bounds makes tiles as short as ceil(tile_size / 2); each must still fit the network.
        raise ValueError(f"tile_size is {tile_size}, but tiles can be as short as half of it and the network needs "
                         f"at least {min_size} px, so tile_size must be >= {2 * min_size}. "
                         f"Use e.g. tile_size={TILE_SIZE} (the tutorial's).")
    original = _load_image(img, min_size)
    sizes = octave_sizes(original.shape[:2], octaves, octave_scale, min_size=min_size)
    get_tiled_gradients = tiled_engine_for(dream_model, tile_size, layer_weights)
    # The cached engine's generator has moved on since its last dream: start it again from the seed.
    get_tiled_gradients.generator.reset_from_seed(seed)
    step_size_tensor = tf.constant(step_size, tf.float32)
    x = tf.convert_to_tensor(images.to_model_range(original), dtype=tf.float32)
    bar = Progress(steps_per_octave * len(sizes), "dreaming in tiles", preview=True, enabled=show_progress)
    done = 0
    for octave_number, size in zip(octaves, sizes):
        x = tf.image.resize(x, size)
        for step in range(steps_per_octave):
            gradients = get_tiled_gradients(x)
            x = _ascend(x, gradients, step_size_tensor)
            del gradients
            done += 1
            bar.update(done, f"octave {octave_number}, step {step + 1}")
            if (step + 1) % STEPS_PER_PREVIEW == 0 or step + 1 == steps_per_octave:
                _show_preview(bar, x)
    bar.close(f"{len(sizes)} octaves")
    x = tf.image.resize(x, original.shape[:2])
    return _to_uint8(x)
