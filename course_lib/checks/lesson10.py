"""Exercise checks of lesson 10: the guided objective and the zoom step.

Both compare the student's function with :mod:`course_lib.beyond` on small random tensors, and
recognise the common slips by their effect (the value a slipped computation gives) or by the error
they raise, with a hint that names the fix.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from course_lib.checks.common import ExerciseIncorrect, assert_close, call_student, passed

__all__ = ["check_guided_loss", "check_zoom_step"]

# ---------------------------------------------------------------------------------------------
# Exercise 1: the guided objective
# ---------------------------------------------------------------------------------------------

_MATMUL_HINT = ("X has one row per dream position and G one row per guide position, both with `channels` "
                "columns: their dot products are X times G transposed, tf.matmul(x, g, transpose_b=True), "
                "a (dream positions, guide positions) matrix.")
_AXIS_HINT = ("Each *dream* position needs its best guide position: take the argmax (or max) over axis=1, "
              "the guide positions, of the (dream positions, guide positions) matrix; gather the matches "
              "from the guide's rows.")
_LOSS_HINTS = [
    (r"Matrix size-incompatible", _MATMUL_HINT),
    (r"compatible batch dimensions", "Reshape both activations to (positions, channels) first: "
                                     "tf.reshape(features, (-1, channels)). " + _MATMUL_HINT),
    (r"indices\[\d+\] = \d+ is not in", _AXIS_HINT),
    (r"Incompatible shapes", "The matched guide vectors must line up with the dream's rows X, one per dream "
                             "position: take the argmax over axis=1 of the (dream positions, guide positions) "
                             "matrix, gather those rows of G (tf.gather(g, best)) and multiply them with X."),
]


def _tensorflow_message(error: Exception) -> str:
    """The readable part of a TensorFlow error: without its ``{{function_node ...}}`` and ``[Op:...]`` wrapping."""
    text = getattr(error, "message", None) or str(error)
    text = re.sub(r"\{\{.*?\}\}\s*", "", text)
    return re.sub(r"\s*\[Op:.*$", "", text.strip(), flags=re.S)


def _call_loss(student_loss: Callable, *args: Any) -> Any:
    """Call the student's guided_loss; a TensorFlow error that a known slip raises becomes its hint."""
    import tensorflow as tf

    try:
        return call_student(student_loss, *args)
    except tf.errors.OpError as error:
        message = _tensorflow_message(error)[:200]
        for pattern, hint in _LOSS_HINTS:
            if re.search(pattern, message):
                raise ExerciseIncorrect(f"guided_loss raised {type(error).__name__} ({message}). {hint}") from None
        raise


def check_guided_loss(student_loss: Callable) -> None:
    """Lesson 10: ``guided_loss(dream_features, guide_features)`` must equal :func:`course_lib.beyond.guided_loss`:
    the sum over dream positions of the best dot product with any guide position; its gradient with
    respect to the dream's features must be the matched guide vectors; and it must trace inside a
    ``tf.function`` whose height and width are unknown, as :func:`course_lib.beyond.guided_dream` runs it.
    """
    import tensorflow as tf

    from course_lib import beyond

    # Non-negative, like ReLU activations; 20 dream positions, 12 guide positions, 7 channels: every
    # mix-up of the three sizes raises an error or gives another number.
    dream_features = tf.random.stateless_uniform((1, 5, 4, 7), seed=(10, 1))
    guide_features = tf.random.stateless_uniform((1, 3, 4, 7), seed=(10, 2))
    with tf.GradientTape() as tape:
        tape.watch(dream_features)
        answer = _call_loss(student_loss, dream_features, guide_features)
    value = _one_number(answer, "guided_loss(dream_features, guide_features)")
    expected = float(beyond.guided_loss(dream_features, guide_features))
    if not math.isclose(value, expected, rel_tol=1e-4):
        _explain_wrong_value(value, expected, dream_features.numpy(), guide_features.numpy())
    _check_gradient(tape, answer, dream_features, guide_features)
    _check_traces(student_loss, dream_features, guide_features, expected)
    passed("guided_loss sums each dream position's best dot product with the guide; its gradient is "
           "the matched guide features.")


def _one_number(answer: Any, call: str) -> float:
    if answer is None:
        raise ExerciseIncorrect(f"{call} returned None: end with `return` and the loss.")
    if np.ndim(answer) != 0:
        raise ExerciseIncorrect(f"{call} returned shape {tuple(np.shape(answer))}; the loss must be one number: "
                                "sum the best dot products with tf.reduce_sum(...).")
    return float(answer)


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
    for slipped, hint in slips:
        if math.isclose(value, slipped, rel_tol=1e-4):
            raise ExerciseIncorrect(f"guided_loss returned {value:.5g}, expected {expected:.5g}. {hint}")
    raise ExerciseIncorrect(f"guided_loss returned {value:.5g}, expected {expected:.5g} on small random features. "
                            "Reshape both to (positions, channels), take X G^T, the max over axis=1 (each dream "
                            "position's best guide match), and sum.")


