"""The checks' verdicts survive a change of the reference's numerics (issue 16): with the loss in
float64, or a relative noise of 1e-3 on the gradient or on the reference result, as another CPU or
kernel family could give, each check whose reference is a floating-point computation still accepts
the correct solution and still names each slip.

(The checks of exact things, counts, sizes, rolls, uint8 pixels, float64 ratios of counts, compare
exactly and have no numerics to perturb: lesson 00, lesson 01's shrink and deprocess, lesson 02's
strongest_channels, lesson 06's random_roll and tile_bounds, lesson 08.)
"""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import test_checks_lesson02 as l02
import test_checks_lesson03 as l03
import test_checks_lesson04 as l04
import test_checks_lesson05 as l05
import test_checks_lesson06 as l06

from course_lib import checks, dream, models
from course_lib.checks import ExerciseIncorrect, lesson04, lesson05, lesson06

NOISE = 1e-3
ORIGINAL_LOSS, ORIGINAL_STEP = dream.calc_loss, dream.ascent_step


def _noisy(value, seed=0):
    """``value`` times (1 + 1e-3 * standard normal noise), as an array."""
    array = np.asarray(value)
    return (array * (1 + NOISE * np.random.default_rng(seed).normal(size=array.shape))).astype(array.dtype)


def _calc_loss_in_float64(img, model, layer_weights=None):
    """dream.calc_loss with the means and their sum in float64."""
    activations = model(tf.expand_dims(img, axis=0))
    activations = activations if isinstance(activations, (list, tuple)) else [activations]
    weights = [1.0] * len(activations) if layer_weights is None else layer_weights
    total = tf.add_n([w * tf.reduce_mean(tf.cast(a, tf.float64)) for w, a in zip(weights, activations)])
    return tf.cast(total, tf.float32)


def _ascent_step_with_noisy_gradient(loss_fn, img, step_size):
    """dream.ascent_step with a relative noise of 1e-3 on the gradient (the same noise in every step)."""
    with tf.GradientTape() as tape:
        tape.watch(img)
        loss = loss_fn(img)
    gradients = tape.gradient(loss, img)
    gradients *= 1 + NOISE * tf.random.stateless_normal(tf.shape(gradients), seed=(4, 2))
    gradients /= tf.math.reduce_std(gradients) + 1e-8
    return loss, tf.clip_by_value(img + gradients * step_size, -1, 1)


def accepted_or_named(check, answer, message, capsys, *args):
    """``check(answer, *args)`` prints "Correct:" when ``message`` is None, else raises the hint ``message``."""
    if message is None:
        check(answer, *args)
        assert "Correct:" in capsys.readouterr().out
    else:
        with pytest.raises(ExerciseIncorrect, match=message):
            check(answer, *args)


@pytest.fixture(scope="module")
def backbone():
    return models.backbone("dog_breeds", verbose=False)


@pytest.fixture
def perturbed(monkeypatch):
    """The references' numerics changed: the loss in float64, a noisy gradient in every dream step,
    and noise on the tiled gradient and the octave loop's picture. The student's code (each test's
    own) is not touched: it does not look these up in the library."""
    monkeypatch.setattr(dream, "calc_loss", _calc_loss_in_float64)
    monkeypatch.setattr(dream, "ascent_step", _ascent_step_with_noisy_gradient)
    monkeypatch.setattr(checks.common, "_CACHE", {})  # no reference compiled before the change
    tiled = lesson06._tiled_reference
    monkeypatch.setattr(lesson06, "_tiled_reference", lambda *args, **kwargs: _noisy(tiled(*args, **kwargs)))
    loop = lesson05._octave_loop
    monkeypatch.setattr(lesson05, "_octave_loop", lambda *args, **kwargs: tf.constant(_noisy(loop(*args, **kwargs))))


def test_the_perturbation_is_real(perturbed, backbone):
    model = lesson04._model(backbone)
    img = tf.random.stateless_uniform((96, 80, 3), seed=(5, 6), minval=-1, maxval=1)
    exact = float(ORIGINAL_LOSS(img, model))
    assert dream.calc_loss(img, model).dtype == tf.float32 and abs(float(dream.calc_loss(img, model)) - exact) < 1e-5 * exact
    noisy = dream.ascent_step(lambda x: ORIGINAL_LOSS(x, model), img, 0.05)[1]
    plain = ORIGINAL_STEP(lambda x: ORIGINAL_LOSS(x, model), img, 0.05)[1]
    assert 1e-4 < checks.common.distance(noisy, plain, start=img) < 1e-2


