"""Exercise checks: a right answer passes, a wrong one is told what is wrong, a stub is told to start."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from course_lib import checks, models
from course_lib.checks import ExerciseIncorrect, ExerciseNotDone


@pytest.fixture(scope="module")
def backbone():
    return models.backbone("dog_breeds", verbose=False)


def _stub(*args, **kwargs):
    raise NotImplementedError("write this function")


# --- Lesson 02 ---


def _make_dream_model(base_model, names):
    return tf.keras.Model(inputs=base_model.input, outputs=[base_model.get_layer(n).output for n in names])


def test_check_dream_model_passes_the_right_answer(backbone, capsys):
    checks.check_dream_model(_make_dream_model, backbone)
    assert capsys.readouterr().out.startswith("Correct:")


def test_check_dream_model_catches_layers_in_the_wrong_order(backbone):
    with pytest.raises(ExerciseIncorrect, match="activations of|shape"):
        checks.check_dream_model(lambda base, names: _make_dream_model(base, sorted(names)), backbone)


def test_check_dream_model_catches_a_single_output(backbone):
    with pytest.raises(ExerciseIncorrect, match="list of 2 activations"):
        checks.check_dream_model(
            lambda base, names: tf.keras.Model(base.input, base.get_layer(names[0]).output), backbone
        )


def test_check_dream_model_asks_for_a_keras_model(backbone):
    with pytest.raises(ExerciseIncorrect, match="keras.Model"):
        checks.check_dream_model(lambda base, names: [base.get_layer(n).output for n in names], backbone)


def test_check_dream_model_says_a_stub_is_not_done(backbone):
    with pytest.raises(ExerciseNotDone):
        checks.check_dream_model(_stub, backbone)


# --- Lesson 03 ---


def _weighted(img, model, layer_weights, reduce=tf.math.reduce_mean):
    activations = model(tf.expand_dims(img, axis=0))
    return tf.reduce_sum([w * reduce(a) for w, a in zip(layer_weights, activations)])


def test_check_weighted_loss_passes_the_right_answer(backbone, capsys):
    checks.check_weighted_loss(_weighted, backbone)
    assert capsys.readouterr().out.startswith("Correct:")


def test_check_weighted_loss_catches_ignored_weights(backbone):
    with pytest.raises(ExerciseIncorrect, match="unweighted"):
        checks.check_weighted_loss(lambda img, model, w: _weighted(img, model, [1.0] * len(w)), backbone)


def test_check_weighted_loss_catches_sums_instead_of_means(backbone):
    with pytest.raises(ExerciseIncorrect, match="reduce_mean"):
        checks.check_weighted_loss(lambda img, model, w: _weighted(img, model, w, tf.reduce_sum), backbone)


def test_check_weighted_loss_asks_for_one_number(backbone):
    def per_layer(img, model, layer_weights):
        activations = model(tf.expand_dims(img, axis=0))
        return tf.stack([w * tf.reduce_mean(a) for w, a in zip(layer_weights, activations)])

    with pytest.raises(ExerciseIncorrect, match="one number"):
        checks.check_weighted_loss(per_layer, backbone)


def test_check_weighted_loss_says_a_stub_is_not_done(backbone):
    with pytest.raises(ExerciseNotDone):
        checks.check_weighted_loss(_stub, backbone)


# --- Lesson 04 ---


def _step(img, model, step_size, sign=1.0, normalise=True, clip=True):
    from course_lib.dream import calc_loss

    with tf.GradientTape() as tape:
        tape.watch(img)
        loss = calc_loss(img, model)
    gradients = tape.gradient(loss, img)
    if normalise:
        gradients /= tf.math.reduce_std(gradients) + 1e-8
    img = img + sign * gradients * step_size
    return loss, tf.clip_by_value(img, -1, 1) if clip else img


def test_check_gradient_ascent_step_passes_the_right_answer(backbone, capsys):
    checks.check_gradient_ascent_step(_step, backbone)
    assert capsys.readouterr().out.startswith("Correct:")


def test_check_gradient_ascent_step_catches_descent(backbone):
    with pytest.raises(ExerciseIncorrect, match="down"):
        checks.check_gradient_ascent_step(lambda i, m, s: _step(i, m, s, sign=-1.0), backbone)


def test_check_gradient_ascent_step_catches_a_missing_clip(backbone):
    with pytest.raises(ExerciseIncorrect, match="clip"):
        checks.check_gradient_ascent_step(lambda i, m, s: _step(i, m, s, clip=False), backbone)


def test_check_gradient_ascent_step_catches_a_raw_gradient(backbone):
    with pytest.raises(ExerciseIncorrect, match="reduce_std"):
        checks.check_gradient_ascent_step(lambda i, m, s: _step(i, m, s, normalise=False), backbone)


def test_check_gradient_ascent_step_asks_for_a_pair(backbone):
    with pytest.raises(ExerciseIncorrect, match="pair"):
        checks.check_gradient_ascent_step(lambda i, m, s: _step(i, m, s)[1], backbone)


def test_check_gradient_ascent_step_says_a_stub_is_not_done(backbone):
    with pytest.raises(ExerciseNotDone):
        checks.check_gradient_ascent_step(_stub, backbone)


# --- Lesson 05 ---


def _octave_shape(base_shape, n, octave_scale=1.30):
    return int(base_shape[0] * octave_scale**n), int(base_shape[1] * octave_scale**n)














# --- Lesson 06 ---


def _equal_tiles(length, tile_size):
    count = -(-length // tile_size)
    return [index * length // count for index in range(count + 1)]




def test_check_tile_bounds_passes_the_course_version(capsys):
    from course_lib import tiles

    checks.check_tile_bounds(lambda length, tile: tiles.tile_bounds(length, tile).numpy().tolist())
    assert capsys.readouterr().out.startswith("Correct:")


def test_check_tile_bounds_catches_the_tutorials_skipped_edge():
    # The tutorial's starts: range(0, length, tile)[:-1], each tile tile_size long.
    def tutorial(length, tile):
        starts = list(range(0, length, tile))[:-1] or [0]
        return starts + [min(starts[-1] + tile, length)]

    with pytest.raises(ExerciseIncorrect, match="edge"):
        checks.check_tile_bounds(tutorial)


def test_check_tile_bounds_catches_oversized_tiles():
    with pytest.raises(ExerciseIncorrect, match="longer than tile_size"):
        checks.check_tile_bounds(lambda length, tile: [0, length])


def test_check_tile_bounds_catches_too_many_tiles():
    with pytest.raises(ExerciseIncorrect, match="suffice"):
        checks.check_tile_bounds(lambda length, tile: list(range(0, length, max(tile // 2, 1))) + [length])


def test_check_tile_bounds_says_a_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        checks.check_tile_bounds(_stub)
