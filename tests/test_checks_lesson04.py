"""Lesson 04's checks: the tutorial's step and DeepDream module pass; each single-line slip is caught
with a hint that names the fix, never a raw TensorFlow traceback."""
from __future__ import annotations

import pytest
import tensorflow as tf

from course_lib import checks, models
from course_lib.checks import ExerciseIncorrect, ExerciseNotDone
from course_lib.dream import calc_loss

SIGNATURE = (
    tf.TensorSpec(shape=[None, None, 3], dtype=tf.float32),
    tf.TensorSpec(shape=[], dtype=tf.int32),
    tf.TensorSpec(shape=[], dtype=tf.float32),
)


@pytest.fixture(scope="module")
def backbone():
    return models.backbone("dog_breeds", verbose=False)


def _step(img, model, step_size, watch=True):
    with tf.GradientTape() as tape:
        if watch:
            tape.watch(img)
        loss = calc_loss(img, model)
    gradients = tape.gradient(loss, img)
    gradients /= tf.math.reduce_std(gradients) + 1e-8
    return loss, tf.clip_by_value(img + gradients * step_size, -1, 1)


def test_step_without_tape_watch_gets_the_hint(backbone):
    with pytest.raises(ExerciseIncorrect, match=r"call tape.watch\(img\).*only watches variables"):
        checks.check_gradient_ascent_step(lambda i, m, s: _step(i, m, s, watch=False), backbone)


def test_step_with_the_lessons_global_model_is_caught(backbone):
    dream_model = models.feature_extractor(backbone)
    with pytest.raises(ExerciseIncorrect, match="dream_model, not of the model given"):
        checks.check_gradient_ascent_step(lambda i, m, s: _step(i, dream_model, s), backbone)


def deep_dream_class(*, watch=True, sign=1.0, normalise=True, clip=True, signature=SIGNATURE, compiled=True,
                     fixed_steps=None, fixed_step_size=None, model_of=None, loss_after=False, init_loss=True,
                     divide_by=None, low=-1.0):
    """The tutorial's DeepDream; each keyword changes one line of it, as a student's slip would."""

    class DeepDream(tf.Module):
        def __init__(self, model):
            self.model = model

        def __call__(self, img, steps, step_size):
            print("Tracing")
            if init_loss:
                loss = tf.constant(0.0)
            for n in tf.range(steps if fixed_steps is None else fixed_steps):
                with tf.GradientTape() as tape:
                    if watch:
                        tape.watch(img)
                    loss = calc_loss(img, model_of or self.model)
                gradients = tape.gradient(loss, img)
                if divide_by is not None:
                    gradients /= divide_by(gradients) + 1e-8
                elif normalise:
                    gradients /= tf.math.reduce_std(gradients) + 1e-8
                img = img + sign * gradients * (step_size if fixed_step_size is None else fixed_step_size)
                if clip:
                    img = tf.clip_by_value(img, low, 1)
            if loss_after:
                loss = calc_loss(img, self.model)
            return loss, img

    if compiled:
        DeepDream.__call__ = (tf.function(DeepDream.__call__, input_signature=signature) if signature
                              else tf.function(DeepDream.__call__))
    return DeepDream


def test_the_tutorials_deep_dream_passes_and_its_print_stays_out_of_the_output(backbone, capsys):
    checks.check_deep_dream(deep_dream_class(), backbone)
    assert capsys.readouterr().out.splitlines() == [
        "Correct: DeepDream runs the steps of gradient ascent in one compiled graph, traced once for two image sizes."]


