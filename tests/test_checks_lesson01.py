"""Lesson 01's checks: shrink (max_dim, keeping the aspect ratio) and the lossless round trip
normalise -> deprocess. Right answers pass; each single-line slip gets a hint that names its fix."""
from __future__ import annotations

import numpy as np
import PIL.Image
import pytest
import tensorflow as tf

from course_lib import checks
from course_lib.checks import ExerciseIncorrect, ExerciseNotDone


def _stub(*args, **kwargs):
    raise NotImplementedError("write this function")


# --- shrink --------------------------------------------------------------------------------------


def _shrink(img, max_dim, *, longer=max, rounding=round, size_order="wh", enlarge=False, at_least_one=True,
            resample=PIL.Image.Resampling.LANCZOS, as_array=True):
    """The lesson's solution, with one switch per slip."""
    height, width = img.shape[:2]
    if longer(height, width) <= max_dim and not enlarge:
        return img
    scale = max_dim / longer(height, width)
    new_height, new_width = rounding(height * scale), rounding(width * scale)
    if at_least_one:
        new_height, new_width = max(1, new_height), max(1, new_width)
    size = (new_width, new_height) if size_order == "wh" else (new_height, new_width)
    picture = PIL.Image.fromarray(img).resize(size, resample)
    return np.array(picture) if as_array else picture


def _thumbnail(img, max_dim):
    picture = PIL.Image.fromarray(img)
    picture.thumbnail((max_dim, max_dim))
    return np.array(picture)


def _tf_resize(img, max_dim):
    height, width = img.shape[:2]
    if max(height, width) <= max_dim:
        return img
    scale = max_dim / max(height, width)
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    return tf.cast(tf.round(tf.image.resize(img, size, antialias=True)), tf.uint8).numpy()


@pytest.mark.parametrize("shrink", [
    _shrink,
    _thumbnail,
    _tf_resize,
    lambda img, m: _shrink(img, m, resample=PIL.Image.Resampling.NEAREST),
    lambda img, m: _shrink(img, m, resample=PIL.Image.Resampling.BILINEAR),
    lambda img, m: _shrink(img, m, resample=PIL.Image.Resampling.BOX),
], ids=["solution", "thumbnail", "tf.image.resize", "nearest", "bilinear", "box"])
def test_check_shrink_passes_right_answers(shrink, capsys):
    checks.check_shrink(shrink)
    assert capsys.readouterr().out.startswith("Correct: shrink keeps the aspect ratio")


@pytest.mark.parametrize("slip, message", [
    (lambda img, m: _shrink(img, m, size_order="hw"), r"swapped.*Pillow sizes are \(width, height\)"),
    (lambda img, m: _shrink(img, m, longer=lambda h, w: w), r"still over max_dim.*longer side"),
    (lambda img, m: _shrink(img, m, longer=min), r"still over max_dim.*longer side"),
    (lambda img, m: _shrink(img, m, rounding=int), r"truncated.*round"),
    (lambda img, m: _shrink(img, m, enlarge=True), r"already fits.*Never enlarge"),
    (lambda img, m: _shrink(img, m, at_least_one=False), r"rounds its short side to 0.*at least 1 pixel"),
    (lambda img, m: np.array(PIL.Image.fromarray(img).resize((m, m))), r"squashed into a square"),
    (lambda img, m: _shrink(img, m, as_array=False), r"PIL image.*np\.array"),
    (lambda img, m: _shrink(img, m)[..., ::-1], r"red and blue are swapped"),
    (lambda img, m: img[: _shrink(img, m).shape[0], : _shrink(img, m).shape[1]], r"do not crop"),
    (lambda img, m: _shrink(img, m).astype(np.float32) / 255, r"float32.*\[0, 1\].*multiply by 255"),
    (lambda img, m: _shrink(img, m)[..., 0], r"shape \(height, width, 3\)"),
    (lambda img, m: None, r"returned nothing"),
], ids=["PIL size (h, w)", "always width", "shorter side", "int()", "enlarges", "0-pixel side", "square",
        "PIL image", "BGR", "crop", "float [0, 1]", "one channel", "no return"])
def test_check_shrink_names_each_slip(slip, message):
    with pytest.raises(ExerciseIncorrect, match=message):
        checks.check_shrink(slip)


