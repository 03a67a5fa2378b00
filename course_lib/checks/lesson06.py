"""Exercise checks of lesson 06: the random roll, the tile boundaries, the tiled gradient."""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from course_lib import dream, tiles
from course_lib.checks.common import (ExerciseIncorrect, call_student, expect_array, expect_pair, first_slip, passed,
                                      small_dream_model)

__all__ = ['check_random_roll', 'check_tile_bounds', 'check_tiled_gradients']


# --- Exercise 1: random_roll ----------------------------------------------------------------------

def check_random_roll(student_random_roll: Callable) -> None:
    """Lesson 06: ``random_roll(img, maxroll)`` must return ``(shift, img_rolled)``: two random whole numbers
    (down, across) uniform in [-maxroll, maxroll), and ``tf.roll(img, shift, axis=[0, 1])``, also in tf.function."""
    img = tf.reshape(tf.range(9 * 11 * 3, dtype=tf.float32), (9, 11, 3))
    pixels = img.numpy()
    maxroll = 3
    call = f"random_roll(img of 9x11, maxroll={maxroll})"
    shifts, wrong = [], None
    for _ in range(300):
        answer = call_student(student_random_roll, img, maxroll, hints=[
            (Exception, "shift.*axis|axis.*shift|must have the same|same (size|length|shape)",
             "tf.roll needs one shift per axis: draw shape=[2] (down, across) and roll axis=[0, 1]."),
        ])
        shift, rolled = (np.asarray(part) for part in expect_pair(answer, call, "(shift, img_rolled)",
                                                                  "`return shift, img_rolled`"))
        if shift.shape == pixels.shape and rolled.shape != pixels.shape:
            raise ExerciseIncorrect(f"{call} returned (img_rolled, shift); return them the tutorial's way round: "
                                    "`return shift, img_rolled`.")
        if not np.issubdtype(shift.dtype, np.integer):
            raise ExerciseIncorrect(f"{call} returned a shift of type {shift.dtype}; a shift is whole pixels: "
                                    "dtype=tf.int32.")
        if rolled.shape != pixels.shape:
            raise ExerciseIncorrect(f"{call} returned a picture of shape {rolled.shape}; rolling keeps the shape "
                                    f"{pixels.shape}.")
        if shift.shape != (2,):
            raise ExerciseIncorrect(f"{call} returned a shift of shape {shift.shape}; it must be two numbers, (down, "
                                    "across): tf.random.uniform(shape=[2], ...).")
        hint = _roll_hint(rolled, pixels, shift)
        if hint:
            wrong = wrong or (shift, hint)
            dy, dx = (int(s) for s in shift)
            if dy and dx and abs(dy) != abs(dx):  # a shift that tells the slips apart
                raise ExerciseIncorrect(f"{call} returned shift {shift.tolist()} and {hint}")
        shifts.append(shift)
    if wrong:
        raise ExerciseIncorrect(f"{call} returned shift {wrong[0].tolist()} and {wrong[1]}")
    shifts = np.array(shifts)
    values = set(shifts.ravel().tolist())
    if np.all(shifts == shifts[0]):
        raise ExerciseIncorrect(f"{call} gave the shift {shifts[0].tolist()} every time: draw it at random, "
                                "tf.random.uniform(shape=[2], minval=-maxroll, maxval=maxroll, dtype=tf.int32).")
    if min(values) < -maxroll or max(values) > maxroll:
        raise ExerciseIncorrect(f"{call} gave shifts from {min(values)} to {max(values)}; each must be in "
                                f"[-maxroll, maxroll): minval=-maxroll, maxval=maxroll.")
    if max(values) == maxroll:
        raise ExerciseIncorrect(f"{call} gave shifts up to {maxroll} = maxroll; like the tutorial, stop just below "
                                "it (tf.random.uniform's maxval is excluded): minval=-maxroll, maxval=maxroll.")
    if min(values) >= 0:
        raise ExerciseIncorrect(f"{call} only gave shifts from 0 up: the picture must move both ways, minval=-maxroll.")
    missing = sorted(set(range(-maxroll, maxroll)) - values)  # the checks above leave values within the range
    if missing:
        raise ExerciseIncorrect(f"{call} never gave the shift(s) {missing} in 300 calls; every whole number in "
                                "[-maxroll, maxroll) should come up: tf.random.uniform(shape=[2], "
                                "minval=-maxroll, maxval=maxroll, dtype=tf.int32).")
    if np.all(shifts[:, 0] == shifts[:, 1]):
        raise ExerciseIncorrect(f"{call} always moved the picture as far down as across: draw two independent "
                                "numbers, shape=[2].")
    # The tutorial's TiledGradients calls random_roll inside tf.function, where NumPy cannot run.
    try:
        tf.function(lambda picture: student_random_roll(picture, tf.constant(maxroll)))(img)
    except Exception as error:  # noqa: BLE001 - any failure in graph mode gets the same advice
        raise ExerciseIncorrect(f"random_roll works on its own but fails inside tf.function ({type(error).__name__}), "
                                "where the tutorial's TiledGradients calls it: use TensorFlow's operations, "
                                "tf.random.uniform and tf.roll, not NumPy's.") from None
    passed("random_roll shifts the picture by a random (down, across) in [-maxroll, maxroll), wrapping around.")


