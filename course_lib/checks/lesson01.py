"""Exercise checks of lesson 01: shrinking a photo to ``max_dim``, and the way to the model's range
and back (``normalise``, ``deprocess``) without losing a single pixel."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import PIL.Image

from course_lib import images
from course_lib.checks.common import ExerciseIncorrect, assert_close, call_student, passed, smooth_picture

__all__ = ['check_shrink', 'check_round_trip']


# --- Shrinking to max_dim ----------------------------------------------------------------------

#: (height, width, max_dim): landscape, portrait, one that fits, one exactly max_dim, square, and a thin one
#: whose short side would round to 0 px. Rounding the short side differs from truncating it in each.
_SHRINK_CASES = [(60, 90, 40), (90, 60, 40), (20, 30, 40), (40, 30, 40), (50, 50, 20), (1, 300, 100)]

#: Mean absolute difference (0..255) allowed between the student's shrunk picture and Pillow's at
#: the same size: any resampling filter (nearest, bilinear, bicubic, Lanczos, area) stays far below
#: it on the smooth test pictures, while mixed-up channels or a crop instead of a resize exceed it.
_SHRINK_TOLERANCE = 12.0


def _expected_sizes(height: int, width: int, max_dim: int) -> set[tuple[int, int]]:
    """The sizes a correct shrink may return: rounding the short side, or Pillow's thumbnail (the library's)."""
    if max(height, width) <= max_dim:
        return {(height, width)}
    scale = max_dim / max(height, width)
    rounded = (max(1, round(height * scale)), max(1, round(width * scale)))
    return {rounded, images.resize_max_dim(np.zeros((height, width, 3), np.uint8), max_dim).shape[:2]}


def _shrink_size_hint(got: tuple[int, ...], height: int, width: int, max_dim: int, expected: tuple[int, int]) -> str:
    """Name the slip that gives this wrong size, or say what the size should have been."""
    where = f"shrinking a {height}x{width} (height x width) picture to max_dim={max_dim}"
    wrong = f"{where} gave {got[0]}x{got[1]}, expected {expected[0]}x{expected[1]}"
    if max(height, width) <= max_dim:
        return (f"{wrong}: it already fits, so return it unchanged. Never enlarge: a bigger copy has no "
                "more detail, only more pixels to compute.")
    if got == (expected[1], expected[0]) and expected[0] != expected[1]:
        return (f"{wrong}: height and width are swapped. NumPy shapes are (height, width), but Pillow sizes "
                "are (width, height): resize((new_width, new_height)).")
    if got == (max_dim, max_dim):
        return f"{wrong}: the picture was squashed into a square. Keep the aspect ratio: scale both sides by the same factor."
    if max(got) > max_dim:
        return (f"{wrong}: the longer side is still over max_dim. Compute the scale from the longer side, "
                "max_dim / max(height, width), not always from the width (this picture is "
                f"{'taller than wide' if height > width else 'wider than tall'}).")
    scale = max_dim / max(height, width)
    truncated = (max(1, int(height * scale)), max(1, int(width * scale)))
    if got == truncated:
        return (f"{wrong}: the short side was truncated ({min(height, width) * scale:.2f} became "
                f"{min(got)}). Round it to the nearest pixel with round(...).")
    if 0 in got:
        return f"{wrong}: a side of 0 pixels is no picture. Keep at least 1 pixel: max(1, round(...))."
    return f"{wrong}: the longer side must become max_dim, and the other side keeps the aspect ratio (rounded)."


def check_shrink(student_shrink: Callable) -> None:
    """Lesson 01: ``shrink(img, max_dim)`` must shrink an RGB uint8 picture to a longer side of ``max_dim``
    (aspect kept, short side rounded, at least 1 px, never enlarged), pixels as Pillow's resize."""
    for height, width, max_dim in _SHRINK_CASES:
        picture = smooth_picture(height, width)
        original = picture.copy()
        answer = call_student(
            student_shrink, picture, max_dim,
            hints=[(ValueError, r"height and width must be > 0|must be greater than 0|positive",
                    f"Shrinking a {height}x{width} picture to max_dim={max_dim} rounds its short side to 0: "
                    "keep at least 1 pixel, max(1, round(...)).")],
        )
        if not np.array_equal(picture, original):
            raise ExerciseIncorrect("shrink changed the picture it was given; work on a copy (PIL.Image.fromarray makes one).")
        if answer is None:
            raise ExerciseIncorrect("shrink returned nothing; end the function with `return ...`.")
        if isinstance(answer, PIL.Image.Image):
            raise ExerciseIncorrect("shrink returned a PIL image; return a NumPy array: np.array(picture).")
        result = np.asarray(answer)
        if result.ndim != 3 or result.shape[2] != 3:
            raise ExerciseIncorrect(f"shrink returned shape {result.shape}; a picture has shape (height, width, 3).")
        if result.dtype != np.uint8:
            scale_hint = (" Its values lie in [0, 1] (skimage's resize does that): multiply by 255 first."
                          if np.issubdtype(result.dtype, np.floating) and result.max() <= 1.0 else "")
            raise ExerciseIncorrect(f"shrink returned {result.dtype} pixels; a photo is uint8 (0..255), like its "
                                    f"input.{scale_hint} Pillow's resize keeps uint8; otherwise end with "
                                    "np.round(x).astype(np.uint8).")
        sizes = _expected_sizes(height, width, max_dim)
        got = tuple(int(side) for side in result.shape[:2])
        if got not in sizes:
            raise ExerciseIncorrect(_shrink_size_hint(got, height, width, max_dim, min(sizes)))
        reference = np.asarray(PIL.Image.fromarray(picture).resize((got[1], got[0]), PIL.Image.Resampling.LANCZOS))
        difference = float(np.abs(result.astype(float) - reference.astype(float)).mean())
        if difference > _SHRINK_TOLERANCE:
            swapped = float(np.abs(result[..., ::-1].astype(float) - reference.astype(float)).mean())
            if swapped < _SHRINK_TOLERANCE:
                raise ExerciseIncorrect("shrink returned the right size, but red and blue are swapped: keep the channels in RGB order.")
            raise ExerciseIncorrect(f"shrink returned the right size ({got[0]}x{got[1]}) but not the whole picture "
                                    f"made smaller: its pixels differ from a resized copy by {difference:.0f} of 255 "
                                    "on average. Resize the whole picture "
                                    "(PIL.Image.fromarray(img).resize((new_width, new_height))); do not crop it.")
    passed("shrink keeps the aspect ratio, rounds the short side and never enlarges.")


