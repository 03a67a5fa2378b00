"""Exercise checks of lesson 07."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from course_lib import classifiers, training
from course_lib.checks.common import (ExerciseIncorrect, assert_close, call_student, expect_number, expect_pair,
                                      first_slip, last_line, passed)

__all__ = ['check_augmenter', 'check_head', 'check_train_step']


def _factor_range(factor: Any) -> tuple[float, float]:
    """A Keras factor (a number f means -f..f) as a (low, high) pair."""
    low, high = (-factor, factor) if isinstance(factor, (int, float)) else factor  # Keras refuses None here
    return (float(low), float(high))


def check_augmenter(student_make_augmenter: Callable) -> None:
    """Lesson 07: the source's imageDataAugmenter: a horizontal RandomFlip, a RandomTranslation of 30/224 of
    the side, a RandomZoom scaling height and width independently by 0.9..1.1 (factors 1/1.1 - 1 .. 1/0.9 - 1)."""
    augment = call_student(student_make_augmenter, 0, hints=[
        (ValueError, "`height_factor` and `width_factor`",
         "RandomZoom takes zoom factors z, not scales: the content is scaled by 1 / (1 + z), so a scale of 0.9..1.1 "
         "needs z from 1/1.1 - 1 to 1/0.9 - 1."),
        (ValueError, "`factor` argument",
         "RandomTranslation takes a fraction of the side, not pixels: the source's 30 px on 224 px is 30 / 224."),
    ])  # fmt: skip
    if not isinstance(augment, keras.Layer):
        raise ExerciseIncorrect(f"make_augmenter should return a keras.Sequential of layers; got {type(augment).__name__}.")
    layers = {type(layer).__name__: layer for layer in getattr(augment, "layers", [augment])}
    missing = [name for name in ("RandomFlip", "RandomTranslation", "RandomZoom") if name not in layers]
    if missing:
        raise ExerciseIncorrect(f"The augmenter lacks {', '.join(missing)}; the source reflects, translates and scales.")
    if layers["RandomFlip"].mode != "horizontal":
        raise ExerciseIncorrect(f"RandomFlip mode is {layers['RandomFlip'].mode!r}; 'RandXReflection' flips left-right "
                                "only: use 'horizontal'.")
    shift = 30 / 224
    for axis in ("height_factor", "width_factor"):
        low, high = _factor_range(getattr(layers["RandomTranslation"], axis))
        if abs(low + shift) > 2e-3 or abs(high - shift) > 2e-3:
            raise ExerciseIncorrect(f"RandomTranslation {axis} covers {low:.3f}..{high:.3f} of the side; the source's "
                                    f"+-30 px on a 224 px input is +-{shift:.3f} (30 / 224).")
    exact = (1 / 1.1 - 1, 1 / 0.9 - 1)
    for axis in ("height_factor", "width_factor"):
        factor = getattr(layers["RandomZoom"], axis)
        if factor is None:
            raise ExerciseIncorrect("RandomZoom needs a width_factor too: the source scales x ('RandXScale') and y "
                                    "('RandYScale') independently.")
        low, high = _factor_range(factor)
        if abs(low - exact[0]) > 0.012 or abs(high - exact[1]) > 0.012:
            raise ExerciseIncorrect(f"RandomZoom {axis} covers {low:.3f}..{high:.3f}; a scale of 0.9..1.1 needs about "
                                    f"{exact[0]:.3f}..{exact[1]:.3f} (a zoom factor z shows the content at 1 / (1 + "
                                    "z)).")
    batch = np.full((2, 48, 48, 3), 128.0, dtype=np.float32)
    output = np.asarray(augment(batch, training=True))
    if output.shape != batch.shape:
        raise ExerciseIncorrect(f"The augmenter changed the batch shape from {batch.shape} to {output.shape}.")
    passed("the augmenter flips left-right, shifts up to 30/224 of the side and scales by 0.9-1.1 in x and y.")


# --- The new head (MATLAB's replaceLayer) ---------------------------------------------------------

_HEAD_HINTS = [
    (ValueError, "last dimension of the inputs to a .Dense. layer should be defined|Flatten|fully-defined",
     "Flatten needs a fixed image size; pool the feature maps instead: keras.layers.GlobalAveragePooling2D(name='avg_pool')."),
    (ValueError, "[Ii]ncompatible|expected shape|Input .* is incompatible",
     "Make the input take any image size: keras.Input(shape=(None, None, 3))."),
    (TypeError, "missing .* required positional argument|takes .* positional argument",
     "add_head(base, num_classes) receives the frozen base model and the number of classes."),
]


def _tiny_base(seed: int = 7):
    """A small frozen feature model: two convolutions with batch norm, like a backbone in miniature."""
    inputs = keras.Input(shape=(None, None, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="conv_a")(inputs)
    x = keras.layers.BatchNormalization(name="bn_a")(x)
    x = keras.layers.ReLU(name="relu_a")(x)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv_b")(x)
    base = keras.Model(inputs, x, name="tiny_base")
    rng = np.random.default_rng(seed)
    base.set_weights([rng.normal(0.0, 0.5, w.shape).astype("float32") if "variance" not in w.path
                      else rng.uniform(0.5, 2.0, w.shape).astype("float32") for w in base.weights])  # fmt: skip
    base.trainable = False
    return base


def check_head(student_add_head: Callable) -> None:
    """Lesson 07: ``add_head(base, num_classes)`` must build ``classifiers.add_head``'s model, layers named so:
    ``image (any size) -> base(training=False) -> avg_pool -> dropout (0.2) -> new_fc (linear, zeros) -> prob``."""
    base, classes = _tiny_base(), 4
    model = call_student(student_add_head, base, classes, hints=_HEAD_HINTS)
    if not isinstance(model, keras.Model):
        raise ExerciseIncorrect(f"add_head returned {type(model).__name__}; return keras.Model(inputs, probabilities).")
    try:
        model.inputs  # noqa: B018 - a model that was never built has none
    except (AttributeError, ValueError):
        raise ExerciseIncorrect("The model was never built: start it from keras.Input(shape=(None, None, 3)) (in a "
                                "keras.Sequential, put the Input first).") from None
    if not any(layer is base for layer in model.layers):
        raise ExerciseIncorrect("The model does not contain the base you were given: call it on the inputs, "
                                "features = base(inputs, training=False), and build the head on its output.")
    names = {layer.name: layer for layer in model.layers}
    wanted = {"avg_pool": (keras.layers.GlobalAveragePooling2D, " (one mean per feature map, at any image size)"),
              "dropout": (keras.layers.Dropout, ""), "new_fc": (keras.layers.Dense, ""), "prob": (keras.layers.Softmax, "")}
    for name, (kind, why) in wanted.items():
        if name not in names:
            raise ExerciseIncorrect(f"No layer is named {name!r}: give the {kind.__name__} layer name={name!r} "
                                    "(training and lesson 09 find the layers by name).")
        if not isinstance(names[name], kind):
            raise ExerciseIncorrect(f"{name!r} is a {type(names[name]).__name__}; use keras.layers.{kind.__name__}{why}.")
    head = names["new_fc"]
    if head.units != classes:
        raise ExerciseIncorrect(f"new_fc has {head.units} units for {classes} classes: one unit per class, "
                                "Dense(num_classes, ...).")
    if getattr(head.activation, "__name__", "") != "linear":
        raise ExerciseIncorrect(f"new_fc has activation {head.activation.__name__!r}; it must output logits (no "
                                "activation), and a separate keras.layers.Softmax(name='prob') turns them into "
                                "probabilities: lesson 09 dreams on the logits.")
    rate = getattr(names["dropout"], "rate", None)
    if rate is None or abs(float(rate) - 0.2) > 1e-9:
        raise ExerciseIncorrect(f"The dropout rate is {rate}; use the library's 0.2: keras.layers.Dropout(0.2, name='dropout').")
    if np.any(head.get_weights()[0] != 0):
        raise ExerciseIncorrect("new_fc starts with random weights; start it at zero (kernel_initializer='zeros'), so "
                                "that before training every class gets 1 / num_classes.")
    photos = np.random.default_rng(3).uniform(-1, 1, (2, 37, 29, 3)).astype("float32")  # odd sizes: any size works
    output = np.asarray(call_student(model, photos, hints=_HEAD_HINTS))
    if output.shape != (2, classes):
        raise ExerciseIncorrect(f"For 2 photos the model returns shape {output.shape}, expected {(2, classes)}: pool "
                                "the feature maps (GlobalAveragePooling2D) before new_fc, and end with the softmax.")
    if model.layers[-1] is not names["prob"]:
        raise ExerciseIncorrect("The model must end with the softmax layer 'prob' (its output is the model's output).")
    # Same weights in new_fc for both: the probabilities must then agree with the library's.
    expected_model = classifiers.add_head(base, classes)
    weights = [np.random.default_rng(4).normal(0, 1, w.shape).astype("float32") for w in head.get_weights()]
    head.set_weights(weights)
    expected_model.get_layer("new_fc").set_weights(weights)
    assert_close(model(photos, training=False), expected_model(photos, training=False),
                 "the probabilities for 2 photos (with the same new_fc weights as the library's)", atol=1e-5)
    head.set_weights([np.zeros_like(w) for w in weights])
    passed("add_head pools the base's features, drops 20% while training, and adds new_fc (logits, from zero) and prob.")


# --- The step with a learning rate per layer ----------------------------------------------------

_SPLIT_HINT = ("Split the gradient list where the head's variables end: gradients[:len(head_variables)] go with "
               "head_variables, gradients[len(head_variables):] with base_variables.")

_STEP_HINTS = [
    (tf.errors.InvalidArgumentError, "shapes must be equal|[Ii]ncompatible shapes", _SPLIT_HINT),
    (ValueError, "No gradients provided",
     "Compute the logits and the loss inside `with tf.GradientTape() as tape:` and take "
     "tape.gradient(loss, head_variables + base_variables)."),
    (ValueError, "Unknown variable|can only be called for the variables it was originally built",
     "Each optimizer must always update the same variables: head_optimizer the head's, base_optimizer the base's."),
    (ValueError, "[Ss]hape|incompatible", _SPLIT_HINT),
    (AttributeError, "numpy",
     "The step runs compiled (inside tf.function) during training: return the tensors, without .numpy() or float()."),
]


def _tiny_logits_model(seed: int = 11):
    """Images -> logits of 3 classes: a small base (a convolution) and a head (new_fc), fixed weights."""
    inputs = keras.Input(shape=(None, None, 3))
    features = keras.layers.Conv2D(4, 3, activation="tanh", name="conv_a")(inputs)
    features = keras.layers.Conv2D(5, 3, activation="tanh", name="conv_b")(features)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    logits = keras.layers.Dense(3, name="new_fc")(pooled)
    model = keras.Model(inputs, logits)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 0.7, w.shape).astype("float32") for w in model.get_weights()])
    base = model.get_layer("conv_a").trainable_variables + model.get_layer("conv_b").trainable_variables
    return model, model.get_layer("new_fc").trainable_variables, base


def _two_compiled_steps(step: Callable, images: np.ndarray, labels: np.ndarray, rates: tuple) -> list:
    """The weights of a fresh tiny model after two steps with momentum, ``step`` compiled as
    training.Trainer compiles it (tf.function, autograph=False): the reference too, so only round-off differs."""
    model, head, base = _tiny_logits_model()
    optimizers = [keras.optimizers.SGD(rate, momentum=0.9) for rate in rates]
    compiled = tf.function(lambda x, y: step(model, x, y, head, base, *optimizers), autograph=False)
    for _ in range(2):
        compiled(tf.constant(images), tf.constant(labels))
    return [variable.numpy() for variable in head + base]


def _one_step_hint(moved: list, before: list, gradients: list, heads: int, head_rate: float, base_rate: float,
                   batch: int) -> str | None:
    """None if the weights ``moved`` are one SGD step from ``before``, the head's ``heads`` variables at
    ``head_rate`` and the base's at ``base_rate``; else the slip whose rates give them. Each part's move is
    measured on the scale of its expected move, so a base that did not move shows beside the faster head."""
    def flat(arrays: list, part: slice) -> np.ndarray:
        return np.concatenate([array.ravel() for array in arrays[part]])

    parts = [(part, rate * np.linalg.norm(flat(gradients, part)))  # each part with the length of its expected move
             for part, rate in ((slice(0, heads), head_rate), (slice(heads, None), base_rate))]

    def on_scale(changes: list) -> np.ndarray:
        return np.concatenate([flat(changes, part) / expected_move for part, expected_move in parts])

    def after(head: float, base: float) -> np.ndarray:
        return on_scale([-(head if index < heads else base) * gradient for index, gradient in enumerate(gradients)])

    up = "moved UP the gradient: pass the gradients themselves to optimizer.apply; the optimizer subtracts them."
    return first_slip(on_scale([now - then for now, then in zip(moved, before)]), after(head_rate, base_rate), [
        (after(base_rate, head_rate), "The optimizers are swapped: head_optimizer (10x) must update head_variables, "
                                      "base_optimizer the base_variables."),
        (after(0.0, base_rate), "The head (new_fc) did not move: apply its gradients with head_optimizer (10x)."),
        (after(head_rate, 0.0), "The base did not move: apply its gradients with base_optimizer (1x)."),
        (after(-head_rate, -base_rate), f"The weights {up}"), (after(-head_rate, base_rate), f"The head {up}"),
        (after(head_rate, -base_rate), f"The base {up}"),
        (after(base_rate, base_rate), "The head (new_fc) moved at the base's learning rate: its gradients go to "
                                      "head_optimizer (10x)."),
        (after(head_rate, head_rate), "The base moved at the head's learning rate: its gradients go to "
                                      "base_optimizer (1x)."),
        (after(head_rate * batch, base_rate * batch), f"The steps are {batch}x too large for {batch} photos: use "
                                                      "the mean loss, not the sum."),
    ], otherwise=(
        "After one step the weights differ from one SGD step with one gradient of the mean cross-entropy (new_fc "
        "at head_optimizer's rate, the base at base_optimizer's). Take ONE tape.gradient for head_variables + "
        "base_variables and give each optimizer its part: gradients[:len(head_variables)] and the rest."))


def check_train_step(student_step: Callable) -> None:
    """Lesson 07: ``train_step(model, images, labels, head_variables, base_variables, head_optimizer,
    base_optimizer)`` must do what ``training.two_rate_step`` does, eagerly and compiled: ONE gradient of the
    mean cross-entropy of the logits, its parts applied by the two optimizers; it returns ``(loss, logits)``."""
    images = np.random.default_rng(12).uniform(-1, 1, (4, 9, 9, 3)).astype("float32")
    labels = np.array([0, 2, 1, 2])
    head_rate, base_rate = 0.5, 0.05
    model, head_variables, base_variables = _tiny_logits_model()
    variables = head_variables + base_variables
    with tf.GradientTape() as tape:
        logits = model(images, training=True)
        loss_tensor = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    gradients = [g.numpy() for g in tape.gradient(loss_tensor, variables)]
    expected_loss = float(loss_tensor)
    before = [v.numpy().copy() for v in variables]

    flags = []  # the `training` argument of each call of the model

    def recorder(images, training=None, **options):
        flags.append(training)
        return model(images, training=training, **options)

    answer = call_student(student_step, recorder, tf.constant(images), tf.constant(labels), head_variables, base_variables,
                          keras.optimizers.SGD(head_rate), keras.optimizers.SGD(base_rate), hints=_STEP_HINTS)  # fmt: skip
    loss, returned_logits = expect_pair(answer, "train_step", "(loss, logits)", "training reports the loss and "
                                        "computes the accuracy from the logits")
    loss = expect_number(loss, "train_step (its loss)", "The MEAN cross-entropy of the batch.")
    if not any(flag is True for flag in flags):
        raise ExerciseIncorrect("The model was not called with training=True: call model(images, training=True) so "
                                "that dropout is on while training.")
    # Logits and loss: the same eager call of the same model, float32 round-off (~1e-7) apart.
    assert_close(returned_logits, logits, "the logits returned", atol=1e-5)
    hint = first_slip(loss, expected_loss, [
        (float(keras.losses.SparseCategoricalCrossentropy()(labels, logits)), "The loss treats the logits as "
         "probabilities: new_fc outputs logits, so use keras.losses.SparseCategoricalCrossentropy(from_logits=True)."),
        (expected_loss * len(labels), "The loss is the SUM over the batch; use the mean (SparseCategoricalCrossentropy does it)."),
    ], tolerance=1e-4, otherwise="It must be the mean cross-entropy of the logits, before the step.")
    if hint:
        raise ExerciseIncorrect(f"train_step returned the loss {loss:.5f}, expected {expected_loss:.5f}. {hint}")
    hint = _one_step_hint([v.numpy() for v in variables], before, gradients, len(head_variables), head_rate, base_rate,
                          len(labels))
    if hint:
        raise ExerciseIncorrect(hint)
    # Training runs the step compiled: it must work inside tf.function too (two steps, with momentum).
    try:
        mine = _two_compiled_steps(student_step, images, labels, (head_rate, base_rate))
    except Exception as error:  # noqa: BLE001 - any failure of the compiled step is reported
        raise ExerciseIncorrect(f"train_step works eagerly but fails compiled (training runs it inside tf.function): "
                                f"{last_line(error)}. Keep everything a tensor: no .numpy() or float() inside the "
                                "step.") from None
    theirs = _two_compiled_steps(training.two_rate_step, images, labels, (head_rate, base_rate))
    for after, expected_after in zip(mine, theirs):
        assert_close(after, expected_after, "the weights after two compiled steps with momentum", atol=1e-5)
    passed("train_step takes one gradient and lets head_optimizer move new_fc and base_optimizer the base.")