def _roll_hint(rolled: np.ndarray, pixels: np.ndarray, shift: np.ndarray) -> str | None:
    """None if ``rolled`` is ``pixels`` rolled by ``shift``, else the slip that gives it (rolls are exact)."""
    dy, dx = (int(s) for s in shift)
    return first_slip(rolled, np.roll(pixels, (dy, dx), axis=(0, 1)), [
        (pixels, "the picture unrolled: return tf.roll(img, shift=shift, axis=[0, 1])."),
        (np.roll(pixels, (-dy, -dx), axis=(0, 1)), "a picture rolled the other way: roll by +shift (the "
                                                   "gradient is rolled back by -shift later)."),
        (np.roll(pixels, (dx, dy), axis=(0, 1)), "a picture rolled by (across, down): shift[0] moves it down "
                                                 "(axis 0), shift[1] across (axis 1)."),
        (np.roll(pixels, dy, axis=0), "a picture rolled down only: roll both axes, axis=[0, 1]."),
        (np.roll(pixels, dx, axis=1), "a picture rolled across only: roll both axes, axis=[0, 1]."),
        (np.roll(pixels, (dy, dx), axis=(1, 2)), "a picture rolled along width and colour: roll height and "
                                                 "width, axis=[0, 1] (axis 2 holds the colours)."),
    ], tolerance=0, reach=0, otherwise="a picture that is not the image rolled by that shift: "
                                       "img_rolled = tf.roll(img, shift=shift, axis=[0, 1]).")


# --- Exercise 2: tile_bounds ----------------------------------------------------------------------

def check_tile_bounds(student_tile_bounds: Callable) -> None:
    """Lesson 06: ``tile_bounds(length, tile_size)`` must cut ``0..length`` into ``ceil(length / tile_size)``
    tiles, none longer than ``tile_size``, **near-equal** (lengths differ by at most 1 px: no sliver)."""
    cases = [(1030, 512), (1000, 512), (2048, 512), (512, 512), (100, 512), (1650, 512), (7, 3), (1, 1), (513, 512)]
    for length, tile_size in cases:
        call = f"tile_bounds({length}, {tile_size})"
        answer = call_student(student_tile_bounds, length, tile_size)
        if answer is None:
            raise ExerciseIncorrect(f"{call} returned nothing; end with `return bounds`.")
        try:
            bounds = [int(bound) for bound in np.asarray(answer).ravel()]
        except (TypeError, ValueError):
            raise ExerciseIncorrect(f"{call} returned {answer!r}; expected a list of whole numbers.") from None
        if not bounds or bounds[0] != 0:
            raise ExerciseIncorrect(f"{call} returned {bounds}; the first boundary must be 0 (the top or left edge).")
        if bounds[-1] != length:
            raise ExerciseIncorrect(f"{call} returned {bounds}; the last boundary must be {length}, the edge, so the "
                                    "pixels at the right and bottom edges are in a tile too (the tutorial's version "
                                    "skips them).")
        sizes = [end - start for start, end in zip(bounds, bounds[1:])]
        if any(size <= 0 for size in sizes):
            raise ExerciseIncorrect(f"{call} returned {bounds}; boundaries must increase, every tile holding pixels.")
        if max(sizes) > tile_size:
            raise ExerciseIncorrect(f"{call} returned {bounds}: a tile of {max(sizes)} px, longer than "
                                    f"tile_size={tile_size}.")
        fewest = math.ceil(length / tile_size)
        if len(sizes) != fewest:
            raise ExerciseIncorrect(f"{call} returned {bounds}: {len(sizes)} tiles where {fewest} suffice (ceil(length "
                                    "/ tile_size)); every tile costs a forward and a backward pass.")
        if max(sizes) - min(sizes) > 1:
            shortest = min(sizes)
            where = "last tile" if sizes[-1] == shortest else "shortest tile"
            raise ExerciseIncorrect(f"{call} returned {bounds}: your {where} is {shortest} px long. A short tile gives "
                                    f"the network little context (a sliver of {shortest} px almost none); split the "
                                    "side into near-equal tiles instead, lengths differing by at most 1 px, e.g. "
                                    f"{tiles.tile_bounds(length, tile_size).numpy().tolist()}.")
    passed("tile_bounds covers every pixel with as few near-equal tiles as possible, none longer than tile_size.")