# --- normalise and deprocess -------------------------------------------------------------------


def _pixel_ramp() -> np.ndarray:
    """A small uint8 test picture holding every value 0..255 in each channel (channels differ)."""
    ramp = np.arange(256, dtype=np.uint8).reshape(8, 32)
    return np.stack([ramp, ramp[::-1], np.roll(ramp, 7, axis=1)], axis=-1)


def _verify_normalise(student_normalise: Callable) -> None:
    """Raise unless ``normalise`` maps uint8 0..255 to float32 -1..1."""
    picture = _pixel_ramp()
    answer = np.asarray(call_student(
        student_normalise, picture.copy(),
        hints=[(TypeError, r"Cannot cast ufunc|casting rule",
                "A uint8 array cannot hold fractions, so it cannot be divided in place (/=): "
                "convert first, e.g. x = img.astype(np.float32), then compute with x.")],
    ))
    if answer.shape != picture.shape:
        raise ExerciseIncorrect(f"normalise returned shape {answer.shape}; it must keep the image's shape {picture.shape}.")
    if not np.issubdtype(answer.dtype, np.floating):
        raise ExerciseIncorrect(f"normalise returned {answer.dtype} values; the network needs floating-point numbers. "
                                "Convert first, e.g. img.astype(np.float32).")
    if answer.dtype != np.float32:
        raise ExerciseIncorrect(f"normalise returned {answer.dtype} values; the task asks for float32. NumPy's default "
                                "is float64 (img / 127.5 on a uint8 array gives float64), but the network computes in "
                                "float32: the compiled dream step of lesson 04 accepts only float32 images, and "
                                "adding a float32 result to a float64 image fails. Convert first: "
                                "img.astype(np.float32) / 127.5 - 1.")
    at = {value: float(answer.reshape(-1, 3)[value, 0]) for value in (0, 128, 255)}  # red holds 0..255 in order
    expected = {value: value / 127.5 - 1 for value in at}
    if at[0] > 0:
        raise ExerciseIncorrect(f"normalise made pixel 0 into {at[0]:.3f} (expected -1): subtracting from uint8 wraps "
                                "around (0 - 128 gives 128 in uint8). Convert to float32 before any arithmetic.")
    if answer.min() >= -1e-6 and answer.max() <= 1 + 1e-6:
        raise ExerciseIncorrect(f"normalise returned values from {answer.min():.2f} to {answer.max():.2f}: that is the "
                                "range [0, 1]. The network expects [-1, 1]: 0 must become -1 and 255 must become 1.")
    if not all(abs(at[value] - expected[value]) < 1e-5 for value in at):
        raise ExerciseIncorrect("normalise gave " + ", ".join(f"{value} -> {at[value]:.4f}" for value in at)
                                + "; expected " + ", ".join(f"{value} -> {expected[value]:.4f}" for value in at)
                                + ". The formula is x / 127.5 - 1.")
    assert_close(answer, images.to_model_range(picture), "normalise(img)", atol=1e-5)