@pytest.mark.parametrize("slip, message", [
    (dict(watch=False), r"call tape.watch\(img\)"),
    (dict(sign=-1.0), r"\*down\* the gradient"),
    (dict(normalise=False), r"raw gradient.*reduce_std"),
    (dict(clip=False), r"clip it to \[-1, 1\]"),
    (dict(divide_by=lambda g: tf.reduce_max(tf.abs(g))), r"its largest value.*\*largest\* pixel"),
    (dict(divide_by=lambda g: tf.reduce_mean(tf.abs(g))), r"mean absolute value, as Google's original"),
    (dict(divide_by=tf.norm), r"raw gradient is tiny.*its length"),
    (dict(low=0.0), r"clipped to \[0, 1\]"),
    (dict(signature=None), r"traced 2 times for 2 image sizes.*input_signature"),
    (dict(compiled=False), r"not compiled.*@tf.function\(input_signature"),
    (dict(fixed_steps=1), r"took one step, where 2 were asked for.*tf.range\(steps\)"),
    (dict(fixed_step_size=0.01), "use the step_size argument"),
    (dict(loss_after=True), "loss of the final image"),
    (dict(signature=(SIGNATURE[0], tf.TensorSpec([], tf.int64), SIGNATURE[2])), r"number of steps \(int32\)"),
], ids=["no tape.watch", "descent", "no normalisation", "no clip", "divided by the max", "divided by the mean |g|",
        "divided by the norm", "clipped to [0, 1]", "no input signature", "no tf.function",
        "one step", "fixed step size", "loss after the step", "int64 steps"])
def test_deep_dream_slips_are_caught_with_a_hint(backbone, slip, message):
    with pytest.raises(ExerciseIncorrect, match=message) as raised:
        checks.check_deep_dream(deep_dream_class(**slip), backbone)
    assert "in user code" not in str(raised.value) and len(str(raised.value)) < 600


@pytest.mark.parametrize("compiled", [True, False], ids=["compiled", "eager"])
def test_deep_dream_without_loss_before_the_loop_gets_the_while_loop_hint(backbone, compiled):
    # AutoGraph's tf.while_loop needs loss before the loop: with 0 steps it fails ("loop must iterate
    # at least once to initialize loss"); eagerly Python fails the same way (an unbound local).
    with pytest.raises(ExerciseIncorrect, match=r"tf.while_loop.*loop variables must exist before it.*"
                                                r"`loss = tf.constant\(0.0\)` before the loop") as raised:
        checks.check_deep_dream(deep_dream_class(init_loss=False, compiled=compiled), backbone)
    assert "loss" in str(raised.value).split("). ")[0] and len(str(raised.value)) < 600


def test_deep_dream_with_the_lessons_global_model_is_caught(backbone):
    with pytest.raises(ExerciseIncorrect, match="self.model"):
        checks.check_deep_dream(deep_dream_class(model_of=models.feature_extractor(backbone)), backbone)


def test_deep_dream_instance_instead_of_class_is_explained(backbone):
    with pytest.raises(ExerciseIncorrect, match="Pass the class itself"):
        checks.check_deep_dream(deep_dream_class()(models.feature_extractor(backbone)), backbone)


def test_deep_dream_without_call_is_explained(backbone):
    class DeepDream(tf.Module):
        def __init__(self, model):
            self.model = model

    with pytest.raises(ExerciseIncorrect, match="no __call__ method"):
        checks.check_deep_dream(DeepDream, backbone)


def test_deep_dream_stub_is_not_done(backbone):
    class DeepDream(tf.Module):
        def __init__(self, model):
            self.model = model

        def __call__(self, img, steps, step_size):
            raise NotImplementedError("write __call__")

    with pytest.raises(ExerciseNotDone, match="not written yet"):
        checks.check_deep_dream(DeepDream, backbone)


@pytest.mark.parametrize("divide_by, low, message", [
    (lambda g: tf.reduce_max(tf.abs(g)), -1.0, r"\*largest\* pixel"),
    (lambda g: tf.reduce_mean(tf.abs(g)), -1.0, "mean absolute value"),
    (tf.norm, -1.0, "raw gradient is tiny .*divided by its length"),
    (tf.math.reduce_std, 0.0, r"clipped to \[0, 1\]"),
], ids=["max", "mean |g|", "norm", "[0, 1]"])
def test_step_with_another_decision_is_named(backbone, divide_by, low, message):
    """Lesson 04 asks the student to decide what the gradient is divided by and what the clip keeps:
    each wrong decision gets its own hint, which says why the spread (std) and [-1, 1] are the answer."""
    def step(img, model, step_size):
        with tf.GradientTape() as tape:
            tape.watch(img)
            loss = calc_loss(img, model)
        gradients = tape.gradient(loss, img)
        return loss, tf.clip_by_value(img + gradients / (divide_by(gradients) + 1e-8) * step_size, low, 1)

    with pytest.raises(ExerciseIncorrect, match=message):
        checks.check_gradient_ascent_step(step, backbone)