# --- Exercise 3: the tiled gradient ---------------------------------------------------------------

#: Seed of the library's ``TiledGradients`` in the check: its first random shift is the check's fixed shift.
_SEED = 7
#: One gradient pass, no steps to amplify round-off: the same-way reference is ~1e-7 off (relative norm,
#: either kernel family), a 1e-3 noise on it 1e-3; the nearest slip, each tile normalised on its own, 0.037.
_TOLERANCE = 3e-3


def _tiled_reference(img: Any, model: Any, bounds_y: Sequence[int], bounds_x: Sequence[int], roll_by: Sequence[int],
                     unroll_by: Sequence[int], *, per_tile: bool = False, normalise: bool = True) -> np.ndarray:
    """The tiled gradient, with switches for the slips: roll, one tape per tile, unroll, normalise."""
    rolled = tf.roll(img, shift=list(roll_by), axis=[0, 1])
    gradients = np.zeros(img.shape, np.float64)
    for top, bottom in zip(bounds_y[:-1], bounds_y[1:]):
        for left, right in zip(bounds_x[:-1], bounds_x[1:]):
            tile = rolled[top:bottom, left:right]
            with tf.GradientTape() as tape:
                tape.watch(tile)
                loss = dream.calc_loss(tile, model)
            tile_gradients = tape.gradient(loss, tile).numpy()
            if per_tile:
                tile_gradients = tile_gradients / (tile_gradients.std() + 1e-8)
            gradients[top:bottom, left:right] = tile_gradients
    gradients = np.roll(gradients, tuple(int(s) for s in unroll_by), axis=(0, 1))
    if normalise:
        gradients = gradients / (gradients.std() + 1e-8)
    return gradients


def _tiled_hint(result: np.ndarray, expected: np.ndarray, img: Any, model: Any, tile_size: int,
                shift: np.ndarray, bounds: Sequence[Sequence[int]]) -> str:
    """Recognise a wrong tiled gradient by the slip that makes it (``bounds``: tile_bounds of each side)."""
    height, width = (int(side) for side in img.shape[:2])
    # (Some pixels get no gradient anyway: a strided "valid" convolution can leave out a tile's last row.)
    unused = np.mean(np.all(result == 0, axis=-1)) - np.mean(np.all(expected == 0, axis=-1))
    if unused > 0.02:
        return (f"{unused:.0%} of the pixels got no gradient at all: a tile was skipped (the tutorial's "
                "version skips the last row and column of tiles). Loop over every tile, "
                "zip(bounds[:-1], bounds[1:]), in both directions.")
    full_y = list(range(0, height, tile_size)) + [height]
    full_x = list(range(0, width, tile_size)) + [width]

    def slip(hint: str, roll_by: Sequence[int] = shift, unroll_by: Sequence[int] = -shift,
             bounds: Sequence[Sequence[int]] = bounds, **options: bool) -> tuple[np.ndarray, str]:
        return _tiled_reference(img, model, *bounds, roll_by, unroll_by, **options), hint

    slips = [
        slip("The gradient was not rolled back: it belongs to the rolled picture. Undo the shift: "
             "tf.roll(gradients, shift=-shift, axis=[0, 1]).", unroll_by=(0, 0)),
        slip("The gradient was rolled by +shift a second time instead of back: use shift=-shift.", unroll_by=shift),
        slip("The picture was rolled twice (roll once, with roll(img, tile_size)) and rolled back once.",
             roll_by=2 * shift),
        slip("The tiles were cut from the unrolled picture: cut them from img_rolled, the picture "
             "roll(img, tile_size) returns.", roll_by=(0, 0), unroll_by=(0, 0)),
        slip("Each tile's gradient was normalised on its own: gather all tiles first, then divide the whole gradient "
             "by its standard deviation (+ 1e-8) once, so strong and weak tiles keep their proportions.", per_tile=True),
        slip("The gradient was not normalised: divide it by tf.math.reduce_std(gradients) + 1e-8 at the end.",
             normalise=False),
        slip("Your tiles are full tiles and a short rest; use tile_bounds (near-equal tiles, as few as possible) "
             "for both sides.", bounds=(full_y, full_x)),
        slip("The gradient was taken over the whole picture at once: cut it into tiles with tile_bounds and take "
             "one GradientTape per tile.", bounds=([0, height], [0, width])),
    ]
    return first_slip(result, expected, slips, tolerance=_TOLERANCE, otherwise=(
        "Roll the picture with roll(img, tile_size); for every tile of tile_bounds (both sides), take the "
        "gradient of calc_loss(tile, model) with its own GradientTape; put the tiles' gradients together "
        "in place; roll back by -shift; divide by the standard deviation + 1e-8."))