def test_check_shrink_refuses_changing_the_input():
    def in_place(img, max_dim):
        small = _shrink(img, max_dim)
        img[...] = 0
        return small
    with pytest.raises(ExerciseIncorrect, match="changed the picture"):
        checks.check_shrink(in_place)


def test_check_shrink_says_a_stub_is_not_done():
    with pytest.raises(ExerciseNotDone, match="not written yet"):
        checks.check_shrink(_stub)


# --- normalise, deprocess and the round trip --------------------------------------------------------


def _normalise(img):
    return img.astype(np.float32) / 127.5 - 1


def _deprocess(x, *, rounding=np.round, clip=True):
    pixels = 255 * (np.asarray(x, dtype=np.float32) + 1) / 2
    if clip:
        pixels = np.clip(pixels, 0, 255)
    return rounding(pixels).astype(np.uint8)


def test_check_round_trip_passes_the_right_answer(capsys):
    checks.check_round_trip(_normalise, _deprocess)
    assert capsys.readouterr().out == "Correct: normalise and deprocess go to [-1, 1] and back without changing a pixel.\n"


def test_check_round_trip_passes_tensorflow_answers(capsys):
    checks.check_round_trip(
        lambda img: tf.cast(img, tf.float32) / 127.5 - 1,
        lambda x: tf.cast(tf.round(tf.clip_by_value(127.5 * (tf.constant(x) + 1), 0, 255)), tf.uint8).numpy())
    assert capsys.readouterr().out.startswith("Correct:")


@pytest.mark.parametrize("slip, message", [
    (lambda img: img / 127.5 - 1, r"float64.*float32.*img\.astype\(np\.float32\)"),
    (lambda img: np.asarray(img, dtype=np.float64) / 127.5 - 1, r"float64.*asks for float32"),
    (lambda img: img.astype(np.float32) / 255, r"\[0, 1\].*\[-1, 1\]"),
    (lambda img: img.astype(np.float32) / 127.5, r"0 -> 0\.0000.*expected 0 -> -1\.0000.*x / 127\.5 - 1"),
    (lambda img: ((img - 128) / np.float32(128)).astype(np.float32), r"wraps around.*Convert to float32"),
    (lambda img: img // 2, r"floating-point"),
], ids=["float64 (no astype)", "float64 astype", "[0, 1]", "forgot -1", "uint8 wrap", "integers"])
def test_check_round_trip_catches_normalise_slips(slip, message):
    with pytest.raises(ExerciseIncorrect, match=message):
        checks.check_round_trip(slip, _deprocess)


def test_check_round_trip_explains_in_place_division_of_uint8():
    def in_place(img):
        img /= 127.5
        return img - 1
    with pytest.raises(ExerciseIncorrect, match="cannot hold fractions.*astype"):
        checks.check_round_trip(in_place, _deprocess)


@pytest.mark.parametrize("slip, message", [
    (lambda x: _deprocess(x, rounding=lambda p: p), r"off by one.*round"),
    (lambda x: tf.cast(255 * (x + 1.0) / 2.0, tf.uint8).numpy(), r"off by one.*round|wraps around"),
    (lambda x: _deprocess(x, clip=False), r"wraps around.*Clip before converting"),
    (lambda x: np.clip(_deprocess(x, clip=False), 0, 255), r"wraps around.*Clip before converting"),
    (lambda x: np.round(255 * (x + 1) / 2), r"uint8"),
    (lambda x: np.clip(np.round(255 * x), 0, 255).astype(np.uint8), r"-1 -> 0, 0 -> 0, 1 -> 255.*add 1"),
    (lambda x: np.clip(np.round(127.5 * x), 0, 255).astype(np.uint8), r"0 -> 0, 1 -> 128.*add 1"),
], ids=["truncates", "tutorial's tf.cast", "no clip", "clip after cast", "float", "255 x", "forgot + 1"])
def test_check_round_trip_catches_deprocess_slips(slip, message):
    with pytest.raises(ExerciseIncorrect, match=message):
        checks.check_round_trip(_normalise, slip)


def test_check_round_trip_says_a_stub_is_not_done():
    with pytest.raises(ExerciseNotDone, match="not written yet"):
        checks.check_round_trip(_stub, _deprocess)
    with pytest.raises(ExerciseNotDone, match="not written yet"):
        checks.check_round_trip(_normalise, _stub)
