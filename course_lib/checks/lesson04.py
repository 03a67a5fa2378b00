"""Exercise checks of lesson 04: one step of gradient ascent, and the tutorial's compiled ``DeepDream``."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf

from course_lib import dream, models
from course_lib.checks.common import (ExerciseIncorrect, Hint, assert_close, cached, call_student, expect_array,
                                      expect_number, expect_pair, first_slip, passed)

__all__ = ['check_gradient_ascent_step', 'check_deep_dream']

#: A tape that did not watch the image gives a gradient of None; dividing it fails with these.
TAPE_WATCH_HINTS: tuple[Hint, ...] = (
    (Exception, r"None values not supported|Attempt to convert a value \(None\)|unsupported operand type\(s\).*NoneType",
     "The gradient came back None: call tape.watch(img) inside the `with tf.GradientTape() as tape:` block. "
     "A GradientTape only watches variables by itself, and the image is a plain tensor."),
)
#: The input signature the tutorial gives ``DeepDream.__call__``.
SIGNATURE_TEXT = ("input_signature=(tf.TensorSpec(shape=[None, None, 3], dtype=tf.float32), "
                  "tf.TensorSpec(shape=[], dtype=tf.int32), tf.TensorSpec(shape=[], dtype=tf.float32))")
SIGNATURE_HINTS: tuple[Hint, ...] = (
    (Exception, r"Binding inputs to tf.function|input_signature|Can not cast|cannot be converted|not compatible",
     f"The check calls deepdream(img, tf.constant(2), tf.constant(0.05)): an image of any size (float32), the "
     f"number of steps (int32) and the step size (float32). Give __call__ the tutorial's {SIGNATURE_TEXT}."),
)


#: The slip of a DeepDream whose ``loss`` is first assigned inside the ``tf.range`` loop.
LOSS_BEFORE_LOOP_HINTS: tuple[Hint, ...] = (
    (Exception, r"'loss' must be defined before the loop|loop must iterate at least once to initialize loss|"
                r"local variable 'loss'",
     "AutoGraph turns `for n in tf.range(steps):` into a tf.while_loop, whose loop variables must exist "
     "before it (with 0 steps the loop never sets loss): write `loss = tf.constant(0.0)` before the loop."),
)


def _model(backbone: Any, lesson: bool = False) -> Any:
    """A shallow and a deep layer of ``backbone``: unlike the lesson's ``dream_model`` (its dream layers,
    ``lesson=True``), so using that instead shows. Built once per backbone (:func:`common.cached`)."""
    layers = backbone.dream_layers if lesson else [backbone.blocks[0], backbone.dream_layers[-1]]
    return cached((backbone.model, tuple(layers), "model"), lambda: models.feature_extractor(backbone, list(layers)))


def _ascend(backbone: Any, model: Any, img: Any, steps: int, step_size: float, *, compiled: bool,
            scale: str = "std", low: float = -1.0) -> tuple[float, np.ndarray]:
    """(loss, image) of the class lesson 04 teaches, as a function: ``steps`` of :func:`dream.ascent_step` in
    a ``tf.range`` loop, compiled with the tutorial's signature (as a DeepDream) or eagerly (as the student's
    step). Another divisor of the gradient (``scale``: "raw" for none, "max", "mean_abs"; "std" is the
    tutorial's) or a clip to ``[low, 1]`` gives a slip's step."""
    divisor = {"std": lambda g: tf.math.reduce_std(g) + 1e-8, "raw": lambda g: 1.0,
               "max": lambda g: tf.reduce_max(tf.abs(g)) + 1e-8, "mean_abs": lambda g: tf.reduce_mean(tf.abs(g)) + 1e-8}[scale]

    def slipped_step(picture: Any, size: Any) -> tuple[Any, Any]:
        with tf.GradientTape() as tape:
            tape.watch(picture)
            loss = dream.calc_loss(picture, model)
        gradients = tape.gradient(loss, picture)
        return loss, tf.clip_by_value(picture + gradients / divisor(gradients) * size, low, 1)

    def run(picture: Any, count: Any, size: Any) -> tuple[Any, Any]:
        loss = tf.constant(0.0)
        for _ in tf.range(count):
            loss, picture = (dream.ascent_step(lambda x: dream.calc_loss(x, model), picture, size)
                             if (scale, low) == ("std", -1.0) else slipped_step(picture, size))
        return loss, picture

    if compiled:
        run = cached((backbone.model, "compiled", id(model), scale, low), lambda eager=run: tf.function(eager, input_signature=(
            tf.TensorSpec([None, None, 3], tf.float32), tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32))))
    loss, new_img = run(tf.convert_to_tensor(img), tf.constant(steps), tf.constant(step_size, tf.float32))
    return float(loss), new_img.numpy().astype(np.float64)


def _verify(new_img: np.ndarray, img: Any, backbone: Any, steps: int, step_size: float, what: str, *,
            compiled: bool, prefix: str = "") -> None:
    """Pass if ``new_img`` is the expected image, else raise ``prefix`` and the hint of the slip closest to it."""
    if new_img.max() > 1 + 1e-6 or new_img.min() < -1 - 1e-6:  # clipping is exact: nothing beyond [-1, 1]
        raise ExerciseIncorrect(f"{prefix}{what} has values from {new_img.min():.3f} to {new_img.max():.3f}: clip it "
                                "to [-1, 1] with tf.clip_by_value(img, -1, 1) after each step.")
    model = _model(backbone)

    def result(steps: int = steps, step_size: float = step_size, model: Any = model, **options: Any) -> np.ndarray:
        return _ascend(backbone, model, img, steps, step_size, compiled=compiled, **options)[1]

    expected = result()
    if first_slip(new_img, expected, [], start=img) is None:
        return
    slips = [
        (result(step_size=-step_size), f"{what} went *down* the gradient (img - gradients * step_size): that "
                                       "makes the loss smaller. Gradient ascent adds: img + gradients * step_size."),
        (result(scale="raw"), f"{what} barely moved: the raw gradient is tiny (and one divided by its length, the "
                              "norm over all pixels, moves each pixel by a tiny share of step_size). Divide the "
                              "gradient by tf.math.reduce_std(gradients) + 1e-8 before the step."),
        (result(scale="max"), f"{what} divided the gradient by its largest value: then step_size is the move of the "
                              "*largest* pixel, and a typical one moves far less. A typical value's size is the "
                              "values' spread: divide by tf.math.reduce_std(gradients) + 1e-8."),
        (result(scale="mean_abs"), f"{what} divided the gradient by its mean absolute value, as Google's original "
                                   "notebook does (step_size / np.abs(g).mean()): a typical size too, but not the "
                                   "tutorial's. Divide by the spread, tf.math.reduce_std(gradients) + 1e-8."),
        (result(low=0.0), f"{what} was clipped to [0, 1]: the network's pixels live in [-1, 1] (lesson 01). "
                          "Clip with tf.clip_by_value(img, -1, 1)."),
        (result(step_size=0.01), f"{what} moved by steps of 0.01: use the step_size argument, not a number of your own."),
        (result(model=_model(backbone, lesson=True)), f"{what} climbed the loss of the lesson's dream_model, not of the "
                                                      "model given: compute calc_loss(img, model) (in DeepDream: self.model)."),
    ]
    if steps > 1:
        slips.append((result(steps=1), f"{what} took one step, where {steps} were asked for: loop "
                                       "`for n in tf.range(steps):` around the whole step."))
    raise ExerciseIncorrect(prefix + first_slip(new_img, expected, slips, start=img, otherwise=(
        "One step is: loss = calc_loss(img, model) under a GradientTape that watches img; gradients = "
        "tape.gradient(loss, img); gradients /= tf.math.reduce_std(gradients) + 1e-8; "
        "img = tf.clip_by_value(img + gradients * step_size, -1, 1).")))


def check_gradient_ascent_step(student_step: Callable, backbone: Any) -> None:
    """Lesson 04: ``gradient_ascent_step(img, model, step_size)`` must return ``(loss, new_img)`` of
    :func:`dream.ascent_step`: ``clip(img + g / (std(g) + 1e-8) * step_size, -1, 1)``, ``g`` the gradient
    of ``calc_loss`` at ``img``, ``loss`` its value before the step (``backbone``: the lesson's)."""
    model = _model(backbone)
    # Values up to the edges of [-1, 1] and a large step, so that clipping matters. At least 75 px
    # on each side: InceptionV3 takes nothing smaller.
    img = tf.random.stateless_uniform((96, 80, 3), seed=(5, 6), minval=-1, maxval=1)
    step_size = 0.05
    answer = call_student(student_step, img, model, step_size, hints=TAPE_WATCH_HINTS)
    loss, new_img = expect_pair(answer, "gradient_ascent_step", "(loss, new_img)", "end with `return loss, img`")
    new_img = expect_array(new_img, "gradient_ascent_step (its new_img)", img.shape, "loss, img",
                           ", the image's own (no batch axis)")
    loss = expect_number(loss, "gradient_ascent_step (its loss)", "It is calc_loss(img, model).")
    _verify(new_img, img, backbone, 1, step_size, "new_img", compiled=False)
    # The same eager computation at the same image: only float32 round-off of the reductions differs.
    expected_loss = _ascend(backbone, model, img, 1, step_size, compiled=False)[0]
    assert_close(loss, expected_loss, "the loss (computed before the step)", atol=1e-6, rtol=1e-4)
    passed("gradient_ascent_step normalises the gradient, steps up it and clips to [-1, 1].")


def check_deep_dream(student_class: Callable, backbone: Any) -> None:
    """Lesson 04: ``DeepDream(model)(img, steps, step_size)`` (the class, not an instance) must give
    the ``(loss, img)`` of ``steps`` steps of :func:`dream.ascent_step` in a compiled ``tf.range`` loop
    (2 and 3 steps on two image sizes, 0 steps give the image back), its ``__call__`` a ``tf.function``
    traced once for both sizes. The references are compiled the same way, so the verdict does not
    depend on the kernels (oneDNN or Eigen) TensorFlow picks on this CPU."""
    if not isinstance(student_class, type):
        raise ExerciseIncorrect(f"Pass the class itself, checks.check_deep_dream(DeepDream, backbone), "
                                f"not {type(student_class).__name__}.")
    model = _model(backbone)
    runs = [(tf.random.stateless_uniform((96, 80, 3), seed=(7, 8), minval=-1, maxval=1), 2, 0.05),
            (tf.random.stateless_uniform((112, 88, 3), seed=(9, 10), minval=-1, maxval=1), 3, 0.02)]
    try:
        deepdream = student_class(model)
    except TypeError as error:
        raise ExerciseIncorrect(f"DeepDream(model) failed: {error}. __init__ takes the model and keeps it: "
                                "def __init__(self, model): self.model = model.") from None
    call = getattr(deepdream, "__call__", None)
    if call is None:
        raise ExerciseIncorrect("DeepDream has no __call__ method: define `def __call__(self, img, steps, step_size):` "
                                f"in the class, decorated with @tf.function({SIGNATURE_TEXT}).")

    def DeepDream(img, steps, step_size):  # noqa: N802 - named like the class in the messages
        return deepdream(img, steps, step_size)

    compiled = getattr(call, "experimental_get_tracing_count", None) is not None
    for img, steps, step_size in runs:
        answer = call_student(DeepDream, img, tf.constant(steps), tf.constant(step_size),
                              hints=TAPE_WATCH_HINTS + SIGNATURE_HINTS)
        loss, new_img = expect_pair(answer, "DeepDream", "(loss, img)", "end __call__ with `return loss, img`, after the loop")
        size = f"{img.shape[1]}x{img.shape[0]}"
        new_img = expect_array(new_img, f"For a {size} image DeepDream (its img)", img.shape, "loss, img",
                               ", the image's own (no batch axis)")
        _verify(new_img, img, backbone, steps, step_size, "The image", compiled=compiled,
                prefix=f"With {steps} steps of size {step_size} on a {size} image: ")
        loss = expect_number(loss, "DeepDream (its loss)", "It is calc_loss(img, self.model).")
        # Losses compared on their rise during the dream (from the loss of the start image).
        expected_loss = _ascend(backbone, model, img, steps, step_size, compiled=compiled)[0]
        after = float(dream.calc_loss(tf.constant(new_img, tf.float32), model))
        hint = first_slip(loss, expected_loss, [(after, "That is the loss of the final image: return the loss "
                                                        "computed in the last step, before its update, as the "
                                                        "tutorial does.")],
                          start=float(dream.calc_loss(img, model)),
                          otherwise="Return the loss that calc_loss computed in the loop's last step.")
        if hint:
            raise ExerciseIncorrect(f"DeepDream returned the loss {loss:.5f}, expected {expected_loss:.5f}. {hint}")
    img = runs[0][0]  # 0 steps must give it back
    _, same = expect_pair(call_student(DeepDream, img, tf.constant(0), tf.constant(0.05), hints=LOSS_BEFORE_LOOP_HINTS),
                          "DeepDream", "(loss, img)", "end __call__ with `return loss, img`, after the loop")
    assert_close(same, img, "After 0 steps the image", atol=0, rtol=0, hint="0 steps change nothing.")

    if not compiled:
        raise ExerciseIncorrect("DeepDream computes the right image, but __call__ is not compiled, so every step runs "
                                f"op by op from Python. Decorate it: @tf.function({SIGNATURE_TEXT}).")
    traces = call.experimental_get_tracing_count()
    if traces > 1:
        raise ExerciseIncorrect(f"DeepDream's __call__ was traced {traces} times for 2 image sizes: without an input "
                                "signature, tf.function traces again for every new shape (seconds each for a whole "
                                f"network). Give it {SIGNATURE_TEXT}: None means any height and width.")
    passed("DeepDream runs the steps of gradient ascent in one compiled graph, traced once for two image sizes.")
