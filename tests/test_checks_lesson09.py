"""Lesson 09's checks: the right answers pass, and each common slip gets its own hint."""
from __future__ import annotations

import math

import pytest
import tensorflow as tf

from course_lib import checks, classviz
from course_lib.checks import ExerciseIncorrect, ExerciseNotDone


# --- my_laplacian_normalize ----------------------------------------------------------------------------


def _normalize(rms, skip_low_pass=False, merge=True, levels=None):
    def my_laplacian_normalize(gradient, levels_=4):
        bands = classviz.laplacian_split(gradient, levels if levels is not None else levels_)
        normalized = [band if (skip_low_pass and i == 0) else band / rms(band) for i, band in enumerate(bands)]
        return classviz.laplacian_merge(normalized) if merge else normalized

    return my_laplacian_normalize


def _rms(axis):
    return lambda band: tf.sqrt(tf.reduce_mean(tf.square(band), axis=axis, keepdims=True))


def test_laplacian_normalize_solution_passes(capsys):
    checks.check_laplacian_normalize(_normalize(_rms([1, 2, 3])))
    checks.check_laplacian_normalize(classviz.laplacian_normalize)
    assert capsys.readouterr().out.startswith("Correct:")


@pytest.mark.parametrize(
    "student, message",
    [
        (_normalize(_rms(None)), r"you normalised over the whole batch; each image's band needs its own RMS: "
                                 r"reduce over axes \[1, 2, 3\]"),
        (_normalize(_rms([1, 2])), r"each colour channel its own RMS.*\[1, 2, 3\]"),
        (_normalize(lambda b: tf.math.reduce_std(b, axis=[1, 2, 3], keepdims=True)), "standard deviation"),
        (_normalize(lambda b: tf.reduce_mean(tf.square(b), axis=[1, 2, 3], keepdims=True)), "mean square"),
        (_normalize(_rms([1, 2, 3]), skip_low_pass=True), r"low-pass rest \(bands\[0\]"),
        (_normalize(_rms([1, 2, 3]), merge=False), "merge the normalised bands"),
        (_normalize(_rms([1, 2, 3]), levels=4), "pass `levels` on"),
        (lambda g, levels=4: g / tf.sqrt(tf.reduce_mean(tf.square(g), axis=[1, 2, 3], keepdims=True)),
         "split it into bands first"),
        (lambda g, levels=4: g / tf.sqrt(tf.reduce_mean(tf.square(g))), "split it into bands first"),
        (lambda g, levels=4: g, "came back unchanged"),
        (lambda g, levels=4: None, "returned nothing"),
    ],
)
def test_laplacian_normalize_slips_get_hints(student, message):
    with pytest.raises(ExerciseIncorrect, match=message):
        checks.check_laplacian_normalize(student)


def test_laplacian_normalize_list_arithmetic_gets_a_hint():
    def divides_the_list(gradient, levels=4):
        bands = classviz.laplacian_split(gradient, levels)
        return classviz.laplacian_merge(bands / tf.sqrt(tf.reduce_mean(tf.square(bands))))

    with pytest.raises(ExerciseIncorrect, match="band by band"):
        checks.check_laplacian_normalize(divides_the_list)


def test_laplacian_normalize_stub_is_not_done():
    def stub(gradient, levels=4):
        raise NotImplementedError("give each band unit RMS")

    with pytest.raises(ExerciseNotDone, match="not written yet"):
        checks.check_laplacian_normalize(stub)


# --- my_pyramid_ascent ---------------------------------------------------------------------------------


def _ascent(*, grow="floor", first=False, enlarge=True, tiles="tiled", roll=True, back=-1, sign=1.0,
            use_step_size=True, method="bicubic", returns="image"):
    """A student's loop written from MATLAB's description, with one slip switched on by a keyword."""

    def my_pyramid_ascent(class_gradient, start, random_shift, normalize, levels=3, scale=1.4, iterations=10,
                          step_size=classviz.MATLAB_STEP_SIZE, tile_size=224):
        image = start
        height, width = int(start.shape[1]), int(start.shape[2])
        for level in range(levels):
            if enlarge and (level > 0 or first):
                rule = {"floor": math.floor, "round": round, "int": int}[grow]
                height, width = rule(height * scale), rule(width * scale)
                image = tf.image.resize(image, (height, width), method=method)
            for _ in range(iterations):
                shift = random_shift() if roll else tf.constant([0, 0])
                rolled = tf.roll(image, shift, axis=[1, 2])
                if tiles == "tiled":
                    gradient = classviz.tiled_gradient(class_gradient, rolled, tile_size)
                elif tiles == "shrink":
                    small = tf.image.resize(rolled, (min(height, tile_size), min(width, tile_size)), method="bicubic")
                    gradient = tf.image.resize(class_gradient(small), (height, width), method="bicubic")
                else:
                    gradient = class_gradient(rolled)
                if back:
                    gradient = tf.roll(gradient, back * shift, axis=[1, 2])
                image = image + sign * (step_size if use_step_size else classviz.MATLAB_STEP_SIZE) * normalize(gradient)
        return {"image": image, "none": None}[returns]

    return my_pyramid_ascent


