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
    with pytest.raises(ExerciseIncorrect, match="returned None"):
        checks.check_guided_loss(lambda x, g: None)


# ---------------------------------------------------------------------------------------------
# The zoom step
# ---------------------------------------------------------------------------------------------


def zoom_round(img, zoom):
    height, width = int(img.shape[0]), int(img.shape[1])
    crop_height, crop_width = round(height / zoom), round(width / zoom)
    top, left = (height - crop_height) // 2, (width - crop_width) // 2
    return tf.image.resize(img[top:top + crop_height, left:left + crop_width], (height, width))


def zoom_floor(img, zoom):
    height, width = img.shape[:2]
    crop_height, crop_width = int(height / zoom), int(width / zoom)
    top, left = math.ceil((height - crop_height) / 2), math.ceil((width - crop_width) / 2)
    return tf.image.resize(img[top:top + crop_height, left:left + crop_width], (height, width)).numpy()


def zoom_central_crop(img, zoom):
    return tf.image.resize(tf.image.central_crop(img, 1 / zoom), img.shape[:2])


@pytest.mark.parametrize("solution", [zoom_round, zoom_floor, zoom_central_crop])
def test_check_zoom_step_passes_every_right_answer(solution, capsys):
    checks.check_zoom_step(solution)
    assert capsys.readouterr().out.startswith("Correct:")


def test_check_zoom_step_says_a_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        checks.check_zoom_step(_stub)


def _zoom_slip(crop=None, resize=None):
    """A student's zoom_step with the crop (top, left, crop_h, crop_w from h, w, zoom) or the resize changed."""
    def zoom_step(img, zoom):
        height, width = int(img.shape[0]), int(img.shape[1])
        ch, cw = round(height / zoom), round(width / zoom)
        top, left = (height - ch) // 2, (width - cw) // 2
        if crop is not None:
            top, left, ch, cw = crop(height, width, zoom)
        centre = img[top:top + ch, left:left + cw]
        return resize(centre, height, width) if resize else tf.image.resize(centre, (height, width))
    return zoom_step


ZOOM_SLIPS = {
    "top-left crop": (_zoom_slip(crop=lambda h, w, z: (0, 0, round(h / z), round(w / z))), "off-centre"),
    "crop at the top only": (_zoom_slip(crop=lambda h, w, z: (0, (w - round(w / z)) // 2, round(h / z), round(w / z))),
                             "off-centre"),
    "no resize": (_zoom_slip(resize=lambda c, h, w: c), "that is the crop"),
    "width and height swapped": (_zoom_slip(resize=lambda c, h, w: tf.image.resize(c, (w, h))), r"\(height, width\)"),
    "square crop": (_zoom_slip(crop=lambda h, w, z: ((h - round(min(h, w) / z)) // 2, (w - round(min(h, w) / z)) // 2,
                                                    round(min(h, w) / z), round(min(h, w) / z))), "aspect ratio"),
    "nearest": (_zoom_slip(resize=lambda c, h, w: tf.image.resize(c, (h, w), method="nearest")), "bilinear"),
    "multiplied": (_zoom_slip(crop=lambda h, w, z: ((h - round(h * z)) // 2, (w - round(w * z)) // 2,
                                                   round(h * z), round(w * z))), "divide"),
    "no crop": (_zoom_slip(crop=lambda h, w, z: (0, 0, h, w)), "unchanged"),
    "margin / 2": (_zoom_slip(crop=lambda h, w, z: ((h - round(h / z)) / 2, (w - round(w / z)) / 2, round(h / z), round(w / z))),
                   "whole numbers"),
    "crop not rounded": (_zoom_slip(crop=lambda h, w, z: ((h - round(h / z)) // 2, (w - round(w / z)) // 2, h / z, w / z)),
                         "whole numbers"),
    "batch axis kept": (_zoom_slip(resize=lambda c, h, w: tf.image.resize(c[None], (h, w))), "batch axis"),
}


@pytest.mark.parametrize("name", ZOOM_SLIPS)
def test_check_zoom_step_catches_the_slip_with_a_hint(name):
    function, hint = ZOOM_SLIPS[name]
    with pytest.raises(ExerciseIncorrect, match=hint):
        checks.check_zoom_step(function)