def test_lesson02_dream_model(perturbed, backbone, monkeypatch, capsys):
    extractor = models.feature_extractor
    monkeypatch.setattr(models, "feature_extractor", lambda *args: lambda x: [
        tf.constant(_noisy(output)) for output in extractor(*args)(x)])
    checks.check_dream_model(l02._make_dream_model, backbone)
    assert capsys.readouterr().out.startswith("Correct:")
    with pytest.raises(ExerciseIncorrect, match=r"\*into\*"):
        checks.check_dream_model(lambda base, names: tf.keras.Model(base.input, [base.get_layer(n).input for n in names]),
                                 backbone)


@pytest.mark.parametrize("slip, message", [
    (None, None),
    (dict(reduce=tf.math.reduce_sum), "does not drown"),
    (dict(total=tf.reduce_mean), r"\*average\* of the layers' means"),
])
def test_lesson03_calc_loss(perturbed, backbone, capsys, slip, message):
    calc_loss = lambda img, model: l03._calc_loss(img, model, **(slip or {}))  # noqa: E731
    if message is None:
        checks.check_calc_loss(calc_loss, backbone)
        checks.check_weighted_loss(lambda img, model, weights: tf.reduce_sum(
            [w * tf.reduce_mean(a) for w, a in zip(weights, model(tf.expand_dims(img, 0)))]), backbone)
        assert capsys.readouterr().out.count("Correct:") == 2
    else:
        with pytest.raises(ExerciseIncorrect, match=message):
            checks.check_calc_loss(calc_loss, backbone)


def test_lesson04_step(perturbed, backbone, capsys):
    checks.check_gradient_ascent_step(l04._step, backbone)
    assert capsys.readouterr().out.startswith("Correct:")


def test_lesson04_step_slips(perturbed, backbone):
    dream_model = models.feature_extractor(backbone)
    with pytest.raises(ExerciseIncorrect, match="dream_model, not of the model given"):
        checks.check_gradient_ascent_step(lambda i, m, s: l04._step(i, dream_model, s), backbone)


@pytest.mark.parametrize("slip, message", [
    ({}, None),
    (dict(sign=-1.0), r"\*down\* the gradient"),
    (dict(normalise=False), "raw gradient"),
    (dict(fixed_steps=1), "took one step"),
    (dict(fixed_step_size=0.01), "use the step_size argument"),
    (dict(loss_after=True), "loss of the final image"),
], ids=["right", "descent", "raw gradient", "one step", "fixed step size", "loss after"])
def test_lesson04_deep_dream(perturbed, backbone, capsys, slip, message):
    accepted_or_named(checks.check_deep_dream, l04.deep_dream_class(**(slip or {})), message, capsys, backbone)


def test_lesson04_deep_dream_global_model(perturbed, backbone):
    with pytest.raises(ExerciseIncorrect, match="self.model"):
        checks.check_deep_dream(l04.deep_dream_class(model_of=models.feature_extractor(backbone)), backbone)


@pytest.mark.parametrize("switch, message", [
    ({}, None), ({"keep": False}, "result was dropped"), ({"from_photo": True}, "started again from the photo")])
def test_lesson05_octave_loop(perturbed, capsys, switch, message):
    accepted_or_named(checks.check_octave_loop, lambda *args: l05._loop(*args, **switch), message, capsys)


@pytest.mark.parametrize("switch, message", [
    ({}, None), ({"unroll": 0}, "not rolled back"), ({"per_tile": True}, "normalised on its own"),
    ({"normalise": False}, "not normalised"), ({"full_tiles": True}, "full tiles and a short rest")])
def test_lesson06_tiled_gradients(perturbed, capsys, switch, message):
    accepted_or_named(checks.check_tiled_gradients, lambda *args: l06._tiled(*args, **switch), message, capsys)
