"""Lesson 06's checks: the right answers pass, and each common slip fails with a hint that names the fix."""
from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from course_lib import checks, tiles
from course_lib.checks import ExerciseIncorrect, ExerciseNotDone, lesson06
from course_lib.checks import common
from course_lib.checks.common import small_dream_model
from course_lib.dream import calc_loss


def _stub(*args, **kwargs):
    raise NotImplementedError("write this function")


# --- random_roll ---


def _random_roll(img, maxroll):
    shift = tf.random.uniform(shape=[2], minval=-maxroll, maxval=maxroll, dtype=tf.int32)
    img_rolled = tf.roll(img, shift=shift, axis=[0, 1])
    return shift, img_rolled


def test_random_roll_passes_the_tutorials_and_the_librarys(capsys):
    checks.check_random_roll(_random_roll)
    checks.check_random_roll(tiles.random_roll)
    assert capsys.readouterr().out.count("Correct:") == 2


def test_random_roll_refuses_a_numpy_version_that_cannot_run_in_a_graph():
    def numpy_roll(img, maxroll):
        shift = np.random.default_rng().integers(-maxroll, maxroll, size=2)
        return shift, np.roll(np.asarray(img), tuple(shift), axis=(0, 1))

    with pytest.raises(ExerciseIncorrect, match="inside tf.function.*not NumPy"):
        checks.check_random_roll(numpy_roll)


def _uniform(low, high, shape=(2,)):
    return tf.random.uniform(shape=shape, minval=low, maxval=high, dtype=tf.int32)


@pytest.mark.parametrize("slip, hint", [
    (lambda img, m: (tf.roll(img, [1, 2], [0, 1]), tf.constant([1, 2])), r"\(img_rolled, shift\)"),
    (lambda img, m: tf.roll(img, [1, 2], [0, 1]), "expected a pair"),
    (lambda img, m: (tf.constant([1, 2]), tf.roll(img, [1, 2], [0, 1])), "every time"),
    (lambda img, m: (lambda s: (s, tf.roll(img, s, [0, 1])))(_uniform(-m, m + 1)), "maxval is excluded"),
    (lambda img, m: (lambda s: (s, tf.roll(img, s, [0, 1])))(_uniform(0, m)), "both ways"),
    (lambda img, m: (lambda s: (s, tf.roll(img, s, [0, 1])))(_uniform(-2 * m, 2 * m)), r"\[-maxroll, maxroll\)"),
    (lambda img, m: (lambda s: (s, img))(_uniform(-m, m)), "unrolled"),
    (lambda img, m: (lambda s: (s, tf.roll(img, -s, [0, 1])))(_uniform(-m, m)), "other way"),
    (lambda img, m: (lambda s: (s, tf.roll(img, s, [1, 0])))(_uniform(-m, m)), r"\(across, down\)"),
    (lambda img, m: (lambda s: (s, tf.roll(img, s, [1, 2])))(_uniform(-m, m)), "colours"),
    (lambda img, m: (lambda s: (s, tf.roll(img, s[0], 0)))(_uniform(-m, m)), "down only"),
    (lambda img, m: (lambda s: (s, tf.roll(img, s, [0, 1])))(_uniform(-m, m, (1,))), r"shape=\[2\]"),
    (lambda img, m: (lambda s: (tf.concat([s, s], 0), tf.roll(img, tf.concat([s, s], 0), [0, 1])))(_uniform(-m, m, (1,))),
     "independent"),
    (lambda img, m: (lambda s: (tf.cast(s, tf.float32), tf.roll(img, s, [0, 1])))(_uniform(-m, m)), "tf.int32"),
])
def test_random_roll_catches_slips(slip, hint):
    with pytest.raises(ExerciseIncorrect, match=hint):
        checks.check_random_roll(slip)


def test_random_roll_says_a_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        checks.check_random_roll(_stub)


# --- tile_bounds ---


