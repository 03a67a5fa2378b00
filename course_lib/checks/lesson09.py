"""Exercise checks of lesson 09: the Laplacian-pyramid normalisation and MATLAB's pyramid loop."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from course_lib.checks.common import ExerciseIncorrect, assert_close, call_student, passed

__all__ = ['check_laplacian_normalize', 'check_pyramid_ascent']

#: Errors that slips in the band normalisation raise, with what to do instead.
_NORMALIZE_HINTS = [
    (TypeError, r"'list' object|unsupported operand type.*list", "a list of bands cannot be divided or added: "
     "work band by band, e.g. [band / rms(band) for band in bands]."),
    (Exception, r"Shapes of all inputs must match", "the bands have different sizes, so TensorFlow cannot make "
     "one tensor of the list: work band by band, e.g. [band / rms(band) for band in bands]."),
    (Exception, r"(?i)incompatible shapes|dimensions must be equal", "an RMS of shape (N,) cannot divide a band of "
     "shape (N, h, w, 3): keep the reduced axes, tf.reduce_mean(..., axis=[1, 2, 3], keepdims=True)."),
]
#: Errors that slips in the pyramid loop raise, with what to do instead.
_LOOP_HINTS = [
    (Exception, r"(?i)int32 tensor|expected int32|must be int|integer", "sizes and shifts must be whole numbers: "
     "round() the pyramid sizes, round(H / scale ** (levels - 1 - k)), and roll by the shift random_shift() returns."),
    (Exception, r"(?i)incompatible shapes|dimensions must be equal", "two tensors of different sizes were combined: "
     "add the step to the image of the same level, and roll the gradient back by the shift of the same step."),
]


def _unbalanced_gradient(seed: int, shape: tuple[int, int, int, int]) -> np.ndarray:
    """A test gradient like a real one (fine detail dominates), but with two images of very
    different strength, colour channels of different strength and a non-zero mean, so that each
    wrong way of computing the RMS gives a different answer."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    count, height, width, _ = shape
    coarse = tf.image.resize(rng.normal(size=(count, 6, 6, 3)).astype(np.float32) * 0.05, [height, width]).numpy()
    fine = rng.normal(size=shape).astype(np.float32) * 20.0
    image_strength = np.array([1.0, 30.0, 0.2][:count], np.float32)[:, None, None, None]
    channel_strength = np.array([1.0, 0.3, 3.0], np.float32)
    return ((coarse + fine + 0.4) * image_strength * channel_strength).astype(np.float32)


def _normalize_with(gradient, levels: int, rms: Callable, skip_low_pass: bool = False):
    from course_lib import classviz

    bands = classviz.laplacian_split(gradient, levels)
    normalized = [band if (skip_low_pass and index == 0) else band / rms(band) for index, band in enumerate(bands)]
    return classviz.laplacian_merge(normalized).numpy()


