"""Specification of course_lib.validate: one rule per kind of argument, the same words everywhere."""
from __future__ import annotations

import math

import numpy as np
import pytest

from course_lib import config, validate


@pytest.mark.parametrize("value, expected", [(3, 3), (np.int64(7), 7), (1e3, 1000), (2.0, 2), (0, 0)])
def test_whole_numbers_accept_integers_and_floats_without_a_fraction(value, expected):
    result = validate.whole_number("steps", value)
    assert result == expected and type(result) is int


@pytest.mark.parametrize(
    "value, message",
    [(1.5, "steps must be a whole number >= 0, not 1.5"), (True, "not True"), ("10", "not '10'"),
     (float("nan"), "not nan"), (float("inf"), "not inf"), (None, "not None"), (-1, "steps is -1, but it must be >= 0")],
)
def test_whole_numbers_refuse_fractions_bools_strings_and_out_of_range(value, message):
    with pytest.raises(ValueError, match=message):
        validate.whole_number("steps", value)


def test_whole_number_bounds_and_example_are_in_the_message():
    with pytest.raises(ValueError, match=r"tile_size is 4000, but it must be between 64 and 2048. Try tile_size=512."):
        validate.whole_number("tile_size", 4000, low=64, high=2048, example=512)


@pytest.mark.parametrize("value", [0.01, 3, np.float32(0.5)])
def test_positive_numbers_accept_finite_values_above_zero(value):
    assert validate.positive_number("step_size", value) == pytest.approx(float(value))


@pytest.mark.parametrize("value", [0, -0.01, float("nan"), float("inf"), True, "0.01", None])
def test_positive_numbers_refuse_zero_negative_nan_inf_bool_and_text(value):
    with pytest.raises(ValueError, match="step_size"):
        validate.positive_number("step_size", value, example=0.01)


def test_number_bounds_open_and_closed():
    assert validate.number("momentum", 0.0, low=0.0, high=1.0, high_open=True) == 0.0
    with pytest.raises(ValueError, match=r"momentum is 1.0, but it must be >= 0.0 and < 1.0"):
        validate.number("momentum", 1.0, low=0.0, high=1.0, high_open=True)
    with pytest.raises(ValueError, match=r"must be > 1.0"):
        validate.number("pyramid_scale", 1.0, low=1.0, low_open=True)
    with pytest.raises(ValueError, match="finite"):
        validate.number("x", -math.inf)


def test_seed_none_is_the_course_seed_read_now(monkeypatch):
    import dataclasses

    monkeypatch.setattr(config, "settings", dataclasses.replace(config.settings, seed=99))
    assert validate.seed(None) == 99
    assert validate.seed(7) == 7
    for bad in (-1, 1.5, "7", True):
        with pytest.raises(ValueError, match="seed"):
            validate.seed(bad)


def test_choice_lists_the_options_and_suggests_the_closest():
    assert validate.choice("method", "robust", ("robust", "matlab")) == "robust"
    with pytest.raises(ValueError, match=r"method must be one of 'robust', 'matlab', not 'robst'. Did you mean 'robust'\?"):
        validate.choice("method", "robst", ("robust", "matlab"))


def test_every_module_checks_a_seed_with_the_same_rule():
    """One rule for a seed everywhere (three rules used to exist): 1.5 and -1 are refused alike."""
    from course_lib import dream, training
    from course_lib.classviz import render

    for check in (lambda s: dream.run_deep_dream(np.zeros((64, 64, 3), np.uint8), "x", 1, seed=s),
                  lambda s: training.augmenter(seed=s),
                  lambda s: render.prepare(None, None, 0, image_size=None, initial_image=None, seed=s,
                                           output_scaling="linear", verbose=False, show_progress=False,
                                           total_steps=1, title="")):
        for bad in (1.5, -1):
            with pytest.raises(ValueError, match="seed"):
                check(bad)


@pytest.mark.parametrize("value, expected", [(range(-2, 3), [-2, -1, 0, 1, 2]), ((0,), [0]),
                                             (iter([np.int64(1), 2]), [1, 2])])
def test_octaves_are_read_once_as_ints(value, expected):
    result = validate.octaves(value)
    assert result == expected and all(type(octave) is int for octave in result)


@pytest.mark.parametrize("value, message", [
    ([], r"octaves is empty, so nothing would be dreamed. Use e.g. octaves=range\(-2, 3\)."),
    ([0, 1.5], r"octaves must be whole numbers like range\(-2, 3\); got 1.5."),
    ([True], "got True"), ([1.0], "got 1.0"), (["1"], "got '1'")])
def test_octaves_refuse_nothing_and_non_integers(value, message):
    with pytest.raises(ValueError, match=message):
        validate.octaves(value)


def test_octave_sizes_use_the_octave_rule():
    from course_lib import dream

    with pytest.raises(ValueError, match="octaves is empty"):
        dream.octave_sizes((100, 100), [])
    with pytest.raises(ValueError, match="octaves must be whole numbers"):
        dream.octave_sizes((100, 100), [0.5])


@pytest.mark.parametrize("value, expected", [(None, None), (500, 500), (np.int32(1), 1)])
def test_max_dim_is_none_or_pixels(value, expected):
    assert validate.max_dim(value) == expected


@pytest.mark.parametrize("value, message", [
    (0, "max_dim must be at least 1 pixel; got 0. Use e.g. max_dim=500, or None to keep the size."),
    (-3, "at least 1 pixel"), (500.0, "max_dim must be a whole number of pixels such as 500, or None; got 500.0."),
    (True, "got True"), ("500", "got '500'")])
def test_max_dim_refuses_what_is_not_pixels(value, message):
    with pytest.raises(ValueError, match=message):
        validate.max_dim(value)


def test_images_load_and_the_upload_widget_use_the_max_dim_rule():
    from course_lib import images, widgets

    with pytest.raises(ValueError, match="max_dim must be at least 1 pixel"):
        images.load(np.zeros((8, 8, 3), np.uint8), max_dim=0)
    with pytest.raises(ValueError, match="max_dim must be a whole number of pixels"):
        widgets.PhotoUpload(max_dim=2.5)
    assert not hasattr(images, "check_max_dim")