def _equal_tiles(length, tile_size):
    count = math.ceil(length / tile_size)
    return [index * length // count for index in range(count + 1)]


def test_tile_bounds_passes_near_equal_tiles_either_way_round(capsys):
    checks.check_tile_bounds(_equal_tiles)
    checks.check_tile_bounds(lambda length, tile: [length - bound for bound in _equal_tiles(length, tile)][::-1])
    checks.check_tile_bounds(lambda length, tile: tiles.tile_bounds(length, tile))
    assert capsys.readouterr().out.count("Correct:") == 3


def test_tile_bounds_refuses_full_tiles_with_a_sliver_and_says_why():
    with pytest.raises(ExerciseIncorrect, match=r"\[0, 512, 1024, 1030\].*last tile is 6 px long.*near-equal"):
        checks.check_tile_bounds(lambda length, tile: list(range(0, length, tile)) + [length])


def test_tile_bounds_catches_the_tutorials_skipped_edge():
    def tutorial(length, tile):
        starts = list(range(0, length, tile))[:-1] or [0]
        return starts + [min(starts[-1] + tile, length)]

    with pytest.raises(ExerciseIncorrect, match="edge"):
        checks.check_tile_bounds(tutorial)


@pytest.mark.parametrize("slip, hint", [
    (lambda length, tile: [0, length], "longer than tile_size"),
    (lambda length, tile: list(range(0, length, max(tile // 2, 1))) + [length], "suffice"),
    (lambda length, tile: _equal_tiles(length, tile)[1:], "first boundary must be 0"),
    (lambda length, tile: None, "returned nothing"),
])
def test_tile_bounds_catches_slips(slip, hint):
    with pytest.raises(ExerciseIncorrect, match=hint):
        checks.check_tile_bounds(slip)


def test_tile_bounds_says_a_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        checks.check_tile_bounds(_stub)


# --- the tiled gradient ---


def _tiled(img, model, tile_size, roll=_random_roll, *, skip_last=False, unroll=-1, roll_twice=False,
           per_tile=False, normalise=True, full_tiles=False, watch=True, no_roll=False):
    """The solution, with switches for the slips."""
    if no_roll:
        shift, img_rolled = tf.zeros([2], tf.int32), img
    else:
        shift, img_rolled = roll(img, tile_size)
    if roll_twice:
        img_rolled = tf.roll(img_rolled, shift=shift, axis=[0, 1])
    height, width = img_rolled.shape[:2]
    bounds = (lambda n: list(range(0, n, tile_size)) + [n]) if full_tiles else (lambda n: _equal_tiles(n, tile_size))
    ys, xs = bounds(height), bounds(width)
    pairs_y, pairs_x = list(zip(ys[:-1], ys[1:])), list(zip(xs[:-1], xs[1:]))
    if skip_last:
        pairs_y, pairs_x = pairs_y[:-1] or pairs_y, pairs_x[:-1] or pairs_x
    gradients = tf.zeros_like(img_rolled)
    for top, bottom in pairs_y:
        row = []
        for left, right in pairs_x:
            tile = img_rolled[top:bottom, left:right]
            with tf.GradientTape() as tape:
                if watch:
                    tape.watch(tile)
                loss = calc_loss(tile, model)
            tile_gradients = tape.gradient(loss, tile)
            if per_tile:
                tile_gradients /= tf.math.reduce_std(tile_gradients) + 1e-8
            row.append(tile_gradients)
        band = tf.concat(row, axis=1)
        band = tf.pad(band, [[0, 0], [0, width - band.shape[1]], [0, 0]])
        gradients = tf.tensor_scatter_nd_update(gradients, [[y] for y in range(top, bottom)], band)
    gradients = tf.roll(gradients, shift=unroll * shift, axis=[0, 1])
    if normalise:
        gradients /= tf.math.reduce_std(gradients) + 1e-8
    return gradients


def _tutorial_style(img, model, tile_size, roll=_random_roll):
    """The tutorial's way: watch the whole rolled picture, add each tile's full-size gradient."""
    shift, img_rolled = roll(img, tile_size)
    gradients = tf.zeros_like(img_rolled)
    ys, xs = _equal_tiles(img_rolled.shape[0], tile_size), _equal_tiles(img_rolled.shape[1], tile_size)
    for top, bottom in zip(ys[:-1], ys[1:]):
        for left, right in zip(xs[:-1], xs[1:]):
            with tf.GradientTape() as tape:
                tape.watch(img_rolled)
                loss = calc_loss(img_rolled[top:bottom, left:right], model)
            gradients = gradients + tape.gradient(loss, img_rolled)
    gradients = tf.roll(gradients, shift=-shift, axis=[0, 1])
    return gradients / (tf.math.reduce_std(gradients) + 1e-8)


def test_tiled_gradients_passes_the_solution_and_the_tutorials_way(capsys):
    checks.check_tiled_gradients(_tiled)
    checks.check_tiled_gradients(_tutorial_style)
    assert capsys.readouterr().out.count("Correct:") == 2


def test_the_checks_reference_is_the_librarys_tiled_gradient():
    model = small_dream_model()
    img = tf.random.stateless_uniform((70, 90, 3), seed=(1, 1), minval=-1, maxval=1)
    library = tiles.TiledGradients(model, tile_size=40, optimize=False, precision="float32", seed=3)
    shift = tf.random.Generator.from_seed(3).uniform([2], -40, 40, dtype=tf.int32).numpy()
    expected = library(img).numpy()
    ours = lesson06._tiled_reference(img, model, _equal_tiles(70, 40), _equal_tiles(90, 40), shift, -shift)
    assert common.distance(ours, expected) < 1e-3  # round-off only: compiled against eager, any kernel family


@pytest.mark.parametrize("switch, hint", [
    ({"skip_last": True}, "no gradient at all.*skip"),
    ({"unroll": 0}, "not rolled back"),
    ({"unroll": 1}, "second time"),
    ({"roll_twice": True}, "rolled twice"),
    ({"per_tile": True}, "normalised on its own"),
    ({"normalise": False}, "not normalised"),
    ({"full_tiles": True}, "full tiles and a short rest"),
    ({"watch": False}, "tape.watch"),
    ({"no_roll": True}, "never called roll"),
])
def test_tiled_gradients_catches_slips(switch, hint):
    with pytest.raises(ExerciseIncorrect, match=hint):
        checks.check_tiled_gradients(lambda *args: _tiled(*args, **switch))


def test_tiled_gradients_catches_rolling_twice_by_calling_roll_twice():
    def twice(img, model, tile_size, roll=_random_roll):
        roll(img, tile_size)
        return _tiled(img, model, tile_size, roll)

    with pytest.raises(ExerciseIncorrect, match="called roll 2 times"):
        checks.check_tiled_gradients(twice)


def test_tiled_gradients_catches_a_batch_axis():
    with pytest.raises(ExerciseIncorrect, match="no batch axis"):
        checks.check_tiled_gradients(lambda *args: _tiled(*args)[None])


def test_tiled_gradients_says_a_stub_is_not_done():
    with pytest.raises(ExerciseNotDone):
        checks.check_tiled_gradients(_stub)
