"""DeepDream, the TensorFlow tutorial's algorithm: the loss, the compiled gradient ascent, octaves.

The names follow the TensorFlow tutorial (``calc_loss``, ``DeepDream``, the octave loop) so that a
student can hold the tutorial and this module side by side; the lessons have the student write
each of them, and this module is the reference. The loss and the one step (``calc_loss``,
``ascent_step`` and the tutorial's constants) live in :mod:`course_lib.ascent`, below every
dream, and are re-exported here under the same names; random rolls and tiled gradients are in
:mod:`course_lib.tiles`. Three things differ from the tutorial, each for a reason:

* **One entry point.** :func:`run_deep_dream` is the tutorial's simple loop (``octaves=(0,)``),
  its octave loop (``octaves=range(-2, 3)``) and its tiled loop (``tile_size=512``), because they
  are one algorithm with options. Which model dreams is an argument, not a global:
  ``dream_model`` is a :class:`course_lib.models.Backbone` (its default layers), a feature
  extractor ``keras.Model``, or an engine you built. Engines are built once per model and reused,
  so a whole octave run traces (compiles) the gradient-ascent step exactly once.
* **Faster, the same numbers.** :class:`DeepDream` computes the tutorial's loss and gradient, but
  through :mod:`course_lib.dream_graph` where that module knows the network (batch normalisation
  folded into the convolutions, input gradients as forward convolutions): the same float32
  numbers up to rounding. ``tests/test_dream.py`` checks it against a plain ``tf.GradientTape`` on
  the Keras model. With ``precision="auto"``, InceptionV3 on a CPU with Intel AMX computes in
  bfloat16 instead (about 1.6x faster there per octave, gradients within a few per cent; a printed line
  says so); pass ``precision="float32"`` for the exact numbers.
* **Tiles cover every pixel, sized at run time** (:mod:`course_lib.tiles`).

Images go in as uint8 RGB (anything :func:`course_lib.images.load` reads) and come back as uint8.
Inside, pixels are floats in [-1, 1], the range the backbones expect.

Example:
    >>> from course_lib import dream, models
    >>> bb = models.backbone("dog_breeds")
    >>> dreamed = dream.run_deep_dream(photo, bb, steps_per_octave=50, octaves=range(-2, 3))
"""
from __future__ import annotations

import math
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from course_lib import images, models, validate  # noqa: E402
from course_lib.ascent import (  # noqa: E402,F401  (re-exported: the lessons know them as dream.*)
    GRADIENT_EPSILON,
    PIXEL_MAX,
    PIXEL_MIN,
    STEP_SIZE,
    ascent_step,
    calc_loss,
    check_layer_weights,
    loss_function,
)
from course_lib.progress import Progress, in_notebook  # noqa: E402
from course_lib.tiles import TILE_SIZE, TiledGradients, ascend  # noqa: E402,F401

# --- Constants from the TensorFlow DeepDream tutorial (tensorflow.org/tutorials/generative/deepdream) ---
# The step's own (STEP_SIZE, GRADIENT_EPSILON, PIXEL_MIN, PIXEL_MAX) are in course_lib.ascent, imported above.
#: ``OCTAVE_SCALE = 1.30`` and ``for n in range(-2, 3)`` in "Taking it up an octave".
OCTAVE_SCALE = 1.30
OCTAVES = range(-2, 3)
#: ``run_deep_dream_simple(img=img, steps=50, step_size=0.01)`` inside the tutorial's octave loop.
STEPS_PER_OCTAVE = 50
#: Steps between two previews of the dream so far (the tutorial's tiled loop shows every 10th step,
#: ``if step % 10 == 0``), and the default number of steps between two frames of an animation.
STEPS_PER_PREVIEW = 10
#: Longest side of the frames recorded for an animation: small, so a GIF of a dream stays light.
FRAME_MAX_DIM = 256