def check_tiled_gradients(student_tiled_gradients: Callable) -> None:
    """Lesson 06: ``tiled_gradients(img, model, tile_size, roll)`` must roll once with ``roll(img, tile_size)``,
    take ``calc_loss``'s gradient over every tile of ``tile_bounds``, roll it back and normalise the whole:
    ``tiles.TiledGradients``'s numbers with the same shift, on a small model (2x3 tiles, and one tile)."""
    model = small_dream_model()
    for shape, tile_size in [((96, 144), 64), ((40, 56), 64)]:
        # Contrast growing to the right: tiles of unequal strength, so normalising each on its own shows.
        img = tf.random.stateless_uniform((*shape, 3), seed=(3, shape[0]), minval=-1, maxval=1) * tf.linspace(
            0.1, 1.0, shape[1])[None, :, None]
        # The shift tiles.TiledGradients(..., seed=_SEED) draws first; the reference is its computation, run
        # eagerly as the student's function is (tests check it equals the library's compiled one).
        shift = tf.random.Generator.from_seed(_SEED).uniform([2], -tile_size, tile_size, dtype=tf.int32).numpy()
        bounds = [tiles.tile_bounds(side, tile_size).numpy().tolist() for side in shape]
        expected = _tiled_reference(img, model, *bounds, shift, -shift)
        call = f"tiled_gradients(img of {shape[0]}x{shape[1]}, model, tile_size={tile_size}, roll)"
        calls = []  # the maxroll of each call of roll, a stand-in for random_roll that always shifts by `shift`

        def roll(picture: Any, maxroll: Any, shift: np.ndarray = shift) -> tuple[Any, Any]:
            calls.append(maxroll)
            return tf.constant(shift), tf.roll(picture, shift=shift, axis=[0, 1])

        answer = call_student(student_tiled_gradients, img, model, tile_size, roll, hints=[
            (Exception, r"\(None\)|NoneType|None values",
             "A tile's gradient came back None: the tape must watch the tile it differentiates. Cut the tile, "
             "then inside `with tf.GradientTape() as tape:` call tape.watch(tile) and compute calc_loss(tile, model)."),
        ])
        if not calls:
            raise ExerciseIncorrect(f"{call} never called roll: start with shift, img_rolled = roll(img, tile_size) "
                                    "and cut the tiles from img_rolled.")
        if len(calls) > 1:
            raise ExerciseIncorrect(f"{call} called roll {len(calls)} times; roll once per call (one shift), and "
                                    "roll the gradient back with tf.roll(gradients, shift=-shift, axis=[0, 1]).")
        result = expect_array(answer, call, expected.shape, "gradients", ", the picture's (no batch axis)")
        if first_slip(result, expected, [], tolerance=_TOLERANCE) is not None:
            raise ExerciseIncorrect(f"{call} returned a different gradient (up to {np.abs(result - expected).max():.3g} "
                                    f"off, with the shift {shift.tolist()}). "
                                    f"{_tiled_hint(result, expected, img, model, tile_size, shift, bounds)}")
    passed("tiled_gradients rolls, takes every tile's gradient, rolls back and normalises: "
           "the same as tiles.TiledGradients.")
