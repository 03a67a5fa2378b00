"""Beyond the tutorial: guided dreams and the infinite zoom, two ideas from Google's original notebook.

Google's first DeepDream notebook (github.com/google/deepdream, 2015) went further than the
TensorFlow tutorial in two ways that lesson 10 rebuilds; this module is the reference the
lesson's exercises are checked against, and the loops the lesson runs with the student's code:

* **Controlling dreams** (:func:`guided_loss`, :func:`guided_dream`). The tutorial maximises the
  mean activation of a layer: the network paints whatever that layer likes most. The original
  notebook instead *matches a guide image*: at each position of the dream it looks up the guide's
  feature vector with the largest dot product and maximises that dot product, so the dream grows
  the patterns the network sees in the guide.
* **The infinite zoom** (:func:`zoom_in`, :func:`zoom_frames`). The original runs its whole
  octave dream on every frame, then zooms into the centre a few per cent. The course's variant
  dreams only a few steps per frame: the patterns made small grow with each zoom (octaves spread
  over time, rather than in one picture), and the frames play as an endless fall into the dream.

Both loops reuse the course's step (lesson 04, :func:`course_lib.ascent.ascent_step`): gradient / (std + 1e-8) * step size, then clip to
[-1, 1]. The guided dream runs a plain ``tf.function`` with a ``GradientTape`` around the Keras
model, so any objective the student writes in TensorFlow works; the zoom dreams with the
course's compiled engine (:func:`course_lib.dream.engine_for`).

Example:
    >>> bb = models.backbone("auto")
    >>> dreamed = guided_dream(data.sample_image("labrador", 300), data.sample_image("coffee", 300), bb)
    >>> frames = zoom_frames(data.sample_image("labrador"), bb, frames=40)
    >>> plots.animate(frames)
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

from course_lib import ascent, dream, images, models, validate  # noqa: E402
from course_lib.progress import Progress  # noqa: E402

#: Steps per octave of the guided dream: the dream needs more steps than the tutorial's 50 / 5
#: octaves to show the guide's texture over the network's own favourite patterns.
GUIDED_STEPS_PER_OCTAVE = 40
#: Zoom factor per frame, close to the original notebook's ``s = 0.05`` (it keeps 95 % of each side,
#: a zoom of 1 / 0.95 = 1.053): small enough that the film moves smoothly at 8 frames a second.
ZOOM = 1.05
#: Steps of dreaming between two zooms (the original ran a whole octave dream per frame; a few
#: steps are enough here because each frame starts from the last one's dream).
STEPS_PER_FRAME = 5
#: Longest side of the zoom frames: an animation of 256 px frames stays small (see plots.Animation).
FRAME_MAX_DIM = dream.FRAME_MAX_DIM

#: The objective's signature: (the dream's features, the guide's features) -> a scalar to maximise.
Objective = Callable[[tf.Tensor, tf.Tensor], tf.Tensor]


# ---------------------------------------------------------------------------------------------
# Guided dreams
# ---------------------------------------------------------------------------------------------


def guided_loss(dream_features: tf.Tensor, guide_features: tf.Tensor) -> tf.Tensor:
    """The original notebook's ``objective_guide``: match each dream position to its best guide feature.

    Both activations come from the same layer, shape (1, height, width, channels) (the two images
    may differ in size). Every position is a vector of ``channels`` numbers. For each *dream*
    position (a row of X), the guide position (a row of G) whose vector has the largest dot
    product with it is its match, and the loss is the sum of those best dot products:

        loss = sum_i max_j (X G^T)_ij

    Its gradient with respect to dream position i is the matched guide vector G[j*], exactly the
    gradient the original notebook writes into Caffe's ``dst.diff`` (``y[:, A.argmax(1)]``): each
    position is pushed towards the guide feature it already resembles most. The sum, not the mean,
    keeps that gradient equal to the matched vector (the dream loop normalises the gradient, so
    the dream itself would be the same either way).

    Args:
        dream_features: the dream's activations at a layer, (1, h, w, c) or (h, w, c).
        guide_features: the guide's activations at the same layer, (1, hg, wg, c).

    Returns:
        A scalar float32 tensor, to be maximised.

    Raises:
        ValueError: the two have different channel counts (they come from different layers).
    """
    channels = dream_features.shape[-1]
    if guide_features.shape[-1] != channels:
        raise ValueError(f"The dream's features have {channels} channels but the guide's have "
                         f"{guide_features.shape[-1]}: compute both at the same layer.")
    dream_rows = tf.reshape(dream_features, (-1, channels))   # X: one row per dream position
    guide_rows = tf.reshape(guide_features, (-1, channels))   # G: one row per guide position
    dots = tf.matmul(dream_rows, guide_rows, transpose_b=True)  # X G^T: (dream positions, guide positions)
    best = tf.argmax(dots, axis=1)                             # for each dream position, its best guide position
    matched = tf.gather(guide_rows, best)                      # (dream positions, channels)
    return tf.reduce_sum(dream_rows * matched)


def mean_loss(dream_features: tf.Tensor, guide_features: tf.Tensor) -> tf.Tensor:
    """The tutorial's objective in :func:`guided_dream`'s signature: the layer's mean; the guide is ignored.

    For the counterfactual: the same loop, the same layer and steps, only the objective differs.
    """
    del guide_features  # the plain dream does not look at the guide
    return tf.reduce_mean(dream_features)


def guide_layer(backbone: models.Backbone, layer: str | None = None) -> str:
    """The layer a guided dream matches at: ``layer``, or the backbone's first (shallower) dream layer.

    The shallower of the two dream layers is the default because its features are texture (stripes,
    grain, spots), which a guide transfers visibly; the deeper layer's matches change the dream
    less at the sizes the course uses.
    """
    if not isinstance(backbone, models.Backbone):
        raise ValueError(f"backbone must be a Backbone from models.backbone(...), not {type(backbone).__name__}.")
    if layer is None:
        return backbone.dream_layers[0]
    if not isinstance(layer, str):
        raise ValueError(f"layer must be one layer name, e.g. {backbone.dream_layers[0]!r}, not {layer!r}.")
    return layer


def layer_features(image: Any, backbone: models.Backbone, layer: str | None = None) -> tf.Tensor:
    """An image's activations at one layer (see :func:`guide_layer`): shape (1, h, w, channels).

    A guided dream computes the guide's once: the guide does not change, only the dream does.

    Raises:
        ValueError / ImageError: an unreadable image, or one smaller than the network's minimum size.
    """
    model = models.feature_extractor(backbone, [guide_layer(backbone, layer)])
    picture = images.load(image, min_size=backbone)
    features = model(tf.constant(images.to_model_range(picture)[None]), training=False)
    return features[0] if isinstance(features, (list, tuple)) else features


def _guided_steps(model: Any, loss_fn: Objective, channels: int) -> Callable:
    """A function running ``steps`` steps of gradient ascent on ``loss_fn``; its step is traced once per dream.

    The input signature leaves height and width open, so every octave reuses the same graph. The
    loop runs in Python, one graph call per step, as in :class:`course_lib.dream.DeepDream` (see why there).
    """
    signature = (tf.TensorSpec([None, None, 3], tf.float32), tf.TensorSpec([1, None, None, channels], tf.float32),
                 tf.TensorSpec([], tf.float32))

    def step(img: tf.Tensor, guide: tf.Tensor, step_size: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        def loss(x: tf.Tensor) -> tf.Tensor:
            return tf.cast(loss_fn(model(tf.expand_dims(x, 0), training=False), guide), tf.float32)

        return ascent.ascent_step(loss, img, step_size)

    compiled = tf.function(step, input_signature=signature)

    def run(img: tf.Tensor, guide: tf.Tensor, steps: Any, step_size: Any) -> tuple[tf.Tensor, tf.Tensor]:
        loss, step_size = tf.constant(0.0), tf.convert_to_tensor(step_size, tf.float32)
        for _ in range(int(steps)):
            loss, img = compiled(img, guide, step_size)
        return loss, img

    return run


def guided_dream(
    photo: Any,
    guide: Any,
    backbone: models.Backbone,
    *,
    loss_fn: Objective = guided_loss,
    layer: str | None = None,
    steps_per_octave: int = GUIDED_STEPS_PER_OCTAVE,
    step_size: float = ascent.STEP_SIZE,
    octaves: Iterable[int] = dream.OCTAVES,
    octave_scale: float = dream.OCTAVE_SCALE,
    show_progress: bool = True,
) -> np.ndarray:
    """Dream ``photo`` towards the features of ``guide``: the original notebook's controlled dream.

    The tutorial's octave loop (lesson 05) around the course's step (lesson 04), with the objective
    ``loss_fn(dream_features, guide_features)`` at one layer instead of the layer's mean.

    Args:
        photo: the photo to dream (anything :func:`course_lib.images.load` reads).
        guide: the guide image; its features are computed once, at its own size.
        backbone: the network (:func:`course_lib.models.backbone`).
        loss_fn: the objective, a TensorFlow function of (dream features, guide features), each
            (1, h, w, c); :func:`guided_loss` by default, :func:`mean_loss` for a plain dream.
        layer: the layer to match at (default: the backbone's first dream layer).
        steps_per_octave, step_size, octaves, octave_scale: as in :func:`course_lib.dream.run_deep_dream`.
        show_progress: a progress bar.

    Returns:
        The dream, uint8 RGB, the photo's size.

    Raises:
        ValueError: a bad argument, a photo or guide smaller than the network accepts, or an
            objective that does not depend on the dream.

    Example:
        >>> dreamed = guided_dream(photo, data.sample_image("coffee", 300), bb, steps_per_octave=40)
    """
    if not callable(loss_fn):
        raise ValueError(f"loss_fn must be a function (dream_features, guide_features) -> loss, not {loss_fn!r}.")
    steps_per_octave = validate.whole_number("steps_per_octave", steps_per_octave, low=0,
                                             example=GUIDED_STEPS_PER_OCTAVE)
    step_size = validate.positive_number("step_size", step_size, example=ascent.STEP_SIZE)
    layer = guide_layer(backbone, layer)
    try:
        guide_activations = layer_features(guide, backbone, layer)
    except images.ImageError as error:
        raise images.ImageError(f"The guide image: {error}") from None
    original = images.load(photo, min_size=backbone)
    sizes = dream.octave_sizes(original.shape[:2], list(octaves), octave_scale, min_size=backbone.min_size)
    model = models.feature_extractor(backbone, [layer])
    run = _guided_steps(model, loss_fn, int(guide_activations.shape[-1]))
    img = tf.constant(images.to_model_range(original))
    bar = Progress(steps_per_octave * len(sizes), "guided dream", enabled=show_progress)
    for number, size in enumerate(sizes):
        img = tf.image.resize(img, size)
        if steps_per_octave:
            loss, img = run(img, guide_activations, tf.constant(steps_per_octave), tf.constant(step_size))
            bar.update(steps_per_octave * (number + 1), f"octave {number + 1}/{len(sizes)}, loss {float(loss):.4g}")
    bar.close(f"{len(sizes)} octaves x {steps_per_octave} steps")
    return images.from_model_range(tf.image.resize(img, original.shape[:2]).numpy())


# ---------------------------------------------------------------------------------------------
# The infinite zoom
# ---------------------------------------------------------------------------------------------


def check_zoom(zoom: Any) -> float:
    """``zoom`` as a float > 1: 1 would never move, and < 1 would need pixels outside the picture."""
    return validate.number("zoom", zoom, low=1.0, low_open=True, example=ZOOM)


def zoom_box(zoom: float, point: tuple[float, float] = (0.5, 0.5)) -> list[float]:
    """The box ``[top, left, bottom, right]`` (fractions of the height and width) that a zoom by
    ``zoom`` towards ``point`` keeps: 1/zoom of each side, placed so that ``point`` stays put.

    A point at fraction ``p`` of a side keeps its place when the box starts at ``p - p / zoom``:
    the part of the box before the point, ``p / zoom``, is enlarged by ``zoom`` back to ``p``.

    Example:
        >>> zoom_box(1.25)                 # the centre, the same margin on every side (up to rounding)
        [0.1, 0.1, 0.9, 0.9]
        >>> zoom_box(2.0, (0.0, 0.5))      # towards the middle of the top edge
        [0.0, 0.25, 0.5, 0.75]
    """
    zoom = check_zoom(zoom)
    py, px = _check_point(point)
    top, left = py * (1.0 - 1.0 / zoom), px * (1.0 - 1.0 / zoom)
    return [top, left, top + 1.0 / zoom, left + 1.0 / zoom]


def _check_point(point: Any) -> tuple[float, float]:
    if not isinstance(point, (tuple, list)) or len(point) != 2:
        raise ValueError(f"point must be a pair (y, x) of fractions of the height and width, e.g. (0.5, 0.5); "
                         f"got {point!r}.")
    return (validate.number("point's y", point[0], low=0.0, high=1.0, example=0.5),
            validate.number("point's x", point[1], low=0.0, high=1.0, example=0.5))


def zoom_in(img: Any, zoom: float = ZOOM, point: tuple[float, float] = (0.5, 0.5)) -> tf.Tensor:
    """Zoom towards ``point``: keep the box of :func:`zoom_box` and resize it back to the same size.

    The point (fractions (y, x) of the height and width; default the centre) stays where it is and
    everything else moves away from it by ``zoom``; both sides shrink by the same factor, so
    nothing is stretched. The box has fractional edges, so the zoom is exact: a crop rounded to
    whole pixels would move the point by up to half a pixel at every frame, and the zoom enlarges
    each error at every later frame. The original notebook does the same with
    ``nd.affine_transform(frame, [1-s, 1-s, 1], [h*s/2, w*s/2, 0], order=1)``: a centred scale
    with linear interpolation.

    Args:
        img: one image (height, width, channels), float (e.g. in [-1, 1]).
        zoom: how much to enlarge, > 1 (1.05: 5 % closer per frame).
        point: the fixed point, (y, x) in [0, 1] (pixel centres: 0 is the first row, 1 the last).

    Returns:
        A float32 tensor of the same shape.
    """
    box = zoom_box(zoom, point)
    img = tf.convert_to_tensor(img, dtype=tf.float32)
    size = (int(img.shape[0]), int(img.shape[1]))
    return tf.image.crop_and_resize(img[None], [box], [0], size)[0]  # bilinear, like the original's order=1


def zoom_frames(
    photo: Any,
    backbone: models.Backbone,
    *,
    frames: int = 40,
    zoom: float = ZOOM,
    steps_per_frame: int = STEPS_PER_FRAME,
    step_size: float = ascent.STEP_SIZE,
    zoom_fn: Callable[..., Any] = zoom_in,
    point: tuple[float, float] = (0.5, 0.5),
    max_dim: int = FRAME_MAX_DIM,
    show_progress: bool = True,
) -> list[np.ndarray]:
    """The infinite zoom: frame 0 is the photo; each next frame zooms into the last and dreams on.

    Each new frame is ``zoom_fn`` applied to the last one, then ``steps_per_frame`` steps of the
    course's dream (the backbone's dream layers, their mean, lesson 04's step), on a picture of at
    most ``max_dim`` pixels. What the dream painted small is enlarged a little at every frame, so
    over the frames it grows into large shapes while new small detail appears: octaves spread
    over time. ``steps_per_frame=0`` only zooms (the photo dissolves into blur), the lesson's
    counterfactual.

    Args:
        photo: the photo (anything :func:`course_lib.images.load` reads); shrunk to ``max_dim``.
        backbone: the network.
        frames: how many frames, >= 2 (the photo included).
        zoom: zoom per frame, > 1.
        steps_per_frame: dream steps per frame, >= 0.
        step_size: as in :func:`course_lib.dream.run_deep_dream`.
        zoom_fn: ``zoom_fn(img, zoom, point)`` -> the zoomed image, same shape (:func:`zoom_in`, or yours).
        point: the point the film zooms towards, (y, x) fractions of the height and width (default the centre).
        max_dim: longest side of the frames (the work is done at this size, so it is also the speed).
        show_progress: a progress bar.

    Returns:
        ``frames`` uint8 RGB pictures, all the same shape: play them with ``plots.animate(frames)``.

    Raises:
        ValueError: a bad argument, a photo too small for the network, or a ``zoom_fn`` that
            changes the picture's shape.
    """
    count = validate.whole_number("frames", frames, low=2, example=40)
    zoom = check_zoom(zoom)
    steps_per_frame = validate.whole_number("steps_per_frame", steps_per_frame, low=0, example=STEPS_PER_FRAME)
    step_size = validate.positive_number("step_size", step_size, example=ascent.STEP_SIZE)
    max_dim = validate.whole_number("max_dim", max_dim, low=backbone.min_size if isinstance(backbone, models.Backbone)
                                    else 1, example=FRAME_MAX_DIM)
    if not callable(zoom_fn):
        raise ValueError(f"zoom_fn must be a function (img, zoom, point) -> zoomed image, not {zoom_fn!r}.")
    point = _check_point(point)
    picture = images.load(photo, max_dim=max_dim, min_size=backbone)
    engine = dream.engine_for(backbone) if steps_per_frame else None
    img = tf.constant(images.to_model_range(picture))
    result = [picture]
    bar = Progress(count - 1, "zooming", enabled=show_progress)
    for frame in range(1, count):
        zoomed = tf.convert_to_tensor(zoom_fn(img, zoom, point), dtype=tf.float32)
        if tuple(zoomed.shape) != tuple(img.shape):
            raise ValueError(f"zoom_fn returned shape {tuple(zoomed.shape)} for an image of shape "
                             f"{tuple(img.shape)}: a zoom must give back the same size (resize the crop back).")
        img = zoomed
        if engine is not None:
            _, img = engine(img, tf.constant(steps_per_frame), tf.constant(step_size, tf.float32))
        result.append(images.from_model_range(img.numpy()))
        bar.update(frame, f"frame {frame + 1}/{count}")
    bar.close(f"{count} frames")
    return result