def check_laplacian_normalize(student_laplacian_normalize: Callable) -> None:
    """Lesson 09: ``my_laplacian_normalize(gradient, levels=4)`` splits a batch of gradients into
    Laplacian bands, divides each band of each image by its own root mean square, and merges them.

    The test gradient has two images of very different strength, colour channels of different
    strength and a non-zero mean, so each common slip (one RMS for the batch, per colour
    channel, the standard deviation, the mean square, no split, the low-pass band left out,
    the levels argument ignored) gives a recognisably different answer and its own hint.
    """
    import tensorflow as tf

    from course_lib import classviz

    gradient = tf.constant(_unbalanced_gradient(9, (2, 48, 40, 3)))
    expected = classviz.laplacian_normalize(gradient, 4).numpy()
    answer = call_student(student_laplacian_normalize, gradient, 4, hints=_NORMALIZE_HINTS)
    if isinstance(answer, (list, tuple)):
        raise ExerciseIncorrect(
            f"my_laplacian_normalize returned a {type(answer).__name__} of {len(answer)} items (the bands?); "
            "merge the normalised bands back into one gradient with classviz.laplacian_merge(bands)."
        )
    if answer is None:
        raise ExerciseIncorrect("my_laplacian_normalize returned None: end it with `return classviz.laplacian_merge(...)`.")
    actual = np.asarray(answer, dtype=np.float64)
    if actual.shape != expected.shape:
        raise ExerciseIncorrect(
            f"my_laplacian_normalize returned shape {actual.shape}; expected the gradient's shape {expected.shape}."
        )
    if not np.allclose(actual, expected, atol=1e-3, rtol=1e-3):
        _diagnose_normalize(actual, gradient)
    again = np.asarray(call_student(student_laplacian_normalize, gradient, 3, hints=_NORMALIZE_HINTS),
                       dtype=np.float64)
    if not np.allclose(again, classviz.laplacian_normalize(gradient, 3).numpy(), atol=1e-3, rtol=1e-3):
        raise ExerciseIncorrect(
            "my_laplacian_normalize(gradient, 3) gave the same kind of answer as with 4 levels: "
            "pass `levels` on, classviz.laplacian_split(gradient, levels), instead of a fixed number."
        )
    passed("each Laplacian band of each image gets unit RMS before the bands are merged back.")


def _diagnose_normalize(actual: np.ndarray, gradient) -> None:
    import tensorflow as tf

    def close(candidate) -> bool:
        return np.allclose(actual, np.asarray(candidate), atol=1e-3, rtol=1e-3)

    def rms(axis):
        return lambda band: tf.sqrt(tf.reduce_mean(tf.square(band), axis=axis, keepdims=True))

    raw = gradient.numpy()
    slips = [
        (_normalize_with(gradient, 4, rms(None)),
         "you normalised over the whole batch; each image's band needs its own RMS: reduce over axes [1, 2, 3] "
         "(height, width, colour) with keepdims=True, not over all axes."),
        (_normalize_with(gradient, 4, rms([1, 2])),
         "you gave each colour channel its own RMS; one RMS per image and band: reduce over axes [1, 2, 3], "
         "not [1, 2]."),
        (_normalize_with(gradient, 4, lambda band: tf.math.reduce_std(band, axis=[1, 2, 3], keepdims=True)),
         "you divided by the standard deviation, which first subtracts the mean (the low-pass band has one): "
         "divide by the root mean square, tf.sqrt(tf.reduce_mean(tf.square(band), axis=[1, 2, 3], keepdims=True))."),
        (_normalize_with(gradient, 4, lambda band: tf.reduce_mean(tf.square(band), axis=[1, 2, 3], keepdims=True)),
         "you divided by the mean square; the RMS is its square root: tf.sqrt(tf.reduce_mean(tf.square(band), ...))."),
        (_normalize_with(gradient, 4, lambda band: tf.reduce_mean(tf.abs(band), axis=[1, 2, 3], keepdims=True)),
         "you divided by the mean absolute value; the RMS is tf.sqrt(tf.reduce_mean(tf.square(band), ...))."),
        (_normalize_with(gradient, 4, rms([1, 2, 3]), skip_low_pass=True),
         "the low-pass rest (bands[0], the first in the list) was not normalised: every band gets unit RMS."),
        (raw / np.sqrt(np.mean(raw ** 2, axis=(1, 2, 3), keepdims=True)),
         "you divided the whole gradient by one RMS per image; split it into bands first and divide EACH band "
         "by its own RMS, so that the weak coarse bands are strengthened."),
        (raw / np.sqrt(np.mean(raw ** 2)),
         "you divided the whole gradient by one RMS; split it into bands first and divide EACH band of each "
         "image by its own RMS."),
        (_normalize_with(gradient, 4, lambda band: 1.0 / tf.sqrt(tf.reduce_mean(tf.square(band), axis=[1, 2, 3],
                                                                                keepdims=True))),
         "you multiplied each band by its RMS; divide by it, band / rms."),
        (raw, "the gradient came back unchanged: divide each band by its RMS before merging."),
    ]
    for candidate, hint in slips:
        if close(candidate):
            raise ExerciseIncorrect(f"my_laplacian_normalize: {hint}")
    from course_lib import classviz

    assert_close(actual, classviz.laplacian_normalize(gradient, 4).numpy(), "laplacian_normalize(gradient, levels=4)",
                 atol=1e-3, rtol=1e-3)