def _downward(class_gradient, start, random_shift, normalize, levels=3, scale=1.4, iterations=10, step_size=0.01,
              tile_size=224):
    """The course's old exercise: smallest level first, ending at the start size."""
    height, width = start.shape[1], start.shape[2]
    image = start
    for k in range(levels):
        size = (round(height / scale ** (levels - 1 - k)), round(width / scale ** (levels - 1 - k)))
        image = tf.image.resize(image, size, method="bicubic", antialias=True)
        for _ in range(iterations):
            shift = random_shift()
            gradient = tf.roll(class_gradient(tf.roll(image, shift, axis=[1, 2])), -shift, axis=[1, 2])
            image = image + step_size * normalize(gradient)
    return image


def test_pyramid_ascent_solution_passes(capsys):
    checks.check_pyramid_ascent(_ascent())
    checks.check_pyramid_ascent(classviz.pyramid_ascent)
    assert capsys.readouterr().out.count("Correct:") == 2


@pytest.mark.parametrize(
    "slip, message",
    [
        (dict(enlarge=False), "never enlarged"),
        (dict(first=True), "enlarged before the FIRST level"),
        (dict(grow="round"), "MATLAB floors them"),
        (dict(tiles="shrink"), "shrunk to one tile"),
        (dict(tiles="none"), r"raised ValueError .*tile by tile, classviz.tiled_gradient"),
        (dict(back=0), "not rolled back"),
        (dict(roll=False), "not rolled before its gradient"),
        (dict(method="bilinear"), "bilinearly"),
        (dict(sign=-1.0), "went down the gradient"),
        (dict(use_step_size=False), "MATLAB_STEP_SIZE; use the step_size argument"),
        (dict(returns="none"), "returned None"),
    ],
)
def test_pyramid_ascent_slips_get_hints(slip, message):
    with pytest.raises(ExerciseIncorrect, match=message):
        checks.check_pyramid_ascent(_ascent(**slip))


def test_the_old_downward_pyramid_gets_its_own_hint():
    with pytest.raises(ExerciseIncorrect, match="the pyramid went down"):
        checks.check_pyramid_ascent(_downward)


def test_pyramid_ascent_with_too_few_steps_or_its_own_normalisation_gets_hints():
    def one_step_per_level(class_gradient, start, random_shift, normalize, levels=3, scale=1.4, iterations=10,
                           step_size=0.01, tile_size=224):
        return classviz.pyramid_ascent(class_gradient, start, random_shift, normalize, levels=levels, scale=scale,
                                       iterations=1, step_size=step_size, tile_size=tile_size)

    with pytest.raises(ExerciseIncorrect, match=r"the steps' gradients had sizes 20x22, 28x30, 39x42 \(one per call of normalize\); expected"):
        checks.check_pyramid_ascent(one_step_per_level)

    def own_normalisation(class_gradient, start, random_shift, normalize, levels=3, scale=1.4, iterations=10,
                          step_size=0.01, tile_size=224):
        return classviz.pyramid_ascent(class_gradient, start, random_shift, classviz.laplacian_normalize,
                                       levels=levels, scale=scale, iterations=iterations, step_size=step_size,
                                       tile_size=tile_size)

    with pytest.raises(ExerciseIncorrect, match="normalize was never called"):
        checks.check_pyramid_ascent(own_normalisation)


def test_laplacian_normalize_multiplying_or_dropping_keepdims_gets_hints():
    with pytest.raises(ExerciseIncorrect, match="multiplied each band by its RMS; divide"):
        checks.check_laplacian_normalize(_normalize(lambda b: 1 / _rms([1, 2, 3])(b)))
    with pytest.raises(ExerciseIncorrect, match="keepdims=True"):
        checks.check_laplacian_normalize(_normalize(lambda b: tf.sqrt(tf.reduce_mean(tf.square(b), axis=[1, 2, 3]))))