class DeepDream(tf.Module):
    """The library's DeepDream engine: ``steps`` steps of the tutorial's gradient ascent, compiled once.

    One step is :func:`course_lib.ascent.ascent_step`: ``img = clip(img + g / (std(g) + 1e-8) *
    step_size, -1, 1)`` where ``g`` is the gradient of :func:`calc_loss` with respect to the image.

    **Not the class you write in lesson 04**, though it takes the same step and gives the same
    numbers (``tests/test_dream.py`` checks it against a plain ``tf.GradientTape``). Yours is the
    tutorial's: one ``tf.function`` whose ``tf.range`` loop runs every step inside the graph, the
    loss from :func:`calc_loss` on the Keras model. This engine differs in three ways, each for speed:

    * **A Python loop around a compiled one-step graph.** :meth:`step` is the ``tf.function``
      (an input signature of unknown height and width, so it is traced once for every image size:
      :attr:`trace_count` counts the traces); :meth:`__call__` calls it ``steps`` times from
      Python. The calls cost nothing measurable (MobileNetV2 steps: 34.1 ms this way, 34.9 ms in a
      graph loop), and outside a graph loop TensorFlow's oneDNN kernels used their fast
      max-pooling gradient in every process we tried: InceptionV3 steps took 115 or 145-150 ms
      inside a graph loop, depending on the process, and 118 ms every time this way (float32,
      403x500 px, three processes each on a 2-core Xeon). It also lets :func:`run_deep_dream`
      show progress between any two steps.
    * **``optimize``**: the loss and gradient come from :mod:`course_lib.dream_graph`'s rebuilt
      network (batch norm folded, input gradients as forward convolutions) where it knows the
      network: the same float32 numbers, less work.
    * **``precision``**: bfloat16 where the CPU makes it pay (Intel AMX with oneDNN), else float32.

        Args:
        model: a feature extractor (image batch -> activation or list of activations).
        layer_weights: optional weight per output layer (see :func:`calc_loss`).
        optimize: compute loss and gradient through :mod:`course_lib.dream_graph` (faster; the same
            numbers in float32) when it knows the network; ``False`` always uses the Keras model as it is.
        precision: ``"auto"`` (default: bfloat16 only where it is measurably faster, i.e. InceptionV3
            on a CPU with Intel AMX, and said so in a printed line; else float32), ``"float32"``
            (the tutorial's numbers, to ~1e-6) or ``"bfloat16"``. See :mod:`course_lib.dream_graph`.
        forms: pins the strided convolutions' input-gradient forms of the optimised graph instead
            of timing them (see :func:`course_lib.strided_gradients.choose_forms`); ``None``
            follows ``DEEPDREAM_GRADIENT_FORMS`` (default: timed once per machine).

    Attributes:
        trace_count: how many times the step was traced (1 after any number of image sizes).
        precision: the precision actually used, ``"float32"`` or ``"bfloat16"``.
        gradient_forms: the input-gradient form of each convolution of the optimised graph (layer
            name -> :class:`course_lib.conv_units.GradientForm`); empty on the Keras model's path.

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
        forms: Any = None,
    ):
        super().__init__(name="deep_dream")
        self.model = model
        self.output_count = len(model.outputs)
        self.layer_weights = check_layer_weights(layer_weights, self.output_count)
        self.trace_count = 0
        self._loss_fn, self.precision = loss_function(model, self.layer_weights, optimize, precision, forms)
        self.gradient_forms = dict(getattr(self._loss_fn, "gradient_forms", {}))

    def __call__(self, img: Any, steps: Any, step_size: Any) -> tuple[tf.Tensor, tf.Tensor]:
        """Run ``steps`` steps; return (loss before the last step, new image)."""
        img = tf.convert_to_tensor(img, dtype=tf.float32)
        step_size = tf.convert_to_tensor(step_size, dtype=tf.float32)
        loss = tf.constant(0.0)
        for _ in range(int(steps)):
            loss, img = self.step(img, step_size)
        return loss, img

    @tf.function(
        input_signature=(
            tf.TensorSpec(shape=[None, None, 3], dtype=tf.float32),
            tf.TensorSpec(shape=[], dtype=tf.float32),
        )
    )
    def step(self, img: tf.Tensor, step_size: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """One step; return (loss before it, new image)."""
        self.trace_count += 1  # Python code runs only while TensorFlow traces.
        return ascent_step(self._loss_fn, img, step_size)


#: Engines built so far, most recently used last, keyed by the Keras model object itself (never its
#: id(), which a new model could reuse) and the options. Reusing an engine reuses its compiled
#: graph: no second trace. Each engine holds its model and a copy of the weights, so only the last
#: few are kept.
_ENGINES: OrderedDict[tuple, Any] = OrderedDict()
ENGINE_CACHE_SIZE = 8


def _cached(model: keras.Model, key: tuple, build: Callable[[], Any]) -> Any:
    full_key = (model, *key)
    if full_key in _ENGINES:
        _ENGINES.move_to_end(full_key)
    else:
        _ENGINES[full_key] = build()
        while len(_ENGINES) > ENGINE_CACHE_SIZE:
            _ENGINES.popitem(last=False)
    return _ENGINES[full_key]


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
    weights = check_layer_weights(layer_weights, len(model.outputs))
    return _cached(model, ("steps", weights), lambda: DeepDream(model, weights))


def tiled_engine_for(dream_model: Any, tile_size: int = TILE_SIZE, layer_weights: Sequence[float] | None = None) -> Any:
    """The :class:`course_lib.tiles.TiledGradients` for a backbone, a feature extractor or itself; built once."""
    if isinstance(dream_model, TiledGradients):
        return dream_model
    model = dream_model.model if isinstance(dream_model, DeepDream) else _as_model(dream_model)
    tile_size = validate.whole_number("tile_size", tile_size, low=1, example=TILE_SIZE)
    weights = check_layer_weights(layer_weights, len(model.outputs))
    return _cached(model, ("tiles", tile_size, weights), lambda: TiledGradients(model, tile_size, weights))


def _as_model(dream_model: Any) -> keras.Model:
    if isinstance(dream_model, models.Backbone):
        # One feature extractor per backbone network and layer choice, cached on the network itself.
        return _cached(dream_model.model, ("features", dream_model.dream_layers),
                       lambda: models.feature_extractor(dream_model))  # fmt: skip
    if isinstance(dream_model, keras.Model):
        return dream_model
    raise ValueError(
        f"dream_model must be a Backbone (models.backbone(...)), a feature extractor "
        f"(models.feature_extractor(backbone, layers)) or a DeepDream engine, not {type(dream_model).__name__}."
    )


def _min_size_of(dream_model: Any) -> int:
    """The smallest image side the dreaming network accepts (see :func:`models.min_input_size`)."""
    if isinstance(dream_model, models.Backbone):
        return models.min_input_size(dream_model)
    # An engine (DeepDream, TiledGradients) holds its feature extractor; a Keras model is one.
    return models.min_input_size(getattr(dream_model, "model", dream_model))


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
    octave_scale = validate.positive_number("octave_scale", octave_scale, example=OCTAVE_SCALE)
    octave_list = validate.octaves(octaves)
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
# The dream loop: simple, octaves, tiles
# ---------------------------------------------------------------------------------------------


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


class _Frames:
    """Pictures of the dream as it forms, for :func:`course_lib.plots.animate`.

    Every frame has the photo's aspect ratio and at most :data:`FRAME_MAX_DIM` pixels per side,
    whatever octave it was taken at, so an animation shows the same picture growing its dream.
    """

    def __init__(self, into: list | None, every: int, photo_shape: Sequence[int]):
        self.into, self.every = into, every
        scale = min(1.0, FRAME_MAX_DIM / max(photo_shape[:2]))
        self.size = (max(1, round(photo_shape[0] * scale)), max(1, round(photo_shape[1] * scale)))

    def take(self, img: tf.Tensor) -> None:
        if self.into is not None:
            small = tf.image.resize(img, self.size, method="area")
            self.into.append(images.from_model_range(small.numpy()))


def _take_steps(
    step: Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor | None, tf.Tensor]], img: tf.Tensor, steps: int,
    step_size: float, bar: Progress, done: int, status: str, frames: _Frames,
) -> tuple[tf.Tensor, int, float]:
    """The one dream loop of every octave, whole-image or tiled: ``steps`` calls of ``step``.

    ``step(img, step_size)`` returns ``(loss or None, new image)``: the engine's compiled step, or
    the tiled gradient and :func:`course_lib.tiles.ascend` (a tiled dream has no one loss). Between
    steps the bar moves, every :data:`STEPS_PER_PREVIEW` steps the preview shows the dream so far,
    and every ``frames.every`` steps (and at the octave's end) a frame is taken.
    """
    loss = float("nan")
    step_size_tensor = tf.constant(step_size, dtype=tf.float32)
    for count in range(1, steps + 1):
        loss_tensor, img = step(img, step_size_tensor)
        done += 1
        last = count == steps
        if loss_tensor is not None:
            loss = float(loss_tensor)
        bar.update(done, f"{status}loss {loss:.3f}" if loss_tensor is not None else f"{status}step {count}")
        if last or count % STEPS_PER_PREVIEW == 0:
            _show_preview(bar, img)
        if last or count % frames.every == 0:
            frames.take(img)
    return img, done, loss


def _tiled_step(tiled: TiledGradients) -> Callable[[tf.Tensor, tf.Tensor], tuple[None, tf.Tensor]]:
    """A tiled dream's step: the tiled gradient (already normalised), then the ascent."""
    def step(img: tf.Tensor, step_size: tf.Tensor) -> tuple[None, tf.Tensor]:
        # At 6760x5070 px each copy of the gradient is 400 MB: it is freed as soon as ascend returns.
        return None, ascend(img, tiled(img), step_size)

    return step


def run_deep_dream(
    img: Any,
    dream_model: Any,
    steps_per_octave: int = STEPS_PER_OCTAVE,
    step_size: float = STEP_SIZE,
    *,
    octaves: Iterable[int] = (0,),
    octave_scale: float = OCTAVE_SCALE,
    tile_size: int | None = None,
    seed: int | None = None,
    layer_weights: Sequence[float] | None = None,
    frames: list | None = None,
    frame_every: int = STEPS_PER_PREVIEW,
    show_progress: bool = True,
) -> np.ndarray:
    """DeepDream, as the tutorial builds it up: the simple loop, octaves, and tiles, in one function.

    - ``octaves=(0,)`` (default): the tutorial's ``run_deep_dream_simple``, ``steps_per_octave``
      steps on the photo at its own size.
    - ``octaves=range(-2, 3)``: "Taking it up an octave". Each octave resizes the dream so far to
      ``base_size * octave_scale ** octave`` and runs ``steps_per_octave`` steps, so patterns
      made small grow with the image. One engine (one trace) serves every octave.
    - ``tile_size=512``: the tutorial's tiled loop (its second ``run_deep_dream_with_octaves``):
      every step rolls the image by a random shift and computes the gradient tile by tile
      (:class:`course_lib.tiles.TiledGradients`), so a 4000x3000 photo dreams in a few GiB.

    Args:
        img: the photo: uint8 RGB array, path, URL, PIL image (anything ``images.load`` reads).
        dream_model: a Backbone (dreams with its default layers), a feature extractor, or an
            engine (:class:`DeepDream`, or :class:`course_lib.tiles.TiledGradients` with tiles).
        steps_per_octave: gradient-ascent steps at each octave (the tutorial: 100 for the simple
            loop, 50 per octave, 100 per octave with tiles). 0 returns the photo unchanged.
        step_size: how far each step moves the pixels (the tutorial: 0.01).
        octaves: the octave numbers, e.g. ``range(-2, 3)`` (the tutorial's); read once.
        octave_scale: size ratio between octaves (the tutorial's 1.30).
        tile_size: ``None`` for whole-image gradients, or the largest tile side in pixels (the
            tutorial's 512). Tiles can be as short as half of it (see
            :func:`course_lib.tiles.tile_bounds`), so it must be at least twice the network's
            minimum input size (150 px for InceptionV3, 64 px for the MobileNetV2 backbones).
        seed: seed of the random rolls, the only random thing in a tiled dream (default
            ``config.settings.seed``): the same photo, settings and seed give the same dream.
        layer_weights: optional weight per dream layer (see :func:`calc_loss`).
        frames: a list to record the dream as it forms, for :func:`course_lib.plots.animate`:
            the photo, then a small picture (at most 256 px) every ``frame_every`` steps and at
            the end of every octave, all the photo's shape. ``None`` records nothing.
        frame_every: steps between two frames.
        show_progress: a progress bar (and, in Jupyter, a preview that updates in place).

    Returns:
        The dream, uint8 RGB, the photo's size.

    Raises:
        ValueError: for a bad image or parameter, saying what to pass instead (e.g. a
            ``tile_size`` under twice the network's minimum, or an octave larger than
            :data:`course_lib.images.MAX_PIXELS` pixels). Octaves that would shrink the image
            below the network's minimum size are dreamed at that minimum, with a printed note.

    Example:
        >>> bb = models.backbone("dog_breeds")
        >>> simple = run_deep_dream(photo, bb, steps_per_octave=100)
        >>> octave = run_deep_dream(photo, bb, 50, octaves=range(-2, 3))
        >>> big = run_deep_dream(big_photo, bb, 100, octaves=range(-2, 3), tile_size=512)
    """
    steps_per_octave = validate.whole_number("steps_per_octave", steps_per_octave, low=0, example=STEPS_PER_OCTAVE)
    step_size = validate.positive_number("step_size", step_size, example=STEP_SIZE)
    seed = validate.seed(seed)
    frame_every = validate.whole_number("frame_every", frame_every, low=1, example=STEPS_PER_PREVIEW)
    if frames is not None and not isinstance(frames, list):
        raise ValueError(f"frames must be a list to append the pictures to (frames = []), not {type(frames).__name__}.")
    octaves = list(octaves)  # read once: a generator would be empty by the time the loop reads it
    min_size = _min_size_of(dream_model)
    if tile_size is not None:
        tile_size = validate.whole_number("tile_size", tile_size, low=1, example=TILE_SIZE)
        if tile_size < 2 * min_size:
            # tile_bounds makes tiles as short as ceil(tile_size / 2); each must still fit the network.
            raise ValueError(f"tile_size is {tile_size}, but tiles can be as short as half of it and the network "
                             f"needs at least {min_size} px, so tile_size must be >= {2 * min_size}. "
                             f"Use e.g. tile_size={TILE_SIZE} (the tutorial's).")
    original = images.load(img, min_size=min_size)
    sizes = octave_sizes(original.shape[:2], octaves, octave_scale, min_size=min_size)
    if tile_size is None:
        step = engine_for(dream_model, layer_weights).step
    else:
        tiled = tiled_engine_for(dream_model, tile_size, layer_weights)
        # A cached engine's generator has moved on since its last dream: start it again from the seed.
        tiled.generator.reset_from_seed(seed)
        step = _tiled_step(tiled)
    x = tf.convert_to_tensor(images.to_model_range(original), dtype=tf.float32)
    recorder = _Frames(frames, frame_every, original.shape)
    recorder.take(x)
    title = "dreaming" if tile_size is None else "dreaming in tiles"
    bar = Progress(steps_per_octave * len(sizes), title, preview=True, enabled=show_progress)
    done, loss = 0, float("nan")
    for octave_number, size in zip(octaves, sizes):
        if tuple(x.shape[:2]) != size:
            x = tf.image.resize(x, size)
        status = f"octave {octave_number}, " if len(sizes) > 1 else ""
        x, done, loss = _take_steps(step, x, steps_per_octave, step_size, bar, done, status, recorder)
    octave_note = f"{len(sizes)} octaves" if len(sizes) > 1 else f"{steps_per_octave} steps"
    bar.close(octave_note + (f", loss {loss:.3f}" if steps_per_octave and loss == loss else ""))
    if tuple(x.shape[:2]) != original.shape[:2]:
        x = tf.image.resize(x, original.shape[:2])
    return _to_uint8(x)
