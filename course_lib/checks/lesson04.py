"""Exercise checks of lesson 04: one step of gradient ascent, and the tutorial's compiled ``DeepDream``."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from course_lib.checks.common import ExerciseIncorrect, Hint, assert_close, passed
from course_lib.checks.lesson03 import call_quietly

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


#: Feature extractors and reference results, built once per backbone network: a student who runs
#: a check again (after a fix) waits only for their own code.
_CACHE: dict[tuple, Any] = {}


def _cached(backbone: Any, what: str, build: Callable[[], Any]) -> Any:
    key = (backbone.model, tuple(backbone.dream_layers), what)
    if key not in _CACHE:
        _CACHE[key] = build()
    return _CACHE[key]


def _check_model(backbone: Any) -> Any:
    """A feature extractor unlike the lesson's ``dream_model`` (a shallow and a deep layer), so a
    function that uses the lesson's global model instead of its argument gives other numbers."""
    from course_lib import models

    return _cached(backbone, "check model", lambda: models.feature_extractor(
        backbone, [backbone.blocks[0], backbone.dream_layers[-1]]))


def _lesson_model(backbone: Any) -> Any:
    """The lesson's ``dream_model``: the backbone's dream layers."""
    from course_lib import models

    return _cached(backbone, "lesson model", lambda: models.feature_extractor(backbone))


def _ascend(model: Any, img: Any, steps: int, step_size: float, *, sign: float = 1.0, normalise: bool = True,
            clip: bool = True) -> tuple[float, np.ndarray]:
    """The tutorial's steps, eagerly, with one part changeable: what a slip would compute."""
    import tensorflow as tf

    from course_lib import dream

    loss = tf.constant(0.0)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(img)
            loss = dream.calc_loss(img, model)
        gradients = tape.gradient(loss, img)
        if normalise:
            gradients /= tf.math.reduce_std(gradients) + 1e-8
        img = img + sign * gradients * step_size
        if clip:
            img = tf.clip_by_value(img, -1, 1)
    return float(loss), img.numpy().astype(np.float64)


def _diagnose(new_img: np.ndarray, image: Any, model: Any, backbone: Any, steps: int, step_size: float,
              what: str) -> str:
    """The hint for an image that differs from the expected one: which slip gives the same image."""
    if new_img.max() > 1 + 1e-6 or new_img.min() < -1 - 1e-6:
        return (f"{what} has values from {new_img.min():.3f} to {new_img.max():.3f}: clip it to [-1, 1] "
                "with tf.clip_by_value(img, -1, 1) after each step.")
    slips = [
        ({"sign": -1.0}, f"{what} went *down* the gradient (img - gradients * step_size): that makes the loss "
                         "smaller. Gradient ascent adds: img + gradients * step_size."),
        ({"normalise": False}, f"{what} moved by the raw gradient, which is tiny: divide the gradient by "
                               "tf.math.reduce_std(gradients) + 1e-8 before the step."),
        ({"step_size": 0.01}, f"{what} moved by steps of 0.01: use the step_size argument, not a number of your own."),
    ]
    if steps > 1:
        slips.append(({"steps": 1}, f"{what} took one step, where {steps} were asked for: loop "
                                    "`for n in tf.range(steps):` around the whole step."))
    for change, hint in slips:
        arguments = {"steps": steps, "step_size": step_size, **change}
        _, slipped = _ascend(model, image, arguments.pop("steps"), arguments.pop("step_size"), **arguments)
        if np.allclose(new_img, slipped, atol=1e-4):
            return hint
    _, global_model = _ascend(_lesson_model(backbone), image, steps, step_size)
    if np.allclose(new_img, global_model, atol=1e-4):
        return (f"{what} climbed the loss of the lesson's dream_model, not of the model given: "
                "compute calc_loss(img, model) (in DeepDream: self.model).")
    return ("One step is: loss = calc_loss(img, model) under a GradientTape that watches img; gradients = "
            "tape.gradient(loss, img); gradients /= tf.math.reduce_std(gradients) + 1e-8; "
            "img = tf.clip_by_value(img + gradients * step_size, -1, 1).")


def check_gradient_ascent_step(student_step: Callable, backbone: Any) -> None:
    """Lesson 04: ``gradient_ascent_step(img, model, step_size)`` must return ``(loss, new_img)`` with
    ``new_img = clip(img + g / (std(g) + 1e-8) * step_size, -1, 1)``, ``g`` the gradient of
    ``dream.calc_loss`` at ``img`` and ``loss`` its value before the step (computed here directly).

    Args:
        student_step: the student's function.
        backbone: the lesson's :class:`course_lib.models.Backbone`.
    """
    import tensorflow as tf

    model = _check_model(backbone)
    # Values up to the edges of [-1, 1] and a large step, so that clipping matters. At least 75 px
    # on each side: InceptionV3 takes nothing smaller.
    img = tf.random.stateless_uniform((96, 80, 3), seed=(5, 6), minval=-1, maxval=1)
    step_size = 0.05
    expected_loss, expected_img = _ascend(model, img, 1, step_size)

    answer = call_quietly(student_step, img, model, step_size, hints=TAPE_WATCH_HINTS)
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        raise ExerciseIncorrect(
            f"gradient_ascent_step returned {type(answer).__name__}; expected a pair (loss, new_img): "
            "end with `return loss, img`."
        )
    loss, new_img = answer
    new_img = np.asarray(new_img, dtype=np.float64)
    if new_img.shape != expected_img.shape:
        raise ExerciseIncorrect(
            f"new_img has shape {new_img.shape}; it must keep the image's shape {expected_img.shape} "
            "(no batch axis)."
        )
    if np.ndim(loss) != 0:
        raise ExerciseIncorrect(f"loss has shape {np.shape(loss)}; it must be one number, calc_loss(img, model).")
    if not np.allclose(new_img, expected_img, atol=1e-4):
        raise ExerciseIncorrect(_diagnose(new_img, img, model, backbone, 1, step_size, "new_img"))
    assert_close(float(loss), expected_loss, "the loss (computed before the step)", atol=1e-4, rtol=1e-4)
    passed("gradient_ascent_step normalises the gradient, steps up it and clips to [-1, 1].")


