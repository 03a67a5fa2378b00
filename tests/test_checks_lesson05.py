"""Lesson 05's checks: the right answers pass, and each common slip fails with a hint that names the fix."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from course_lib import checks, dream
from course_lib.checks import ExerciseIncorrect, ExerciseNotDone
from course_lib.checks import common


def _stub(*args, **kwargs):
    raise NotImplementedError("write this function")


# --- pixel_steps ---


def _pixel_steps(base_shape, steps_per_octave, octaves=(0,), octave_scale=1.30):
    total = 0
    for n in octaves:
        height = int(base_shape[0] * octave_scale**n)
        width = int(base_shape[1] * octave_scale**n)
        total += height * width * steps_per_octave
    return total


def test_pixel_steps_passes_the_right_answer_and_the_librarys_sizes(capsys):
    checks.check_pixel_steps(_pixel_steps)
    checks.check_pixel_steps(lambda base, steps, octaves=(0,), scale=1.3: steps * sum(
        h * w for h, w in dream.octave_sizes(base, octaves, scale)))
    assert capsys.readouterr().out.count("Correct:") == 2


def test_pixel_steps_accepts_unrounded_sizes(capsys):
    checks.check_pixel_steps(lambda base, steps, octaves=(0,), scale=1.3: sum(
        base[0] * base[1] * scale ** (2 * n) * steps for n in octaves))
    assert "Correct:" in capsys.readouterr().out


@pytest.mark.parametrize("slip, hint", [
    (lambda b, s, o=(0,), k=1.3: _pixel_steps(b, 1, o, k), "left out the steps"),
    (lambda b, s, o=(0,), k=1.3: len(o) * b[0] * b[1] * s, "photo's own size"),
    (lambda b, s, o=(0,), k=1.3: sum(int(b[0] * k * n) * int(b[1] * k * n) * s for n in o), r"a power"),
    (lambda b, s, o=(0,), k=1.3: sum(int(b[0] * k**n) * s for n in o), "height x width"),
    (lambda b, s, o=(0,), k=1.3: sum(b[0] * b[1] * k**n * s for n in o), r"\(2 \* n\)"),
    (lambda b, s, o=(0,), k=1.3: _pixel_steps(b, s, o), "octave_scale argument"),
    (lambda b, s, o=(0,), k=1.3: _pixel_steps(b, s, range(-2, 3), k), "octaves argument"),
    (lambda b, s, o=(0,), k=1.3: None, "one number"),
])
def test_pixel_steps_catches_slips(slip, hint):
    with pytest.raises(ExerciseIncorrect, match=hint):
        checks.check_pixel_steps(slip)


def test_pixel_steps_says_a_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        checks.check_pixel_steps(_stub)


# --- the octave loop ---


def _loop(img, dream_octave, steps_per_octave, octaves=range(-2, 3), octave_scale=1.30, *,
          compound=False, final_resize=True, order=1, times=False, round_sizes=False, dream_first=False,
          keep=True, from_photo=False, batch=False, fixed_steps=None, scale_override=None, octaves_override=None):
    """The solution, with switches for the slips."""
    photo = img
    img = tf.convert_to_tensor(img, dtype=tf.float32)
    base_shape = tf.shape(img)[:-1]
    float_base_shape = tf.cast(base_shape, tf.float32)
    scale = octave_scale if scale_override is None else scale_override
    octave_list = list(octaves if octaves_override is None else octaves_override)[::order]
    for n in octave_list:
        shape_from = tf.cast(tf.shape(img)[:-1], tf.float32) if compound else float_base_shape
        factor = scale * n if times else scale**n
        sizes = shape_from * factor
        new_shape = tf.cast(tf.round(sizes) if round_sizes else sizes, tf.int32)
        if dream_first:
            img = dream_octave(img, steps_per_octave)
        source = photo if from_photo else img
        img = tf.image.resize(source, new_shape)
        if not dream_first:
            picture = img[None] if batch else img
            dreamed = dream_octave(picture, steps_per_octave if fixed_steps is None else fixed_steps)
            if keep:
                img = dreamed
    if final_resize:
        img = tf.image.resize(img, base_shape)
    return img


def test_octave_loop_passes_the_solution(capsys):
    checks.check_octave_loop(_loop)
    assert "Correct:" in capsys.readouterr().out


def test_octave_loop_passes_a_numpy_and_python_sizes_version(capsys):
    def loop(img, dream_octave, steps_per_octave, octaves=range(-2, 3), octave_scale=1.30):
        height, width = np.asarray(img).shape[:2]
        for n in octaves:
            img = tf.image.resize(img, (int(height * octave_scale**n), int(width * octave_scale**n)))
            img = dream_octave(img, steps_per_octave)
        return tf.image.resize(img, (height, width)).numpy()

    checks.check_octave_loop(loop)
    assert "Correct:" in capsys.readouterr().out


@pytest.mark.parametrize("switch, hint", [
    ({"compound": True}, r"\*base\* shape"),
    ({"final_resize": False}, "last octave's size.*resize once more"),
    ({"order": -1}, "largest first"),
    ({"times": True}, r"a power"),
    ({"round_sizes": True}, "rounded"),
    ({"dream_first": True}, "resize first and then dream"),
    ({"keep": False}, "result was dropped"),
    ({"from_photo": True}, "started again from the photo"),
    ({"batch": True}, "no batch axis"),
    ({"fixed_steps": 50}, "pass steps_per_octave"),
    ({"scale_override": 1.30}, "octave_scale argument"),
    ({"octaves_override": range(-2, 3)}, "octaves argument"),
])
def test_octave_loop_catches_slips(switch, hint):
    with pytest.raises(ExerciseIncorrect, match=hint):
        checks.check_octave_loop(lambda *args: _loop(*args, **switch))


def test_octave_loop_catches_a_dream_that_never_runs():
    with pytest.raises(ExerciseIncorrect, match="never called dream_octave"):
        checks.check_octave_loop(lambda img, dream_octave, steps, octaves=(0,), scale=1.3: img)


def test_octave_loop_says_a_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        checks.check_octave_loop(_stub)


def test_check_sizes_agree_in_float32_and_float64():
    # The tutorial computes sizes in float32 (tf.cast), the library in Python floats: the check's
    # shapes are chosen where both truncate to the same whole number.
    for base, octaves, scale in [((47, 61), (1, 2), 1.30), ((47, 61), range(-2, 3), 1.30), ((52, 38), (-1, 0, 1), 1.5),
                                 ((61, 83), range(-2, 3), 1.30)]:
        for n in octaves:
            in_float32 = tf.cast(tf.cast(base, tf.float32) * (scale**n), tf.int32).numpy().tolist()
            assert in_float32 == [int(side * scale**n) for side in base]


def test_the_small_model_is_the_same_every_time():
    first = common.small_dream_model()
    picture = tf.random.stateless_uniform((1, 20, 24, 3), seed=(1, 2))
    outputs = [output.numpy() for output in first(picture)]
    common.small_dream_model.cache_clear()
    again = [output.numpy() for output in common.small_dream_model()(picture)]
    for a, b in zip(outputs, again):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_octave_loop_turns_type_errors_of_the_sizes_into_hints():
    def no_cast(img, dream_octave, steps_per_octave, octaves=range(-2, 3), octave_scale=1.30):
        base_shape = tf.shape(img)[:-1]
        for n in octaves:
            img = dream_octave(tf.image.resize(img, base_shape * octave_scale**n), steps_per_octave)
        return tf.image.resize(img, base_shape)

    def float_sizes(img, dream_octave, steps_per_octave, octaves=range(-2, 3), octave_scale=1.30):
        base_shape = tf.cast(tf.shape(img)[:-1], tf.float32)
        for n in octaves:
            img = dream_octave(tf.image.resize(img, base_shape * octave_scale**n), steps_per_octave)
        return tf.image.resize(img, tf.cast(base_shape, tf.int32))

    with pytest.raises(ExerciseIncorrect, match=r"tf.cast\(base_shape, tf.float32\)"):
        checks.check_octave_loop(no_cast)
    with pytest.raises(ExerciseIncorrect, match="whole-number sizes"):
        checks.check_octave_loop(float_sizes)
