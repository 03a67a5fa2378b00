"""The checks of lesson 10 pass the right answers and catch the slips a student makes, with a hint."""
from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from course_lib import checks
from course_lib.checks import ExerciseIncorrect, ExerciseNotDone


def _stub(*args):
    raise NotImplementedError("write it")


# ---------------------------------------------------------------------------------------------
# The guided objective
# ---------------------------------------------------------------------------------------------


def _rows(features):
    return tf.reshape(features, (-1, features.shape[-1]))


def guided_argmax(dream_features, guide_features):
    """The solution as the original notebook writes it: argmax, then gather."""
    x, g = _rows(dream_features), _rows(guide_features)
    dots = tf.matmul(x, g, transpose_b=True)
    matched = tf.gather(g, tf.argmax(dots, axis=1))
    return tf.reduce_sum(x * matched)


def guided_max(dream_features, guide_features):
    """The same objective with reduce_max: the same value and gradient."""
    dots = tf.matmul(_rows(dream_features), _rows(guide_features), transpose_b=True)
    return tf.reduce_sum(tf.reduce_max(dots, axis=1))


def guided_transpose(dream_features, guide_features):
    """tf.transpose instead of transpose_b, and @."""
    x, g = _rows(dream_features), _rows(guide_features)
    return tf.reduce_sum(tf.reduce_max(x @ tf.transpose(g), axis=1))


@pytest.mark.parametrize("solution", [guided_argmax, guided_max, guided_transpose])
def test_check_guided_loss_passes_every_right_answer(solution, capsys):
    checks.check_guided_loss(solution)
    assert capsys.readouterr().out.startswith("Correct:")


def test_check_guided_loss_says_a_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        checks.check_guided_loss(_stub)


def _slip(body):
    """A student's guided_loss with one line changed."""
    def guided_loss(dream_features, guide_features):
        x, g = _rows(dream_features), _rows(guide_features)
        return body(dream_features, x, g)
    return guided_loss


SLIPS = {
    "mean activation": (lambda f, x, g: tf.reduce_mean(f), "mean activation"),
    "argmax over axis 0": (lambda f, x, g: tf.reduce_sum(x * tf.gather(g, tf.argmax(tf.matmul(x, g, transpose_b=True), axis=0))),
                           "axis=1"),
    "max over axis 0": (lambda f, x, g: tf.reduce_sum(tf.reduce_max(tf.matmul(x, g, transpose_b=True), axis=0)),
                        "axis=1"),
    "gather from the dream": (lambda f, x, g: tf.reduce_sum(x * tf.gather(x, tf.argmax(tf.matmul(x, g, transpose_b=True), axis=0))),
                              "axis=1"),
    "no transpose": (lambda f, x, g: tf.reduce_sum(tf.reduce_max(tf.matmul(x, g), axis=1)), "transpose_b=True"),
    "no reshape": (lambda f, x, g: tf.reduce_sum(tf.reduce_max(tf.matmul(f, tf.reshape(g, (1, 3, 4, 7)), transpose_b=True), axis=-1)),
                   "tf.reshape"),
    "mean of the best": (lambda f, x, g: tf.reduce_mean(tf.reduce_max(tf.matmul(x, g, transpose_b=True), axis=1)),
                         "sum them"),
    "every dot product": (lambda f, x, g: tf.reduce_sum(tf.matmul(x, g, transpose_b=True)), r"every\* dot product"),
    "one max": (lambda f, x, g: tf.reduce_max(tf.matmul(x, g, transpose_b=True)), "single largest"),
    "no sum": (lambda f, x, g: tf.reduce_max(tf.matmul(x, g, transpose_b=True), axis=1), "one number"),
    "matched with itself": (lambda f, x, g: tf.reduce_sum(x * x), "with itself"),
    "gathered from the dream's rows": (lambda f, x, g: tf.reduce_sum(x * tf.gather(x, tf.argmax(tf.matmul(x, g, transpose_b=True), axis=1))),
                                       "dream's own rows"),
    "dream compared with itself": (lambda f, x, g: tf.reduce_sum(tf.reduce_max(tf.matmul(x, x, transpose_b=True), axis=1)),
                                   "guide's\\* features"),
    "argmin": (lambda f, x, g: tf.reduce_sum(x * tf.gather(g, tf.argmin(tf.matmul(x, g, transpose_b=True), axis=1))),
               "worst"),
    "negated": (lambda f, x, g: -tf.reduce_sum(tf.reduce_max(tf.matmul(x, g, transpose_b=True), axis=1)), "sign"),
    "guide rows times matches": (lambda f, x, g: tf.reduce_sum(g * tf.gather(g, tf.argmax(tf.matmul(x, g, transpose_b=True), axis=1))),
                                 "line up with the dream's rows"),
    "NumPy": (lambda f, x, g: tf.constant(np.sum(np.max(np.asarray(x) @ np.asarray(g).T, axis=1))), "differentiate"),
    "stop_gradient": (lambda f, x, g: tf.reduce_sum(tf.reduce_max(tf.matmul(tf.stop_gradient(x), g, transpose_b=True), axis=1)),
                      "differentiate"),
}


