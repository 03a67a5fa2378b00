"""Exercise checks of lesson 02: the feature extraction model, and the most active channels."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from course_lib import models
from course_lib.checks.common import ExerciseIncorrect, call_student, distance, first_slip, passed

__all__ = ['check_dream_model', 'check_strongest_channels']


def check_dream_model(student_make_dream_model: Callable, backbone: Any) -> None:
    """Lesson 02: ``make_dream_model(base_model, names)`` must return a Keras model whose outputs are the
    named layers' activations, in order, as ``models.feature_extractor`` (``backbone``: the lesson's)."""
    # Two layers the lesson does not use by default, in deep-then-shallow order, so that neither a
    # hard-coded answer nor a sorted one passes.
    names = [backbone.blocks[len(backbone.blocks) // 2], backbone.blocks[1]]
    hints = [
        (ValueError, r"must be KerasTensors|KerasTensor",
         "The outputs must be the layers' outputs, not the layers: base_model.get_layer(name).output."),
        (ValueError, r"not connected to `?inputs|Graph disconnected|disconnected",
         "Build the model from the backbone's own input, inputs=base_model.input: the layers' outputs are "
         "computed from that input, not from a new tf.keras.Input."),
        (ValueError, r"No such layer",
         "Look the layers up by the names you are given, exactly as they are: base_model.get_layer(name)."),
    ]
    dream_model = call_student(student_make_dream_model, backbone.model, list(names), hints=hints)
    if not isinstance(dream_model, keras.Model):
        raise ExerciseIncorrect(f"make_dream_model returned {type(dream_model).__name__}; expected a keras.Model, "
                                "built with tf.keras.Model(inputs=..., outputs=...).")
    if dream_model is backbone.model:
        raise ExerciseIncorrect("make_dream_model returned the backbone itself; build a new tf.keras.Model whose "
                                "outputs are the named layers' outputs.")
    picture = tf.random.stateless_uniform((1, 64, 48, 3), seed=(1, 2), minval=-1, maxval=1)
    try:
        answer = dream_model(picture)
    except AttributeError as error:
        raise ExerciseIncorrect(f"calling the model failed ({error}). Give the outputs as a list, one per name, in the "
                                "order of names.") from None
    if isinstance(answer, dict):
        raise ExerciseIncorrect("the model returns a dict; give outputs as a list, one per name, in the order of names.")
    expected = models.feature_extractor(backbone, names)(picture)
    answer = list(answer) if isinstance(answer, (list, tuple)) else [answer]  # one output comes alone
    if len(answer) != len(names):
        final = models.feature_extractor(backbone, [backbone.blocks[-1]])(picture)
        if len(answer) == 1 and np.shape(answer[0]) == np.shape(final):
            raise ExerciseIncorrect("the model returns the backbone's final output; its outputs must be the named "
                                    "layers' outputs, [base_model.get_layer(name).output for name in names] (here "
                                    f"{names}).")
        raise ExerciseIncorrect(f"for the layers {names} the model must return a list of {len(names)} activations, one "
                                f"per layer; it returned {len(answer)}. Use every name: outputs=[... for name in names].")
    for index, (name, got, want) in enumerate(zip(names, answer, expected)):
        got, want = np.asarray(got), np.asarray(want)
        if got.shape != want.shape:
            if any(np.shape(value) == got.shape for value in expected):  # another layer's (not this one's: it differs)
                raise ExerciseIncorrect(f"output {index} should be the activations of {name}, but it has the shape of "
                                        "another layer: keep the outputs in the order of names (do not sort them).")
            defaults = [layer for layer in backbone.dream_layers if layer not in names]
            raise ExerciseIncorrect(f"output {index} should be the activations of {name} (shape {want.shape}); it has "
                                    f"shape {got.shape}. Use the names you are "
                                    f"given{f' (not the default layers {defaults})' if defaults else ''}: "
                                    "base_model.get_layer(name).output.")
        # The same layers of the same network, called the same way: round-off apart (see first_slip).
        if first_slip(got, want, []) is not None:
            before = keras.Model(inputs=backbone.model.input, outputs=backbone.model.get_layer(name).input)(picture)
            raise ExerciseIncorrect(first_slip(got, want, [(np.asarray(before), (
                f"output {index} holds what goes *into* {name}; DeepDream needs what comes out of it: "
                "base_model.get_layer(name).output, not .input."))],
                otherwise=f"the activations of {name} differ from that layer's output by "
                          f"{distance(got, want):.0%}: base_model.get_layer(name).output."))
    passed("make_dream_model returns the activations of the layers you name, in order.")


def check_strongest_channels(student_strongest_channels: Callable) -> None:
    """Lesson 02: ``strongest_channels(activation, k)`` must return the numbers of the ``k`` channels with
    the largest mean activation (over the batch, rows and columns), strongest first."""
    # A (1, 5, 6, 12) activation where ranking by mean, by max, by sum over the wrong axes and by
    # channel number all give different answers.
    maps = np.random.default_rng(7).gamma(2.0, 0.3, size=(1, 5, 6, 12)).astype(np.float32)
    maps *= np.array([0.3, 1.7, 0.9, 2.4, 0.1, 1.2, 0.6, 2.0, 1.5, 0.4, 0.8, 1.1], dtype=np.float32)
    maps[0, 2, 3, 4] = 40.0  # channel 4: weak on average, but the strongest single value
    maps[0, 4, :, 10] += 3.0  # channel 10: strong along one row only
    strength = maps.mean(axis=(0, 1, 2))
    for k in (5, 1):
        answer = call_student(
            student_strongest_channels, tf.constant(maps), k,
            hints=[(AttributeError, r"has no attribute 'numpy'|has no attribute 'mean'|has no attribute 'argsort'",
                    "The activation is a TensorFlow tensor: use tf.reduce_mean(activation, axis=...) or "
                    "np.mean(activation, axis=...), then np.argsort on the NumPy result (tensor.numpy()).")],
        )
        if answer is None:
            raise ExerciseIncorrect("strongest_channels returned nothing; end it with `return ...`.")
        got = np.asarray(answer)
        expected = np.argsort(-strength)[:k]
        if got.shape != expected.shape:
            if got.ndim > 1:
                raise ExerciseIncorrect(f"strongest_channels returned shape {got.shape}; expected {k} channel numbers. "
                                        "Average over the batch, rows and columns, axis=(0, 1, 2), so that one number "
                                        f"per channel is left (the activation has shape {maps.shape}: batch, rows, "
                                        "columns, channels).")
            raise ExerciseIncorrect(f"strongest_channels returned {got.size} numbers for k={k}; return exactly k: [:k].")
        if not np.issubdtype(got.dtype, np.integer):
            if distance(np.sort(got)[::-1], np.sort(strength)[::-1][:k]) < 1e-4:  # float32 means of 30 values
                raise ExerciseIncorrect("strongest_channels returned the strengths; return the channel numbers "
                                        "(indices), which np.argsort gives.")
            raise ExerciseIncorrect(f"strongest_channels returned {got.dtype} values; channel numbers are whole numbers (np.argsort gives them).")
        if np.array_equal(got, expected):
            continue
        if np.array_equal(got, np.argsort(strength)[:k]):
            raise ExerciseIncorrect("strongest_channels returned the *weakest* channels: np.argsort sorts from small "
                                    "to large. Sort by -strength, or reverse the order ([::-1]) before taking k.")
        if k > 1 and set(got.tolist()) == set(expected.tolist()):
            raise ExerciseIncorrect("strongest_channels found the right channels in the wrong order: strongest first.")
        if np.array_equal(got, np.argsort(-maps.max(axis=(0, 1, 2)))[:k]):
            raise ExerciseIncorrect("strongest_channels ranked the channels by their largest single value; rank them "
                                    "by their mean over all positions (tf.reduce_mean), the number DeepDream will "
                                    "push up.")
        raise ExerciseIncorrect(f"strongest_channels(activation, {k}) returned {got.tolist()}, expected "
                                f"{expected.tolist()}: the channels with the largest mean over axes (0, 1, 2), "
                                "strongest first.")
    passed("strongest_channels ranks the channels by their mean activation, strongest first.")