def check_deep_dream(student_class: Callable, backbone: Any) -> None:
    """Lesson 04: the tutorial's ``DeepDream`` module. ``DeepDream(model)(img, steps, step_size)``
    must give the same ``(loss, img)`` as ``course_lib.dream.DeepDream(model, optimize=False)``
    (2 steps on one small image, 3 on another of another size), and its ``__call__`` must be a
    ``tf.function`` traced once for both sizes (an input signature with any height and width).

    Slips recognised: no ``tape.watch``, descent, no normalisation, no clip, a fixed number of steps
    or step size, the lesson's global model, no ``tf.function``, no input signature (a trace per size).

    Args:
        student_class: the student's ``DeepDream`` class (not an instance).
        backbone: the lesson's :class:`course_lib.models.Backbone`.
    """
    import tensorflow as tf

    from course_lib import dream

    if not isinstance(student_class, type):
        raise ExerciseIncorrect(f"Pass the class itself, checks.check_deep_dream(DeepDream, backbone), "
                                f"not {type(student_class).__name__}.")
    model = _check_model(backbone)
    runs = [(tf.random.stateless_uniform((96, 80, 3), seed=(7, 8), minval=-1, maxval=1), 2, 0.05),
            (tf.random.stateless_uniform((112, 88, 3), seed=(9, 10), minval=-1, maxval=1), 3, 0.02)]

    def references() -> list[tuple[float, np.ndarray]]:
        reference = dream.DeepDream(model, optimize=False)
        results = [reference(img, tf.constant(steps), tf.constant(step_size)) for img, steps, step_size in runs]
        return [(float(loss), img.numpy().astype(np.float64)) for loss, img in results]

    expected = _cached(backbone, "DeepDream results", references)
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

    for (img, steps, step_size), (expected_loss, expected_img) in zip(runs, expected):
        answer = call_quietly(DeepDream, img, tf.constant(steps), tf.constant(step_size),
                              hints=TAPE_WATCH_HINTS + SIGNATURE_HINTS)
        if not isinstance(answer, (tuple, list)) or len(answer) != 2:
            raise ExerciseIncorrect(f"DeepDream returned {type(answer).__name__}; expected a pair (loss, img): "
                                    "end __call__ with `return loss, img`, after the loop.")
        loss, new_img = answer
        new_img = np.asarray(new_img, dtype=np.float64)
        size = f"{img.shape[1]}x{img.shape[0]}"
        if new_img.shape != expected_img.shape:
            raise ExerciseIncorrect(f"For a {size} image DeepDream returned an image of shape {new_img.shape}; "
                                    f"expected {expected_img.shape}, the image's own (no batch axis).")
        if not np.allclose(new_img, expected_img, atol=1e-4):
            hint = _diagnose(new_img, img, model, backbone, steps, step_size, "The image")
            raise ExerciseIncorrect(f"With {steps} steps of size {step_size} on a {size} image: {hint}")
        if np.ndim(loss) != 0:
            raise ExerciseIncorrect(f"The loss has shape {np.shape(loss)}; it must be one number, "
                                    "calc_loss(img, self.model).")
        if not np.isclose(float(loss), expected_loss, rtol=1e-4, atol=1e-4):
            after = float(dream.calc_loss(tf.constant(new_img, tf.float32), model))
            hint = ("That is the loss of the final image: return the loss computed in the last step, before its "
                    "update, as the tutorial does." if np.isclose(float(loss), after, rtol=1e-4, atol=1e-4)
                    else "Return the loss that calc_loss computed in the loop's last step.")
            raise ExerciseIncorrect(f"DeepDream returned the loss {float(loss):.5f}, expected "
                                    f"{expected_loss:.5f}. {hint}")

    tracing_count = getattr(call, "experimental_get_tracing_count", None)
    if tracing_count is None:
        raise ExerciseIncorrect(
            "DeepDream computes the right image, but __call__ is not compiled, so every step runs op by op from "
            f"Python. Decorate it: @tf.function({SIGNATURE_TEXT})."
        )
    traces = tracing_count()
    if traces > 1:
        raise ExerciseIncorrect(
            f"DeepDream's __call__ was traced {traces} times for 2 image sizes: without an input signature, "
            "tf.function traces again for every new shape (seconds each for a whole network). Give it "
            f"{SIGNATURE_TEXT}: None means any height and width."
        )
    passed("DeepDream runs the steps of gradient ascent in one compiled graph, traced once for two image sizes.")
