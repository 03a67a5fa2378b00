"""Exercise checks of lesson 10: the guided objective and the zoom step, against :mod:`course_lib.beyond`."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from course_lib import beyond
from course_lib.checks.common import (ExerciseIncorrect, assert_close, call_student, expect_number, first_slip,
                                      last_line, passed)

__all__ = ["check_guided_loss", "check_zoom_step"]

# --- Exercise 1: the guided objective -------------------------------------------------------------

_MATMUL_HINT = ("X has one row per dream position and G one row per guide position, both with `channels` "
                "columns: their dot products are X times G transposed, tf.matmul(x, g, transpose_b=True), "
                "a (dream positions, guide positions) matrix.")
_AXIS_HINT = ("Each *dream* position needs its best guide position: take the argmax (or max) over axis=1, the guide "
              "positions, of the (dream positions, guide positions) matrix; gather the matches from the guide's rows.")
_LOSS_HINTS = [
    (Exception, r"Matrix size-incompatible", _MATMUL_HINT),
    (Exception, r"compatible batch dimensions", "Reshape both activations to (positions, channels) first: "
                                                "tf.reshape(features, (-1, channels)). " + _MATMUL_HINT),
    (Exception, r"indices\[\d+\] = \d+ is not in", _AXIS_HINT),
    (Exception, r"Incompatible shapes", "The matched guide vectors must line up with the dream's rows X, one per "
                                        "dream position: take the argmax over axis=1 of the (dream positions, guide "
                                        "positions) matrix, gather those rows of G (tf.gather(g, best)) and multiply "
                                        "them with X."),
]


def check_guided_loss(student_loss: Callable) -> None:
    """Lesson 10: ``guided_loss(dream_features, guide_features)`` must equal :func:`course_lib.beyond.guided_loss`
    (each dream position's best dot product with the guide, summed), with the matched guide vectors as its
    gradient, and trace in a ``tf.function`` of unknown height and width, as ``beyond.guided_dream`` runs it."""
    # Non-negative, like ReLU activations; 20 dream positions, 12 guide positions, 7 channels: every
    # mix-up of the three sizes raises an error or gives another number.
    dream_features = tf.random.stateless_uniform((1, 5, 4, 7), seed=(10, 1))
    guide_features = tf.random.stateless_uniform((1, 3, 4, 7), seed=(10, 2))
    with tf.GradientTape() as tape:
        tape.watch(dream_features)
        answer = call_student(student_loss, dream_features, guide_features, hints=_LOSS_HINTS)
    value = expect_number(answer, "guided_loss(dream_features, guide_features)",
                          "Sum the best dot products with tf.reduce_sum(...).")
    expected = float(beyond.guided_loss(dream_features, guide_features))
    if not math.isclose(value, expected, rel_tol=1e-4):
        _explain_wrong_value(value, expected, dream_features.numpy(), guide_features.numpy())
    # Its gradient: the dream climbs it.
    gradient = tape.gradient(answer, dream_features) if isinstance(answer, (tf.Tensor, tf.Variable)) else None
    if gradient is None:
        raise ExerciseIncorrect(
            "The value is right but TensorFlow cannot differentiate it: the dream needs the gradient. "
            "Keep every step in TensorFlow (tf.reshape, tf.matmul, tf.argmax, tf.gather, tf.reduce_sum); no "
            ".numpy(), no NumPy functions, no tf.stop_gradient on the dream's features.")
    with tf.GradientTape() as reference:
        reference.watch(dream_features)
        reference_loss = beyond.guided_loss(dream_features, guide_features)
    assert_close(gradient, reference.gradient(reference_loss, dream_features),
                 "the gradient of guided_loss with respect to the dream's features (it should be each "
                 "position's matched guide vector)", atol=1e-5)
    # Run as guided_dream does: in a tf.function with unknown height and width.
    spec = tf.TensorSpec([1, None, None, dream_features.shape[-1]], tf.float32)
    traced = tf.function(lambda x, g: student_loss(x, g), input_signature=(spec, spec))
    try:
        value = float(traced(dream_features, guide_features))
    except Exception as error:  # noqa: BLE001 - any failure while tracing gets the same advice
        raise ExerciseIncorrect(
            f"guided_loss works on ordinary tensors but fails inside tf.function, where guided_dream runs it "
            f"({last_line(error)}). While TensorFlow traces, the height and width are unknown "
            "(None): reshape with -1 for the positions, tf.reshape(features, (-1, channels)), and use "
            "TensorFlow operations only (no .numpy(), no NumPy functions).") from None
    if not math.isclose(value, expected, rel_tol=1e-4):
        raise ExerciseIncorrect(f"Inside tf.function guided_loss gives {value:.5g}, outside {expected:.5g}: "
                                "use only TensorFlow operations on the features.")
    passed("guided_loss sums each dream position's best dot product with the guide; its gradient is "
           "the matched guide features.")


def _explain_wrong_value(value: float, expected: float, x4: np.ndarray, g4: np.ndarray) -> None:
    """Name the slip whose result the student's value equals, else say what was expected."""
    x = x4.reshape(-1, x4.shape[-1]).astype(np.float64)
    g = g4.reshape(-1, g4.shape[-1]).astype(np.float64)
    dots = x @ g.T
    slips = [
        (float(x4.mean()), "This is the plain dream's objective, the mean activation. The guided one compares "
                           "the dream with the guide: the dot products X G^T, the best one per dream position, summed."),
        (float(dots.max(axis=0).sum()), "You took, for each *guide* position, its best dream position (axis=0). "
                                        + _AXIS_HINT),
        (float(dots.max(axis=1).mean()), "You averaged the best dot products; sum them (tf.reduce_sum), so the "
                                         "gradient at each position is the matched guide vector itself."),
        (float(dots.sum()), "You summed *every* dot product: every guide feature pulls every position. Keep only "
                            "the best guide position for each dream position (max or argmax over axis=1)."),
        (float(dots.mean()), "You averaged every dot product. Keep only the best one for each dream position "
                             "(max or argmax over axis=1) and sum those."),
        (float(dots.max()), "That is the single largest dot product. Take the best one for *each* dream position "
                            "(over axis=1) and sum them."),
        (float((x * x[dots.argmax(axis=1)]).sum()), "You gathered the matches from the dream's own rows: "
                                                    "gather them from the guide's, tf.gather(g, best)."),
        (float((x * x).sum()), "You matched the dream with itself: the matched rows come from the guide's features."),
        (float((x @ x.T).max(axis=1).sum()), "You compared the dream with itself: G holds the *guide's* features, "
                                             "tf.reshape(guide_features, (-1, channels))."),
        (float(dots.min(axis=1).sum()), "You took each dream position's *worst* match (min or argmin): take the "
                                        "largest dot product, tf.argmax or tf.reduce_max."),
        (-expected, "The sign is flipped: the dream climbs this loss (gradient ascent), so return the sum itself, "
                    "not its negative."),
    ]
    hint = first_slip(value, expected, slips, tolerance=1e-4, otherwise=(
        "On small random features: reshape both to (positions, channels), take X G^T, the max over axis=1 (each "
        "dream position's best guide match), and sum."))
    raise ExerciseIncorrect(f"guided_loss returned {value:.5g}, expected {expected:.5g}. {hint}")


# --- Exercise 2: the zoom step --------------------------------------------------------------------

#: The check's cases: (height, width), zoom, the zoom point (y, x), seed. Off-centre points and
#: unequal sides tell a box centred on the point, a mirrored point or swapped axes from the right box.
_ZOOM_CASES = [((30, 40), 1.25, (0.3, 0.8), (20, 1)), ((27, 41), 1.5, (0.75, 0.2), (20, 2)),
               ((36, 24), 1.1, (0.5, 0.5), (20, 3))]
_ZOOM_HINTS = [
    (Exception, r"(?i)must be (1|2)-D|must have rank|shape must be rank", "Give crop_and_resize a batch and a list of "
     "boxes: tf.image.crop_and_resize(img[None], [[y1, x1, y2, x2]], [0], (height, width))[0]."),
    (TypeError, r"slice indices must be integers|valid indices", "No slicing needed: crop_and_resize takes the box as "
     "fractions of the image, so its edges need not be whole pixels."),
]


def _box_zoom(img: Any, box: list[float]) -> np.ndarray:
    size = (int(img.shape[0]), int(img.shape[1]))
    return tf.image.crop_and_resize(tf.convert_to_tensor(img, tf.float32)[None], [box], [0], size)[0].numpy()


def _pixel_crop(img: Any, box: list[float]) -> np.ndarray:
    """The same box cut at whole pixels (the course's old zoom), then resized back."""
    height, width = int(img.shape[0]), int(img.shape[1])
    top, left = round(box[0] * height), round(box[1] * width)
    rows, columns = max(1, round((box[2] - box[0]) * height)), max(1, round((box[3] - box[1]) * width))
    return tf.image.resize(img[top:top + rows, left:left + columns], (height, width)).numpy()


def _zoom_slips(img: Any, zoom: float, point: tuple[float, float]) -> list[tuple[np.ndarray, str]]:
    py, px = point
    side = 1.0 / zoom
    right = beyond.zoom_box(zoom, point)
    return [
        (_box_zoom(img, [py - side / 2, px - side / 2, py + side / 2, px + side / 2]),
         "the box is centred on the point, so the point moves to the middle of the frame and the film drifts "
         "towards it. A zoom towards the point keeps it in place: the box starts at y1 = py - py / zoom (and x1 "
         "likewise), so the part above the point, py / zoom, grows back to py."),
        (_box_zoom(img, beyond.zoom_box(zoom)), "the box is the centre one whatever the point: place it so that "
         "`point` stays put, y1 = py * (1 - 1 / zoom), x1 = px * (1 - 1 / zoom)."),
        (_box_zoom(img, [py * (1 - zoom), px * (1 - zoom), py * (1 - zoom) + zoom, px * (1 - zoom) + zoom]),
         "that zooms OUT (a box of zoom times the image, padded with zeros): a zoom > 1 keeps a smaller box, "
         "1 / zoom of each side."),
        (_box_zoom(img, [right[1], right[0], right[3], right[2]]), "the box has x and y swapped: "
         "tf.image.crop_and_resize takes [y1, x1, y2, x2], rows first, and point is (y, x)."),
        (_box_zoom(img, beyond.zoom_box(zoom, (1 - py, 1 - px))),
         "the point was measured from the bottom and right: py is a fraction from the TOP (0 the first row), px "
         "from the LEFT."),
        (_pixel_crop(img, right), "the crop was cut at whole pixels: rounding moves the zoom point by up to half a "
         "pixel at every frame, and every later zoom enlarges that error, so the film drifts. Keep the box's "
         "fractional edges: tf.image.crop_and_resize(img[None], [box], [0], (height, width))[0]."),
        (np.asarray(img, np.float64), "the image came back unchanged: keep the box and resize it to the full size."),
    ]


def check_zoom_step(student_zoom: Callable) -> None:
    """Lesson 10: ``zoom_step(img, zoom, point)`` must zoom by ``zoom`` towards ``point`` ((y, x) fractions),
    keeping it in place, as :func:`course_lib.beyond.zoom_in`: the box ``[y1, x1, y2, x2]``, 1/zoom of each side
    with ``y1 = py * (1 - 1 / zoom)``, resized back with ``tf.image.crop_and_resize`` (slips: :func:`_zoom_slips`)."""
    for (height, width), zoom, point, seed in _ZOOM_CASES:
        img = tf.random.stateless_uniform((height, width, 3), seed=seed, minval=-1, maxval=1)
        call = f"zoom_step(<a {height}x{width} image>, zoom={zoom}, point={point})"
        answer = call_student(student_zoom, img, zoom, point, hints=_ZOOM_HINTS)
        if answer is None:
            raise ExerciseIncorrect(f"{call} returned None: end with `return` and the zoomed image.")
        result = np.asarray(answer, dtype=np.float64)
        got, shape = result.shape, tuple(img.shape)
        if got != shape:
            if len(got) == 4 and got[1:] == shape:
                raise ExerciseIncorrect(f"{call} returned shape {got}: take the one image out of the batch, [0]; "
                                        f"the zoom keeps the image's shape {shape}.")
            if got[:2] == shape[1::-1]:
                raise ExerciseIncorrect(f"{call} returned shape {got}, expected {shape}: crop_size is (height, "
                                        "width), in that order.")
            raise ExerciseIncorrect(f"{call} returned shape {got}; a zoom must keep the image's shape {shape}: "
                                    "crop_size=(height, width).")
        expected = beyond.zoom_in(img, zoom, point).numpy()
        hint = first_slip(result, expected, _zoom_slips(img, zoom, point), start=img.numpy(), tolerance=1e-3,
                          otherwise="Work out the box [y1, x1, y2, x2] in fractions of the image: 1 / zoom of each "
                                    "side, with y1 = py * (1 - 1 / zoom) and x1 = px * (1 - 1 / zoom), then "
                                    "tf.image.crop_and_resize(img[None], [box], [0], (height, width))[0].")
        if hint:
            raise ExerciseIncorrect(f"{call}: {hint}")
    passed("zoom_step keeps the zoom point in place and enlarges everything else by zoom.")