# --- MATLAB's pyramid loop ---------------------------------------------------------------------------

#: The check's pyramid: 3 levels of a 40x48 start, scale 1.5 -> 18x21, 27x32, 40x48; 2 steps each.
_START_SHAPE = (2, 40, 48, 3)
_LEVELS, _SCALE, _ITERATIONS, _STEP = 3, 1.5, 2, 0.05
_MAX_SHIFT = 4


class _Recorder:
    """What the check hands the student's loop: a position-dependent class gradient, shifts and a
    normalisation that remember how they were called."""

    def __init__(self, normalize: Callable):
        import tensorflow as tf

        self.tf = tf
        self.inputs: list[np.ndarray] = []
        self.shifts: list[np.ndarray] = []
        self.normalized = 0
        self._normalize = normalize
        self._rng = np.random.default_rng(42)

    def pattern(self, height: int, width: int) -> np.ndarray:
        """A fixed pattern per size: the gradient depends on where a pixel is, as a network's does."""
        return np.random.default_rng(1000 * height + width).normal(size=(1, height, width, 3)).astype(np.float32)

    def gradient_of(self, image: np.ndarray) -> np.ndarray:
        return (np.tanh(2.0 * image) + self.pattern(*image.shape[1:3])).astype(np.float32)

    def class_gradient(self, image: Any):
        array = np.array(image, dtype=np.float32)
        if array.ndim != 4:
            raise ExerciseIncorrect(
                f"class_gradient was given shape {array.shape}; it takes the batch of images (N, h, w, 3) as it is."
            )
        self.inputs.append(array)
        return self.tf.constant(self.gradient_of(array))

    def random_shift(self):
        shift = self._rng.integers(-_MAX_SHIFT, _MAX_SHIFT + 1, size=2)
        while not shift.all():  # both non-zero, so a missing roll always shows
            shift = self._rng.integers(-_MAX_SHIFT, _MAX_SHIFT + 1, size=2)
        self.shifts.append(shift)
        return self.tf.constant(shift, self.tf.int32)

    def normalize(self, gradient):
        self.normalized += 1
        return self._normalize(gradient)


_STEP_RULE = ("the image after the step is not image + step_size * normalize(gradient), with the gradient taken "
              "on the image rolled by shift and rolled back by -shift.")


def _sizes(height: int, width: int, levels: int, scale: float) -> list[tuple[int, int]]:
    return [(round(height / scale ** (levels - 1 - k)), round(width / scale ** (levels - 1 - k))) for k in range(levels)]


def check_pyramid_ascent(student_pyramid_ascent: Callable) -> None:
    """Lesson 09: ``my_pyramid_ascent(class_gradient, start, random_shift, normalize, levels, scale,
    iterations, step_size)`` must do what ``classviz.pyramid_ascent`` does.

    The check calls it with recording stand-ins (a class gradient that depends on pixel
    position, so a missing jitter or a gradient not rolled back shows) and follows it step by
    step: the sizes of the levels and their order, one shift and one gradient per step, the roll
    before the gradient and the roll back after it, the normalisation, the step, and how each
    level continues from the last. The first thing that differs is named, with the fix.
    """
    import tensorflow as tf

    from course_lib import classviz

    recorder = _Recorder(lambda gradient: classviz.laplacian_normalize(gradient, 3))
    start = np.random.default_rng(7).uniform(-0.05, 0.05, size=_START_SHAPE).astype(np.float32)
    answer = call_student(student_pyramid_ascent, recorder.class_gradient, tf.constant(start), recorder.random_shift,
                          recorder.normalize, levels=_LEVELS, scale=_SCALE, iterations=_ITERATIONS, step_size=_STEP,
                          hints=_LOOP_HINTS)  # fmt: skip
    sizes = _sizes(*_START_SHAPE[1:3], _LEVELS, _SCALE)
    _check_calls(recorder, sizes)
    follow = _Follower(recorder, start, sizes)
    follow.check_steps()
    follow.check_result(answer)
    passed("the images grow through the pyramid, with a jittered, normalised gradient step at each iteration.")


