"""Lesson 02's checks: the feature extraction model and the most active channels. Right answers
pass; each single-line slip gets a hint that names its fix."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from course_lib import checks, models
from course_lib.checks import ExerciseIncorrect, ExerciseNotDone


@pytest.fixture(scope="module")
def backbone():
    return models.backbone("dog_breeds", verbose=False)


def _stub(*args, **kwargs):
    raise NotImplementedError("write this function")


# --- make_dream_model ----------------------------------------------------------------------------


def _make_dream_model(base_model, names):
    layers = [base_model.get_layer(name).output for name in names]
    return tf.keras.Model(inputs=base_model.input, outputs=layers)


def test_check_dream_model_passes_the_right_answer(backbone, capsys):
    checks.check_dream_model(_make_dream_model, backbone)
    assert capsys.readouterr().out == "Correct: make_dream_model returns the activations of the layers you name, in order.\n"


def test_check_dream_model_passes_inputs_plural_and_a_tuple(backbone, capsys):
    checks.check_dream_model(lambda base, names: tf.keras.Model(
        inputs=base.inputs, outputs=tuple(base.get_layer(n).output for n in names)), backbone)
    assert capsys.readouterr().out.startswith("Correct:")


@pytest.mark.parametrize("slip, message", [
    (lambda base, names: _make_dream_model(base, sorted(names)), r"order of names \(do not sort"),
    (lambda base, names: _make_dream_model(base, names[:1]), r"list of 2 activations.*returned 1"),
    (lambda base, names: tf.keras.Model(inputs=base.input, outputs=[base.get_layer(n) for n in names]),
     r"not the layers: base_model\.get_layer\(name\)\.output"),
    (lambda base, names: tf.keras.Model(inputs=tf.keras.Input((None, None, 3)),
                                        outputs=[base.get_layer(n).output for n in names]),
     r"inputs=base_model\.input"),
    (lambda base, names: tf.keras.Model(inputs=base.input, outputs=[base.get_layer(n).input for n in names]),
     r"\*into\*.*not \.input"),
    (lambda base, names: tf.keras.Model(inputs=base.input, outputs=base.output), r"final output"),
    (lambda base, names: base, r"the backbone itself"),
    (lambda base, names: [base.get_layer(n).output for n in names], r"expected a keras\.Model"),
    (lambda base, names: _make_dream_model(base, ["block_6_expand_relu", "block_10_expand_relu"]),
     r"Use the names you are given"),
    (lambda base, names: tf.keras.Model(inputs=base.input, outputs={n: base.get_layer(n).output for n in names}),
     r"dict|as a list"),
], ids=["sorted", "first only", "layers", "new Input", ".input", "final output", "backbone", "list", "hard-coded",
        "dict"])
def test_check_dream_model_names_each_slip(backbone, slip, message):
    with pytest.raises(ExerciseIncorrect, match=message):
        checks.check_dream_model(slip, backbone)


def test_check_dream_model_says_a_stub_is_not_done(backbone):
    with pytest.raises(ExerciseNotDone, match="not written yet"):
        checks.check_dream_model(_stub, backbone)


# --- strongest_channels --------------------------------------------------------------------------


def _strongest(activation, k):
    strength = tf.reduce_mean(activation, axis=[0, 1, 2])
    return np.argsort(-strength.numpy())[:k]


@pytest.mark.parametrize("answer", [
    _strongest,
    lambda a, k: np.argsort(np.mean(a, axis=(0, 1, 2)))[::-1][:k],
    lambda a, k: tf.math.top_k(tf.reduce_mean(a, axis=[0, 1, 2]), k).indices,
    lambda a, k: list(np.argsort(-np.asarray(a)[0].mean(axis=(0, 1)))[:k]),
    lambda a, k: np.argsort(-tf.reduce_sum(a, axis=[0, 1, 2]).numpy())[:k],
], ids=["solution", "numpy reversed", "top_k", "drop batch first", "sum ranks alike"])
def test_check_strongest_channels_passes_right_answers(answer, capsys):
    checks.check_strongest_channels(answer)
    assert capsys.readouterr().out == "Correct: strongest_channels ranks the channels by their mean activation, strongest first.\n"


@pytest.mark.parametrize("slip, message", [
    (lambda a, k: np.argsort(tf.reduce_mean(a, axis=[0, 1, 2]).numpy())[:k], r"\*weakest\*.*small to large"),
    (lambda a, k: np.argsort(-tf.reduce_max(a, axis=[0, 1, 2]).numpy())[:k], r"largest single value.*mean"),
    (lambda a, k: np.argsort(-np.mean(a, axis=(0, 1)), axis=-1)[:k], r"shape.*axis=\(0, 1, 2\)"),
    (lambda a, k: np.argsort(-np.mean(a, axis=-1))[:k], r"shape.*axis=\(0, 1, 2\)"),
    (lambda a, k: np.sort(tf.reduce_mean(a, axis=[0, 1, 2]).numpy())[::-1][:k], r"strengths.*indices"),
    (lambda a, k: np.argsort(-tf.reduce_mean(a, axis=[0, 1, 2]).numpy()), r"return exactly k"),
    (lambda a, k: np.arange(k), r"expected \["),
    (lambda a, k: a.mean(axis=(0, 1, 2)).argsort()[::-1][:k], r"TensorFlow tensor"),
    (lambda a, k: None, r"returned nothing"),
], ids=["ascending", "max", "kept an axis", "mean over channels", "values", "all channels", "first k",
        "numpy methods on a tensor", "no return"])
def test_check_strongest_channels_names_each_slip(slip, message):
    with pytest.raises(ExerciseIncorrect, match=message):
        checks.check_strongest_channels(slip)


def test_check_strongest_channels_says_a_stub_is_not_done():
    with pytest.raises(ExerciseNotDone, match="not written yet"):
        checks.check_strongest_channels(_stub)