def _check_gradient(tape: Any, answer: Any, dream_features: Any, guide_features: Any) -> None:
    import tensorflow as tf

    gradient = tape.gradient(answer, dream_features) if isinstance(answer, (tf.Tensor, tf.Variable)) else None
    if gradient is None:
        raise ExerciseIncorrect(
            "The value is right but TensorFlow cannot differentiate it: the dream needs the gradient. "
            "Keep every step in TensorFlow (tf.reshape, tf.matmul, tf.argmax, tf.gather, tf.reduce_sum); no "
            ".numpy(), no NumPy functions, no tf.stop_gradient on the dream's features.")
    channels = dream_features.shape[-1]
    x = tf.reshape(dream_features, (-1, channels))
    g = tf.reshape(guide_features, (-1, channels))
    matched = tf.gather(g, tf.argmax(tf.matmul(x, g, transpose_b=True), axis=1))
    assert_close(np.reshape(gradient.numpy(), (-1, channels)), matched.numpy(),
                 "the gradient of guided_loss with respect to the dream's features (it should be each "
                 "position's matched guide vector)", atol=1e-5)


def _check_traces(student_loss: Callable, dream_features: Any, guide_features: Any, expected: float) -> None:
    """Run the student's function as guided_dream does: in a tf.function with unknown height and width."""
    import tensorflow as tf

    channels = dream_features.shape[-1]
    spec = tf.TensorSpec([1, None, None, channels], tf.float32)
    traced = tf.function(lambda x, g: student_loss(x, g), input_signature=(spec, spec))
    try:
        value = float(traced(dream_features, guide_features))
    except Exception as error:  # noqa: BLE001 - any failure while tracing gets the same advice
        # A tracing error starts "in user code:" and ends with what went wrong: show that last line.
        lines = [line.strip() for line in _tensorflow_message(error).splitlines() if line.strip()]
        last = lines[-1][:160] if lines else type(error).__name__
        if not last.startswith(type(error).__name__):
            last = f"{type(error).__name__}: {last}"
        raise ExerciseIncorrect(
            f"guided_loss works on ordinary tensors but fails inside tf.function, where guided_dream runs it "
            f"({last}). While TensorFlow traces, the height and width are unknown "
            "(None): reshape with -1 for the positions, tf.reshape(features, (-1, channels)), and use "
            "TensorFlow operations only (no .numpy(), no NumPy functions).") from None
    if not math.isclose(value, expected, rel_tol=1e-4):
        raise ExerciseIncorrect(f"Inside tf.function guided_loss gives {value:.5g}, outside {expected:.5g}: "
                                "use only TensorFlow operations on the features.")


# ---------------------------------------------------------------------------------------------
# Exercise 2: the zoom step
# ---------------------------------------------------------------------------------------------


def _crop_resize(img: np.ndarray, top: int, height: int, left: int, width: int, method: str = "bilinear") -> np.ndarray:
    import tensorflow as tf

    crop = img[top:top + height, left:left + width]
    if crop.size == 0:
        return np.full(img.shape, np.nan)
    return tf.image.resize(crop, img.shape[:2], method=method).numpy()