def _check_calls(recorder: _Recorder, sizes: list[tuple[int, int]]) -> None:
    steps = _LEVELS * _ITERATIONS
    expected = [size for size in sizes for _ in range(_ITERATIONS)]
    seen = [tuple(array.shape[1:3]) for array in recorder.inputs]
    where = (f"(the check runs levels={_LEVELS}, scale={_SCALE}, iterations={_ITERATIONS} "
             f"on {_START_SHAPE[1]}x{_START_SHAPE[2]} images)")
    if not seen:
        raise ExerciseIncorrect(f"class_gradient was never called {where}: take its gradient at every step.")
    if len(sizes) > 1 and seen == [sizes[-1]] * _ITERATIONS + expected[:-_ITERATIONS]:
        raise ExerciseIncorrect(
            f"the first steps ran at the full size and each level's size came one level late ({_sizes_text(seen)}): "
            "resize the image at the START of each level, before its steps; the first resize shrinks the start "
            f"images to {sizes[0][0]}x{sizes[0][1]}."
        )
    if seen == expected[::-1] or (seen and seen[0] == sizes[-1] and len(set(seen)) == len(sizes)):
        raise ExerciseIncorrect(
            f"the levels came largest first: {_sizes_text(seen)}. A pyramid starts small: level k (k = 0 first) "
            f"is round(H / scale ** (levels - 1 - k)) high, so the first is {sizes[0][0]}x{sizes[0][1]} and the last "
            "the full size."
        )
    if set(seen) == {sizes[-1]} and len(seen) == steps:
        raise ExerciseIncorrect(
            f"every step ran at the full size {sizes[-1][0]}x{sizes[-1][1]}: resize the image at the start of each "
            f"level to that level's size, round(H / scale ** (levels - 1 - k)), the first {sizes[0][0]}x{sizes[0][1]}."
        )
    if len(seen) != steps:
        raise ExerciseIncorrect(
            f"class_gradient was called {_times(len(seen))} {where}; expected levels x iterations = {steps}: "
            "one gradient per step, `iterations` steps at each of the `levels` sizes."
        )
    if seen != expected:
        raise ExerciseIncorrect(
            f"the images had sizes {_sizes_text(seen)} (height x width, one per step); expected "
            f"{_sizes_text(expected)}: level k is round(H / scale ** (levels - 1 - k)) by "
            "round(W / scale ** (levels - 1 - k)), with round(), smallest first."
        )
    if len(recorder.shifts) != steps:
        raise ExerciseIncorrect(
            f"random_shift() was called {_times(len(recorder.shifts))}; call it once per step ({steps} here), "
            "just before the gradient, and roll with the shift it returns."
        )
    if recorder.normalized == 0:
        raise ExerciseIncorrect(
            "normalize was never called: step along normalize(gradient), the function passed in (the Laplacian "
            "normalisation), not the raw gradient or a function of your own choosing."
        )
    if recorder.normalized != steps:
        raise ExerciseIncorrect(f"normalize was called {_times(recorder.normalized)}; once per step ({steps}) is right.")


def _times(count: int) -> str:
    return "once" if count == 1 else f"{count} times"