@pytest.mark.parametrize("name", SLIPS)
def test_check_guided_loss_catches_the_slip_with_a_hint(name):
    body, hint = SLIPS[name]
    with pytest.raises(ExerciseIncorrect, match=hint):
        checks.check_guided_loss(_slip(body))


def test_check_guided_loss_asks_for_a_reshape_that_traces():
    def fixed_size_reshape(dream_features, guide_features):
        height, width, channels = dream_features.shape[1:]
        x = tf.reshape(dream_features, (height * width, channels))  # None * None while tracing
        g = tf.reshape(guide_features, (-1, channels))
        return tf.reduce_sum(tf.reduce_max(tf.matmul(x, g, transpose_b=True), axis=1))

    with pytest.raises(ExerciseIncorrect, match=r"inside tf.function.*-1"):
        checks.check_guided_loss(fixed_size_reshape)


def test_check_guided_loss_refuses_none():
    with pytest.raises(ExerciseIncorrect, match="returned nothing"):
        checks.check_guided_loss(lambda x, g: None)


# ---------------------------------------------------------------------------------------------
# The zoom step
# ---------------------------------------------------------------------------------------------


def _box(zoom, point):
    py, px = point
    top, left = py - py / zoom, px - px / zoom
    return [top, left, top + 1 / zoom, left + 1 / zoom]


def zoom_box(img, zoom, point=(0.5, 0.5)):
    height, width = img.shape[0], img.shape[1]
    return tf.image.crop_and_resize(img[None], [_box(zoom, point)], [0], (height, width))[0]


def zoom_expanded(img, zoom, point=(0.5, 0.5)):
    """The same box, written from its two edges: the point's fraction of the box equals its fraction of the image."""
    py, px = point
    y1, x1 = py * (1 - 1 / zoom), px * (1 - 1 / zoom)
    y2, x2 = y1 + 1 / zoom, x1 + 1 / zoom
    return tf.image.crop_and_resize(tf.expand_dims(img, 0), [[y1, x1, y2, x2]], [0], tf.shape(img)[:2])[0]


@pytest.mark.parametrize("solution", [zoom_box, zoom_expanded])
def test_check_zoom_step_passes_every_right_answer(solution, capsys):
    checks.check_zoom_step(solution)
    assert capsys.readouterr().out.startswith("Correct:")


def test_check_zoom_step_says_a_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        checks.check_zoom_step(_stub)


def _zoom_slip(box=None, size=None, after=None):
    """A student's zoom_step with the box (from zoom and point), the crop size or the result changed."""
    def zoom_step(img, zoom, point=(0.5, 0.5)):
        height, width = img.shape[0], img.shape[1]
        boxes = [box(zoom, point) if box else _box(zoom, point)]
        result = tf.image.crop_and_resize(img[None], boxes, [0], size(height, width) if size else (height, width))
        return after(result) if after else result[0]

    return zoom_step


def _whole_pixels(img, zoom, point=(0.5, 0.5)):
    """The old zoom: a crop cut at whole pixels around the point, resized back."""
    height, width = img.shape[0], img.shape[1]
    top, left = round(point[0] * (1 - 1 / zoom) * height), round(point[1] * (1 - 1 / zoom) * width)
    crop = img[top:top + round(height / zoom), left:left + round(width / zoom)]
    return tf.image.resize(crop, (height, width))


ZOOM_SLIPS = {
    "box centred on the point": (_zoom_slip(box=lambda z, p: [p[0] - 0.5 / z, p[1] - 0.5 / z, p[0] + 0.5 / z,
                                                              p[1] + 0.5 / z]), "centred on the point"),
    "always the centre": (_zoom_slip(box=lambda z, p: _box(z, (0.5, 0.5))), "the centre one whatever the point"),
    "zoom out": (_zoom_slip(box=lambda z, p: [p[0] * (1 - z), p[1] * (1 - z), p[0] * (1 - z) + z,
                                              p[1] * (1 - z) + z]), "zooms OUT"),
    "x and y swapped": (_zoom_slip(box=lambda z, p: [_box(z, p)[i] for i in (1, 0, 3, 2)]), "swapped"),
    "point from the far side": (_zoom_slip(box=lambda z, p: _box(z, (1 - p[0], 1 - p[1]))), "bottom and right"),
    "whole pixels": (_whole_pixels, "whole pixels"),
    "crop size swapped": (_zoom_slip(size=lambda h, w: (w, h)), r"\(height, width\)"),
    "batch kept": (_zoom_slip(after=lambda result: result), r"\[0\]"),
    "no zoom": (lambda img, zoom, point=(0.5, 0.5): img, "unchanged"),
}


@pytest.mark.parametrize("name", ZOOM_SLIPS)
def test_check_zoom_step_catches_the_slip_with_a_hint(name):
    function, message = ZOOM_SLIPS[name]
    with pytest.raises(ExerciseIncorrect, match=message):
        checks.check_zoom_step(function)
