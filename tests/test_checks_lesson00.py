"""Lesson 00's check: megapixels. A right answer passes; each common slip gets a hint naming its fix."""
from __future__ import annotations

import numpy as np
import pytest

from course_lib import checks
from course_lib.checks import ExerciseIncorrect, ExerciseNotDone


def _stub(image):
    raise NotImplementedError("return the number of pixels")


@pytest.mark.parametrize("megapixels", [
    lambda image: image.shape[0] * image.shape[1] / 1e6,
    lambda image: image.shape[0] * image.shape[1] / 1_000_000,
    lambda image: np.prod(image.shape[:2]) / 1e6,
    lambda image: image.size / image.shape[2] / 1e6,
], ids=["shape", "underscores", "np.prod", "size over channels"])
def test_right_answers_pass(megapixels, capsys):
    checks.check_megapixels(megapixels)
    assert capsys.readouterr().out == "Correct: megapixels counts height x width pixels, in millions.\n"


@pytest.mark.parametrize("slip, message", [
    (lambda image: image.size / 1e6, r"you counted the 3 colour channels too: megapixels count height x width"),
    (lambda image: np.prod(image.shape) / 1e6, r"counted the 3 colour channels too"),
    (lambda image: image.shape[0] * image.shape[1], r"number of pixels, not millions.*Divide by 1e6"),
    (lambda image: image.size, r"number of values, not millions.*Divide by 1e6"),
    (lambda image: image.shape[0] * image.shape[1] / 1024**2, r"1,000,000 pixels.*not 1024 x 1024"),
    (lambda image: image.shape[0] * image.shape[1] // 1e6, r"fraction was dropped.*not // or int\(\)"),
    (lambda image: round(image.shape[0] * image.shape[1] / 1e6, 2), r"do not round inside the function"),
    (lambda image: None, r"returned nothing.*return"),
    (lambda image: image.shape[:2], r"must return one number"),
    (lambda image: image.shape[0] / 1e6, r"expected 0\.1875, got 0\.000375"),
], ids=["image.size", "prod of shape", "pixels", "values", "mebipixels", "floor division", "rounded",
        "no return", "tuple", "height only"])
def test_slips_get_a_hint(slip, message):
    with pytest.raises(ExerciseIncorrect, match=message):
        checks.check_megapixels(slip)


def test_a_stub_is_not_done():
    with pytest.raises(ExerciseNotDone, match="not written yet"):
        checks.check_megapixels(_stub)