def _sizes_text(sizes: list[tuple[int, int]]) -> str:
    return ", ".join(f"{h}x{w}" for h, w in sizes)


class _Follower:
    """Replays the student's loop one step at a time, from the student's own images."""

    def __init__(self, recorder: _Recorder, start: np.ndarray, sizes: list[tuple[int, int]]):
        import tensorflow as tf

        self.tf, self.recorder, self.start, self.sizes = tf, recorder, start, sizes

    def resize(self, image: np.ndarray, size, **options) -> np.ndarray:
        options = options or {"method": "bicubic", "antialias": True}
        return self.tf.image.resize(image, size, **options).numpy()

    def roll(self, image: np.ndarray, shift, axis=(1, 2)) -> np.ndarray:
        return np.roll(image, tuple(int(s) for s in shift), axis=axis)

    def step(self, image: np.ndarray, shift, *, back: int = -1, sign: float = 1.0, normalize: bool = True,
             step_size: float = _STEP) -> np.ndarray:
        gradient = self.roll(self.recorder.gradient_of(self.roll(image, shift)), back * np.asarray(shift))
        direction = self.recorder._normalize(self.tf.constant(gradient)).numpy() if normalize else gradient
        return image + sign * step_size * direction

    def check_steps(self) -> None:
        inputs, shifts = self.recorder.inputs, self.recorder.shifts
        # The first level starts from the start images, resized.
        self._check_level_start(0, self.resize(self.start, self.sizes[0]), from_start=None)
        for index in range(1, len(inputs)):
            level = index // _ITERATIONS
            previous = self.roll(inputs[index - 1], -shifts[index - 1])  # the student's image before the last step
            after = self.step(previous, shifts[index - 1])
            if index % _ITERATIONS:
                self._check_step(index, previous, after)
            else:
                self._check_level_start(index, self.resize(after, self.sizes[level]),
                                        from_start=self.resize(self.start, self.sizes[level]), previous=previous)

    def _unrolled(self, index: int) -> np.ndarray:
        return self.roll(self.recorder.inputs[index], -self.recorder.shifts[index])

    def _check_level_start(self, index: int, expected: np.ndarray, *, from_start, previous=None) -> None:
        seen, shift = self.recorder.inputs[index], self.recorder.shifts[index]
        level = index // _ITERATIONS + 1
        if np.allclose(seen, self.roll(expected, shift), atol=1e-4):
            return
        if np.allclose(seen, expected, atol=1e-4):
            raise ExerciseIncorrect(
                "class_gradient was given the image itself: roll it first, tf.roll(image, shift, axis=[1, 2]) with "
                "shift = random_shift(), so that the gradient is taken on a shifted copy (the jitter)."
            )
        if np.allclose(seen, self.roll(expected, -shift), atol=1e-4):
            raise ExerciseIncorrect(
                "the image was rolled by -shift; roll it by +shift, tf.roll(image, shift, axis=[1, 2]), and the "
                "gradient back by -shift."
            )
        if np.allclose(seen, self.roll(expected, shift, axis=(0, 1)), atol=1e-4):
            raise ExerciseIncorrect(
                "the image was rolled along axes [0, 1]; these are batches of images (N, H, W, 3): roll height "
                "and width, tf.roll(image, shift, axis=[1, 2])."
            )
        unrolled = self._unrolled(index)
        if from_start is not None and np.allclose(unrolled, from_start, atol=1e-4):
            raise ExerciseIncorrect(
                f"pyramid level {level} started again from the start images; each level continues from the "
                "previous level's image, enlarged: image = tf.image.resize(image, size, ...), not resize(start, ...)."
            )
        base = self.start if previous is None else self.step(previous, self.recorder.shifts[index - 1])
        for options, what in [({"method": "bicubic"}, "without antialias=True"),
                              ({"method": "bilinear", "antialias": True}, "bilinear"),
                              ({"method": "bilinear"}, "bilinear")]:
            if np.allclose(unrolled, self.resize(base, self.sizes[level - 1], **options), atol=1e-4):
                raise ExerciseIncorrect(
                    f"pyramid level {level} was resized {what}: use tf.image.resize(image, size, method=\"bicubic\", "
                    "antialias=True) at every level (antialias blurs before the first shrink)."
                )
        hint = None if previous is None else self._step_slip(index, previous, resize_to=self.sizes[level - 1])
        if hint:
            raise ExerciseIncorrect(f"step {index} (the last of level {level - 1}): {hint}")
        source = "the start images" if previous is None else "the previous level's images"
        height, width = self.sizes[level - 1]
        raise ExerciseIncorrect(
            f"the images at the start of pyramid level {level} are not {source}, resized to {height}x{width}: "
            "at each level do image = tf.image.resize(image, size, method=\"bicubic\", antialias=True), then the steps."
        )

    def _check_step(self, index: int, previous: np.ndarray, expected: np.ndarray) -> None:
        """The step from the student's image ``previous`` to the image seen at call ``index``."""
        if np.allclose(self._unrolled(index), expected, atol=1e-4):
            return
        hint = self._step_slip(index, previous)
        raise ExerciseIncorrect(f"step {index}: {hint or _STEP_RULE}")

    def _step_slip(self, index: int, previous: np.ndarray, resize_to=None) -> str | None:
        """Which common slip turns ``previous`` into the image seen at call ``index``, if any."""
        from course_lib.classviz import MATLAB_STEP_SIZE

        shift_before = self.recorder.shifts[index - 1]
        seen = self._unrolled(index)

        def fits(candidate: np.ndarray) -> bool:
            if resize_to is not None:
                candidate = self.resize(candidate, resize_to)
            return np.allclose(seen, candidate, atol=1e-4)

        slips = [
            (dict(back=0), "the gradient was not rolled back: it belongs to the shifted copy, so roll it by -shift "
                           "(tf.roll(gradient, -shift, axis=[1, 2])) before the step."),
            (dict(back=1), "the gradient was rolled by +shift again; roll it back by -shift."),
            (dict(sign=-1.0), "the step went down the gradient (image - ...), which lowers the class score: "
                              "add it, image + step_size * normalize(gradient)."),
            (dict(normalize=False), "the step used the raw gradient: step along normalize(gradient)."),
            (dict(step_size=1.0), "the step was not scaled: image + step_size * normalize(gradient)."),
            (dict(step_size=MATLAB_STEP_SIZE), "the step used classviz.MATLAB_STEP_SIZE; use the step_size "
                                               "argument (the check passes another value)."),
        ]
        for options, hint in slips:
            if fits(self.step(previous, shift_before, **options)):
                return hint
        if fits(previous):
            return "the image did not change: image = image + step_size * normalize(gradient)."
        return None

    def check_result(self, answer: Any) -> None:
        if answer is None:
            raise ExerciseIncorrect("my_pyramid_ascent returned None: end with `return image`.")
        actual = np.asarray(answer, dtype=np.float32)
        if actual.shape != self.start.shape:
            raise ExerciseIncorrect(
                f"my_pyramid_ascent returned shape {actual.shape}; expected the start images' shape {self.start.shape} "
                "(the last level is the full size)."
            )
        last = self._unrolled(len(self.recorder.inputs) - 1)
        expected = self.step(last, self.recorder.shifts[-1])
        if np.allclose(actual, expected, atol=1e-4):
            return
        if np.allclose(actual, self.recorder.inputs[-1], atol=1e-4):
            raise ExerciseIncorrect("my_pyramid_ascent returned the rolled copy; return the image itself.")
        if np.allclose(actual, last, atol=1e-4):
            raise ExerciseIncorrect("my_pyramid_ascent returned the image before its last step: return it after the loop.")
        assert_close(actual, expected, "the images after the last step", atol=1e-4)