def _verify_deprocess(student_deprocess: Callable) -> None:
    """Raise unless ``deprocess`` maps [-1, 1] to uint8 0..255, rounded, and clips values outside."""
    picture = _pixel_ramp()
    # The exact model-range values of every pixel, values between them (as a dream makes), and
    # values a little outside [-1, 1] (a step can overshoot before it is clipped).
    between = np.linspace(-1, 1, 8 * 32 * 3, dtype=np.float32).reshape(picture.shape)
    outside = np.linspace(-1.4, 1.4, 8 * 32 * 3, dtype=np.float32).reshape(picture.shape)
    for values in (images.to_model_range(picture), between, outside):
        answer = np.asarray(call_student(student_deprocess, values.copy()))
        if answer.dtype != np.uint8:
            raise ExerciseIncorrect(f"deprocess returned {answer.dtype} values; an image to show needs uint8. "
                                    "End with .astype(np.uint8) (after rounding).")
        expected = images.from_model_range(values)
        if answer.shape != expected.shape:
            raise ExerciseIncorrect(f"deprocess returned shape {answer.shape}; it must keep the shape {expected.shape}.")
        if (answer[values > 1] != 255).any() or (answer[values < -1] != 0).any():  # (False where there are none)
            raise ExerciseIncorrect("deprocess turned values above 1 into dark pixels (or values below -1 into bright "
                                    "ones): uint8 wraps around, 280 becomes 24. Clip before converting: np.clip(x, "
                                    "-1, 1) first, or np.clip(pixels, 0, 255) before .astype(np.uint8).")
        difference = np.abs(answer.astype(int) - expected.astype(int))
        if difference.max() == 1:
            raise ExerciseIncorrect(f"{int(np.count_nonzero(difference))} pixels are off by one: round before "
                                    "converting to uint8 (np.round), because converting 254.99998 truncates it to 254.")
        if difference.max() > 1:  # say what it makes of -1, 0 and 1 (expected 0, 128, 255)
            got = np.asarray(call_student(student_deprocess, np.array([[[-1.0, 0.0, 1.0]]], np.float32))).reshape(-1)
            raise ExerciseIncorrect(f"deprocess differs from the expected pixels: it gave -1 -> {got[0]}, 0 -> {got[1]}, "
                                    f"1 -> {got[2]}; expected -1 -> 0, 0 -> 128, 1 -> 255. Undo normalise step by step: "
                                    "add 1, then multiply by 127.5.")


def check_round_trip(student_normalise: Callable, student_deprocess: Callable) -> None:
    """Lesson 01: ``normalise`` (uint8 -> float32 in [-1, 1]) and ``deprocess`` (back, rounded, clipped)
    must each be right, and ``deprocess(normalise(img))`` must give back every pixel exactly."""
    _verify_normalise(student_normalise)
    _verify_deprocess(student_deprocess)
    picture = _pixel_ramp()
    back = call_student(student_deprocess, call_student(student_normalise, picture.copy()))
    changed = int(np.count_nonzero(np.asarray(back) != picture))
    if changed:
        raise ExerciseIncorrect(f"deprocess(normalise(img)) changed {changed} of {picture.size} values; it must give back every pixel.")
    passed("normalise and deprocess go to [-1, 1] and back without changing a pixel.")