def _centred_crops(side: int, zoom: float) -> set[tuple[int, int]]:
    """(start, length) of every reasonable centred crop of 1/zoom of a side: the length floored,
    rounded or ceiled, the start floored or ceiled, or ``tf.image.central_crop``'s choice."""
    crops = set()
    for length in {math.floor(side / zoom), round(side / zoom), math.ceil(side / zoom)}:
        if 1 <= length <= side:
            crops |= {((side - length) // 2, length), ((side - length + 1) // 2, length)}
    start = int((side - side / zoom) / 2)
    crops.add((start, side - 2 * start))
    return crops


def check_zoom_step(student_zoom: Callable) -> None:
    """Lesson 10: ``zoom_step(img, zoom)`` must crop the centre 1/zoom of each side and resize it back
    to the image's size with ``tf.image.resize`` (bilinear), as :func:`course_lib.beyond.zoom_in` does;
    any rounding of the crop (floor, round, ceil, ``tf.image.central_crop``) is accepted.
    """
    import tensorflow as tf

    cases = [((30, 40), 1.25, (20, 1)), ((27, 41), 1.1, (20, 2)), ((36, 24), 1.5, (20, 3))]
    for (height, width), zoom, seed in cases:
        img = tf.random.stateless_uniform((height, width, 3), seed=seed, minval=-1, maxval=1)
        call = f"zoom_step(<a {height}x{width} image>, zoom={zoom})"
        answer = call_student(student_zoom, img, zoom, hints=[
            (TypeError, r"valid indices|slice indices must be integers",
             "Slices need whole numbers: round the crop's sides (round(height / zoom)) and halve the margins "
             "with // 2, not / 2."),
            (Exception, r"must be (1|4)-D|must have (3|4) dimensions|rank",
             "Resize with tf.image.resize(crop, (height, width)): a (height, width) pair, no batch axis needed."),
        ])
        if answer is None:
            raise ExerciseIncorrect(f"{call} returned None: end with `return` and the zoomed image.")
        result = np.asarray(answer, dtype=np.float64)
        pixels = img.numpy()
        if result.shape != pixels.shape:
            _explain_wrong_shape(call, result.shape, pixels.shape, zoom)
        rows, columns = _centred_crops(height, zoom), _centred_crops(width, zoom)
        if any(np.allclose(result, _crop_resize(pixels, top, h, left, w), atol=1e-4)
               for top, h in rows for left, w in columns):
            continue
        _explain_wrong_zoom(call, result, pixels, zoom)
    passed("zoom_step crops the centre 1/zoom of each side and resizes it back to the same size.")


def _explain_wrong_shape(call: str, got: tuple, expected: tuple, zoom: float) -> None:
    if len(got) == 4 and got[1:] == expected:
        raise ExerciseIncorrect(f"{call} returned shape {got}: drop the batch axis, the zoom keeps the image's shape {expected}.")
    if got[:2] == expected[1::-1]:
        raise ExerciseIncorrect(f"{call} returned shape {got}, expected {expected}: tf.image.resize takes "
                                "(height, width), in that order.")
    if len(got) == 3 and got[0] < expected[0]:
        raise ExerciseIncorrect(f"{call} returned shape {got}, expected {expected}: that is the crop. Resize it "
                                "back to the image's size with tf.image.resize(crop, (height, width)).")
    raise ExerciseIncorrect(f"{call} returned shape {got}; a zoom must keep the image's shape {expected}.")


def _explain_wrong_zoom(call: str, result: np.ndarray, pixels: np.ndarray, zoom: float) -> None:
    """Say which slip gives the student's picture: no zoom, an off-centre or square crop, another resize."""
    height, width = pixels.shape[:2]
    crop_h, crop_w = round(height / zoom), round(width / zoom)
    top, left = (height - crop_h) // 2, (width - crop_w) // 2

    def same(expected: np.ndarray) -> bool:
        return expected.shape == result.shape and np.allclose(result, expected, atol=1e-4)

    if same(pixels):
        raise ExerciseIncorrect(f"{call} gave back the image unchanged: crop the centre 1/zoom of each side "
                                f"(here {crop_h}x{crop_w} of {height}x{width}) before resizing.")
    corners = [(0, 0), (height - crop_h, width - crop_w), (0, width - crop_w), (height - crop_h, 0),
               (top, 0), (0, left)]
    if any(same(_crop_resize(pixels, t, crop_h, l, crop_w)) for t, l in corners):
        raise ExerciseIncorrect(f"{call} zooms into an off-centre crop: frame after frame the zoom would drift "
                                f"towards that side. Start the crop at top = (height - crop_height) // 2 and "
                                f"left = (width - crop_width) // 2.")
    square = round(min(height, width) / zoom)
    if any(same(_crop_resize(pixels, (height - square) // 2, square, (width - square) // 2, square, m))
           for m in ("bilinear", "nearest")):
        raise ExerciseIncorrect(f"{call} crops a square and stretches it: crop height / zoom by width / zoom, "
                                "so the picture keeps its aspect ratio.")
    for method in ("nearest", "bicubic", "area", "lanczos3"):
        if same(_crop_resize(pixels, top, crop_h, left, crop_w, method)):
            raise ExerciseIncorrect(f"{call} resizes with method {method!r}; use tf.image.resize's default, "
                                    "bilinear (it blends neighbouring pixels, like the original's order=1).")
    # Multiplying makes the crop larger than the image: its start is negative, so the slice keeps a
    # few rows and columns at the far edges (Python's slicing), and the result looks like noise.
    big_h, big_w = round(height * zoom), round(width * zoom)
    if same(_crop_resize(pixels, (height - big_h) // 2, big_h, (width - big_w) // 2, big_w)):
        raise ExerciseIncorrect(f"{call}: divide each side by zoom (a zoom > 1 keeps a *smaller* crop), not multiply.")
    raise ExerciseIncorrect(f"{call} is not the centre crop of {crop_h}x{crop_w} px resized back to {height}x{width} "
                            "(bilinear). Crop img[top:top + crop_height, left:left + crop_width] with top = "
                            "(height - crop_height) // 2 and left likewise, then tf.image.resize(crop, (height, width)).")
