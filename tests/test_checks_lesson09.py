"""Lesson 09's checks: the right answers pass, and each common slip gets its own hint."""
from __future__ import annotations

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
        (lambda g, levels=4: None, "returned None"),
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


def _ascent(*, order="small_first", rounding=round, resize=dict(method="bicubic", antialias=True), restart=False,
            roll_axis=(1, 2), roll=1, back=-1, sign=1.0, use_normalize=True, use_step_size=True, shift_per_level=False,
            returns="image"):
    """The lesson's solution, with one slip switched on by a keyword."""

    def my_pyramid_ascent(class_gradient, start, random_shift, normalize, levels=3, scale=1.4, iterations=10,
                          step_size=classviz.MATLAB_STEP_SIZE):
        height, width = start.shape[1], start.shape[2]
        ks = range(levels) if order == "small_first" else reversed(range(levels))
        sizes = [(rounding(height / scale ** (levels - 1 - k)), rounding(width / scale ** (levels - 1 - k))) for k in ks]
        image = start
        rolled = None
        for size in sizes:
            image = tf.image.resize(start if restart else image, size, **resize)
            if shift_per_level:
                shift = random_shift()
            for _ in range(iterations):
                if not shift_per_level:
                    shift = random_shift()
                rolled = tf.roll(image, roll * shift, axis=list(roll_axis)) if roll else image
                gradient = class_gradient(rolled)
                if back:
                    gradient = tf.roll(gradient, back * shift, axis=list(roll_axis))
                direction = normalize(gradient) if use_normalize else gradient
                image = image + sign * (step_size if use_step_size else classviz.MATLAB_STEP_SIZE) * direction
        return {"image": image, "rolled": rolled, "none": None}[returns]

    return my_pyramid_ascent


def test_pyramid_ascent_solution_passes(capsys):
    checks.check_pyramid_ascent(_ascent())
    checks.check_pyramid_ascent(classviz.pyramid_ascent)
    assert capsys.readouterr().out.count("Correct:") == 2


@pytest.mark.parametrize(
    "slip, message",
    [
        (dict(order="large_first"), "largest first"),
        (dict(rounding=int), r"with round\(\)"),
        (dict(resize=dict(method="bicubic")), "without antialias=True"),
        (dict(resize=dict(method="bilinear")), "bilinear"),
        (dict(restart=True), "started again from the start images"),
        (dict(roll=0), "given the image itself: roll it first"),
        (dict(roll=-1, back=1), r"rolled by -shift; roll it by \+shift"),
        (dict(roll_axis=(0, 1)), r"axes \[0, 1\]"),
        (dict(back=0), "not rolled back"),
        (dict(back=1), r"rolled by \+shift again"),
        (dict(sign=-1.0), "went down the gradient"),
        (dict(use_normalize=False), "normalize was never called"),
        (dict(use_step_size=False), "MATLAB_STEP_SIZE; use the step_size argument"),
        (dict(shift_per_level=True), "random_shift\\(\\) was called 3 times; call it once per step"),
        (dict(returns="rolled"), "returned the rolled copy"),
        (dict(returns="none"), "returned None"),
    ],
)
def test_pyramid_ascent_slips_get_hints(slip, message):
    with pytest.raises(ExerciseIncorrect, match=message):
        checks.check_pyramid_ascent(_ascent(**slip))


def test_pyramid_ascent_without_resizing_or_with_too_few_steps_gets_hints():
    def no_pyramid(class_gradient, start, random_shift, normalize, levels=3, scale=1.4, iterations=10, step_size=0.01):
        image = start
        for _ in range(levels * iterations):
            shift = random_shift()
            gradient = tf.roll(class_gradient(tf.roll(image, shift, axis=[1, 2])), -shift, axis=[1, 2])
            image = image + step_size * normalize(gradient)
        return image

    with pytest.raises(ExerciseIncorrect, match="every step ran at the full size"):
        checks.check_pyramid_ascent(no_pyramid)

    def one_step_per_level(class_gradient, start, random_shift, normalize, levels=3, scale=1.4, iterations=10,
                           step_size=0.01):
        return classviz.pyramid_ascent(class_gradient, start, random_shift, normalize, levels=levels, scale=scale,
                                       iterations=1, step_size=step_size)

    with pytest.raises(ExerciseIncorrect, match="called 3 times .*expected levels x iterations = 6"):
        checks.check_pyramid_ascent(one_step_per_level)


def test_pyramid_ascent_fixed_normalisation_gets_a_hint():
    def own_normalisation(class_gradient, start, random_shift, normalize, levels=3, scale=1.4, iterations=10,
                          step_size=0.01):
        return classviz.pyramid_ascent(class_gradient, start, random_shift, classviz.laplacian_normalize,
                                       levels=levels, scale=scale, iterations=iterations, step_size=step_size)

    with pytest.raises(ExerciseIncorrect, match="normalize was never called"):
        checks.check_pyramid_ascent(own_normalisation)


def test_pyramid_ascent_resizing_after_the_steps_or_with_float_sizes_gets_hints():
    def resize_late(class_gradient, start, random_shift, normalize, levels=3, scale=1.4, iterations=10, step_size=0.01):
        height, width = start.shape[1:3]
        image = start
        for k in range(levels):
            for _ in range(iterations):
                shift = random_shift()
                gradient = tf.roll(class_gradient(tf.roll(image, shift, axis=[1, 2])), -shift, axis=[1, 2])
                image = image + step_size * normalize(gradient)
            size = (round(height / scale ** (levels - 1 - k)), round(width / scale ** (levels - 1 - k)))
            image = tf.image.resize(image, size, method="bicubic", antialias=True)
        return image

    with pytest.raises(ExerciseIncorrect, match="resize the image at the START of each level"):
        checks.check_pyramid_ascent(resize_late)

    def float_sizes(class_gradient, start, random_shift, normalize, levels=3, scale=1.4, iterations=10, step_size=0.01):
        height, width = start.shape[1:3]
        image = start
        for k in range(levels):
            image = tf.image.resize(image, (height / scale ** (levels - 1 - k), width / scale ** (levels - 1 - k)))
        return image

    with pytest.raises(ExerciseIncorrect, match=r"raised ValueError .*whole numbers: round\(\) the pyramid sizes"):
        checks.check_pyramid_ascent(float_sizes)


def test_laplacian_normalize_multiplying_or_dropping_keepdims_gets_hints():
    with pytest.raises(ExerciseIncorrect, match="multiplied each band by its RMS; divide"):
        checks.check_laplacian_normalize(_normalize(lambda b: 1 / _rms([1, 2, 3])(b)))
    with pytest.raises(ExerciseIncorrect, match="keepdims=True"):
        checks.check_laplacian_normalize(_normalize(lambda b: tf.sqrt(tf.reduce_mean(tf.square(b), axis=[1, 2, 3]))))
