"""Exercise checks: compare a student's function with the library's, and say clearly what differs.

A check prints one line starting with "Correct" when the exercise is right. When it is not, it
raises :class:`ExerciseNotDone` (the student has not written it yet) or :class:`ExerciseIncorrect`
with a message that says what was expected and what came back, so a notebook run stops at the
first wrong exercise, in CI as for a student.

Every check is a function ``check_<what>(student_function)`` and is deterministic: its printed
line is the same in fast and full mode, so notebooks mark check cells ``# NBVAL_CHECK_OUTPUT``.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


class ExerciseNotDone(AssertionError):
    """The exercise still raises ``NotImplementedError`` (the student edition's stub)."""


class ExerciseIncorrect(AssertionError):
    """The student's answer runs but disagrees with the expected result."""


def passed(what: str) -> None:
    """Print the one line a check prints on success."""
    print(f"Correct: {what}")


def call_student(function: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call the student's function, turning the student-edition stub into a clear message."""
    try:
        return function(*args, **kwargs)
    except NotImplementedError as error:
        raise ExerciseNotDone(
            f"{getattr(function, '__name__', 'this function')} is not written yet: {error}. "
            "Replace the `raise NotImplementedError(...)` line with your code and run the cell again."
        ) from None


def assert_close(actual: Any, expected: Any, what: str, *, atol: float = 1e-4, rtol: float = 1e-4) -> None:
    """Compare numbers or arrays; on a mismatch say shapes, the largest difference and an example."""
    actual_array = np.asarray(actual, dtype=np.float64)
    expected_array = np.asarray(expected, dtype=np.float64)
    if actual_array.shape != expected_array.shape:
        raise ExerciseIncorrect(
            f"{what}: expected shape {expected_array.shape}, got {actual_array.shape}."
        )
    if not np.allclose(actual_array, expected_array, atol=atol, rtol=rtol):
        difference = np.abs(actual_array - expected_array)
        worst = np.unravel_index(int(np.argmax(difference)), difference.shape) if difference.shape else ()
        raise ExerciseIncorrect(
            f"{what}: values differ by up to {float(difference.max()):.4g} "
            f"(at index {tuple(int(i) for i in worst)}: expected {float(expected_array[worst]):.4g}, "
            f"got {float(actual_array[worst]):.4g})."
        )


# ---------------------------------------------------------------------------------------------
# The checks of each lesson follow, in lesson order. Each says what it compares in its docstring.
# ---------------------------------------------------------------------------------------------


# --- Lesson 01 ---


def _pixel_ramp() -> np.ndarray:
    """A small uint8 test picture holding every value 0..255 in each channel (channels differ)."""
    ramp = np.arange(256, dtype=np.uint8).reshape(8, 32)
    return np.stack([ramp, ramp[::-1], np.roll(ramp, 7, axis=1)], axis=-1)


def check_normalise(student_normalise: Callable) -> None:
    """Lesson 01: ``normalise(uint8 image)`` must equal ``images.to_model_range`` (0 -> -1, 255 -> 1)."""
    from course_lib import images

    picture = _pixel_ramp()
    answer = np.asarray(call_student(student_normalise, picture.copy()))
    if not np.issubdtype(answer.dtype, np.floating):
        raise ExerciseIncorrect(
            f"normalise returned {answer.dtype} values; the network needs floating-point numbers. "
            "Convert first, e.g. img.astype(np.float32)."
        )
    if answer.shape == picture.shape and answer.min() >= -1e-6 and answer.max() <= 1 + 1e-6:
        raise ExerciseIncorrect(
            f"normalise returned values from {answer.min():.2f} to {answer.max():.2f}: that is the range "
            "[0, 1]. The network expects [-1, 1]: 0 must become -1 and 255 must become 1."
        )
    assert_close(answer, images.to_model_range(picture), "normalise(img)", atol=1e-5)
    passed("normalise maps 0..255 to -1..1.")


def check_deprocess(student_deprocess: Callable) -> None:
    """Lesson 01: ``deprocess(values in [-1, 1])`` must give the rounded uint8 image (-1 -> 0, 1 -> 255)."""
    from course_lib import images

    picture = _pixel_ramp()
    # The exact model-range values of every pixel, plus values between them, as a dream produces.
    between = np.linspace(-1, 1, 8 * 32 * 3, dtype=np.float32).reshape(picture.shape)
    for values in (images.to_model_range(picture), between):
        answer = np.asarray(call_student(student_deprocess, values.copy()))
        if answer.dtype != np.uint8:
            raise ExerciseIncorrect(
                f"deprocess returned {answer.dtype} values; an image to show needs uint8. "
                "End with .astype(np.uint8) (after rounding)."
            )
        expected = images.from_model_range(values)
        if answer.shape == expected.shape:
            difference = np.abs(answer.astype(int) - expected.astype(int))
            if difference.max() == 1:
                raise ExerciseIncorrect(
                    f"{int(np.count_nonzero(difference))} pixels are off by one: round before converting to "
                    "uint8 (np.round), because converting 254.99998 truncates it to 254."
                )
        assert_close(answer, expected, "deprocess(img)", atol=0.5, rtol=0)
    passed("deprocess maps -1..1 back to 0..255, rounded.")


# --- Lesson 02 ---


def check_dream_model(student_make_dream_model: Callable, backbone: Any) -> None:
    """Lesson 02: ``make_dream_model(base_model, names)`` must return a Keras model whose outputs
    are the activations of the named layers, in order (compared with ``models.feature_extractor``).

    Args:
        student_make_dream_model: the student's function.
        backbone: the lesson's :class:`course_lib.models.Backbone`.
    """
    import keras
    import tensorflow as tf

    from course_lib import models

    # Two layers the lesson does not use by default, in deep-then-shallow order, so that neither a
    # hard-coded answer nor a sorted one passes.
    names = [backbone.blocks[len(backbone.blocks) // 2], backbone.blocks[1]]
    dream_model = call_student(student_make_dream_model, backbone.model, list(names))
    if not isinstance(dream_model, keras.Model):
        raise ExerciseIncorrect(
            f"make_dream_model returned {type(dream_model).__name__}; expected a keras.Model, built with "
            "tf.keras.Model(inputs=base_model.input, outputs=layers)."
        )
    picture = tf.random.stateless_uniform((1, 64, 48, 3), seed=(1, 2), minval=-1, maxval=1)
    answer = dream_model(picture)
    if not isinstance(answer, (list, tuple)) or len(answer) != len(names):
        raise ExerciseIncorrect(
            f"for the layers {names} the model must return a list of {len(names)} activations, one per "
            f"layer; it returned {type(answer).__name__}"
            f"{f' of length {len(answer)}' if isinstance(answer, (list, tuple)) else ''}."
        )
    expected = models.feature_extractor(backbone, names)(picture)
    for name, got, want in zip(names, answer, expected):
        assert_close(np.asarray(got), np.asarray(want), f"activations of {name}", atol=1e-4)
    passed("make_dream_model returns the activations of the layers you name, in order.")


# --- Lesson 00 ---


def check_megapixels(student_megapixels: Callable) -> None:
    """Compare the student's ``megapixels(image)`` with height * width / 1e6 on three shapes."""
    for height, width in [(375, 500), (3000, 4000), (1, 1)]:
        picture = np.zeros((height, width, 3), dtype=np.uint8)
        answer = call_student(student_megapixels, picture)
        expected = height * width / 1e6
        if answer is None:
            raise ExerciseIncorrect("megapixels returned nothing; end the function with `return ...`.")
        assert_close(answer, expected, f"megapixels of a {height}x{width} image")
    passed("megapixels counts height x width pixels, in millions.")


# --- Lesson 03 ---


def check_weighted_loss(student_calc_loss_weighted: Callable, backbone: Any) -> None:
    """Lesson 03: ``calc_loss_weighted(img, model, layer_weights)`` must equal
    ``dream.calc_loss(img, model, layer_weights)``: the weighted sum of each layer's mean activation.

    Args:
        student_calc_loss_weighted: the student's function.
        backbone: the lesson's :class:`course_lib.models.Backbone`.
    """
    import tensorflow as tf

    from course_lib import dream, models

    names = list(backbone.dream_layers)
    model = models.feature_extractor(backbone, names)
    img = tf.random.stateless_uniform((96, 80, 3), seed=(3, 4), minval=-1, maxval=1)
    activations = model(tf.expand_dims(img, axis=0))
    means = [float(tf.reduce_mean(activation)) for activation in activations]
    sums = [float(tf.reduce_sum(activation)) for activation in activations]
    for weights in ([1.0, 1.0], [0.25, 2.0], [0.0, 1.0]):
        answer = call_student(student_calc_loss_weighted, img, model, list(weights))
        try:
            value = float(answer)
        except (TypeError, ValueError):
            raise ExerciseIncorrect(
                f"calc_loss_weighted returned {type(answer).__name__} with shape {np.shape(answer)}; expected "
                "one number (a scalar tensor). Add the weighted layer losses up with tf.reduce_sum."
            ) from None
        expected = float(dream.calc_loss(img, model, weights))
        if np.isclose(value, expected, rtol=1e-4, atol=1e-5):
            continue
        if np.isclose(value, sum(means), rtol=1e-4) and weights != [1.0, 1.0]:
            hint = "That is the unweighted loss: multiply each layer's mean by its weight."
        elif np.isclose(value, sum(w * s for w, s in zip(weights, sums)), rtol=1e-4):
            hint = "That is a weighted sum of the *summed* activations: use tf.math.reduce_mean for each layer."
        else:
            hint = "Each layer's loss is weight * tf.math.reduce_mean(activation); the total is their sum."
        raise ExerciseIncorrect(
            f"With layer_weights={weights}, calc_loss_weighted gave {value:.5f}, expected {expected:.5f}. {hint}"
        )
    passed("calc_loss_weighted adds up each layer's mean activation times its weight.")


# --- Lesson 04 ---


def check_gradient_ascent_step(student_step: Callable, backbone: Any) -> None:
    """Lesson 04: ``gradient_ascent_step(img, model, step_size)`` must return ``(loss, new_img)`` with
    ``new_img = clip(img + g / (std(g) + 1e-8) * step_size, -1, 1)``, ``g`` the gradient of
    ``dream.calc_loss`` at ``img`` and ``loss`` its value before the step (computed here directly).

    Args:
        student_step: the student's function.
        backbone: the lesson's :class:`course_lib.models.Backbone`.
    """
    import tensorflow as tf

    from course_lib import dream, models

    model = models.feature_extractor(backbone, list(backbone.dream_layers))
    # Values up to the edges of [-1, 1] and a large step, so that clipping matters.
    img = tf.random.stateless_uniform((72, 56, 3), seed=(5, 6), minval=-1, maxval=1)
    step_size = 0.05
    with tf.GradientTape() as tape:
        tape.watch(img)
        expected_loss = dream.calc_loss(img, model)
    gradients = tape.gradient(expected_loss, img)
    normalised = gradients / (tf.math.reduce_std(gradients) + 1e-8)
    expected_img = tf.clip_by_value(img + normalised * step_size, -1, 1).numpy()

    answer = call_student(student_step, img, model, step_size)
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
    assert_close(float(loss), float(expected_loss), "the loss (computed before the step)", atol=1e-4, rtol=1e-4)
    image = img.numpy().astype(np.float64)
    if new_img.max() > 1 + 1e-6 or new_img.min() < -1 - 1e-6:
        raise ExerciseIncorrect(
            f"new_img has values from {new_img.min():.3f} to {new_img.max():.3f}: clip it to [-1, 1] "
            "with tf.clip_by_value(img, -1, 1)."
        )
    descent = np.clip(image - normalised.numpy() * step_size, -1, 1)
    if np.allclose(new_img, descent, atol=1e-4):
        raise ExerciseIncorrect(
            "new_img went *down* the gradient (img - gradients * step_size): that makes the loss smaller. "
            "Gradient ascent adds: img + gradients * step_size."
        )
    unnormalised = np.clip(image + gradients.numpy() * step_size, -1, 1)
    if np.allclose(new_img, unnormalised, atol=1e-5):
        raise ExerciseIncorrect(
            "new_img moved by the raw gradient, which is tiny: divide the gradient by "
            "tf.math.reduce_std(gradients) + 1e-8 before the step."
        )
    assert_close(new_img, expected_img, "new_img after one step", atol=1e-4)
    passed("gradient_ascent_step normalises the gradient, steps up it and clips to [-1, 1].")


# --- Lesson 05 ---


def check_octave_shape(student_octave_shape: Callable) -> None:
    """Lesson 05: ``octave_shape(base_shape, n, octave_scale=1.30)`` must give the tutorial's octave
    size, ``int(side * octave_scale ** n)`` for height and width (compared with ``dream.octave_sizes``).
    """
    from course_lib import dream

    cases = [((375, 500), n, None) for n in range(-2, 3)]
    cases += [((293, 236), n, 1.5) for n in (-3, -1, 0, 2)] + [((1001, 749), 1, 1.3), ((640, 427), -1, 1.4)]
    for base_shape, n, scale in cases:
        arguments = (base_shape, n) if scale is None else (base_shape, n, scale)
        answer = call_student(student_octave_shape, *arguments)
        call = f"octave_shape({base_shape}, {n}{'' if scale is None else f', {scale}'})"
        if answer is None:
            raise ExerciseIncorrect(f"{call} returned nothing; end with `return height, width`.")
        try:
            height, width = (float(side) for side in answer)
        except (TypeError, ValueError):
            raise ExerciseIncorrect(
                f"{call} returned {answer!r}; expected a pair of whole numbers (height, width)."
            ) from None
        if not (height.is_integer() and width.is_integer()):
            raise ExerciseIncorrect(f"{call} returned ({height}, {width}); sizes are whole pixels: use int(...).")
        expected = dream.octave_sizes(base_shape, [n], dream.OCTAVE_SCALE if scale is None else scale)[0]
        factor = (dream.OCTAVE_SCALE if scale is None else scale) ** n
        if (height, width) == tuple(expected):
            continue
        if (height, width) == tuple(expected[::-1]):
            hint = "Height and width are swapped: return (height, width), in the order base_shape gives them."
        elif (height, width) == (round(base_shape[0] * factor), round(base_shape[1] * factor)):
            hint = "You rounded; the tutorial drops the fraction (int(...), like tf.cast to int32)."
        elif scale is not None and (height, width) == dream.octave_sizes(base_shape, [n])[0]:
            hint = "You used 1.30 instead of the octave_scale argument."
        else:
            hint = "Each side is multiplied by octave_scale ** n (a power: n = -2 means divide by 1.3 twice)."
        raise ExerciseIncorrect(f"{call} returned ({int(height)}, {int(width)}), expected {tuple(expected)}. {hint}")
    passed("octave_shape scales both sides by octave_scale ** n and drops the fraction.")


# --- Lesson 06 ---


def check_tile_bounds(student_tile_bounds: Callable) -> None:
    """Lesson 06: ``tile_bounds(length, tile_size)`` must cut ``0..length`` into as few tiles as
    possible (``ceil(length / tile_size)``), none longer than ``tile_size``, covering every pixel.

    Several answers are right (equal tiles, or full tiles and a shorter last one), so this checks
    those properties rather than comparing with ``tiles.tile_bounds``.
    """
    import math

    for length, tile_size in [(1000, 512), (2048, 512), (512, 512), (100, 512), (1650, 512), (7, 3), (1, 1), (513, 512)]:
        call = f"tile_bounds({length}, {tile_size})"
        answer = call_student(student_tile_bounds, length, tile_size)
        if answer is None:
            raise ExerciseIncorrect(f"{call} returned nothing; end with `return bounds`.")
        try:
            bounds = [int(bound) for bound in answer]
        except (TypeError, ValueError):
            raise ExerciseIncorrect(f"{call} returned {answer!r}; expected a list of whole numbers.") from None
        if not bounds or bounds[0] != 0:
            raise ExerciseIncorrect(f"{call} returned {bounds}; the first boundary must be 0 (the top or left edge).")
        if bounds[-1] != length:
            raise ExerciseIncorrect(
                f"{call} returned {bounds}; the last boundary must be {length}, the edge, so the pixels at the "
                "right and bottom edges are in a tile too (the tutorial's version skips them)."
            )
        sizes = [end - start for start, end in zip(bounds, bounds[1:])]
        if any(size <= 0 for size in sizes):
            raise ExerciseIncorrect(f"{call} returned {bounds}; boundaries must increase, every tile holding pixels.")
        if max(sizes) > tile_size:
            raise ExerciseIncorrect(
                f"{call} returned {bounds}: a tile of {max(sizes)} px, longer than tile_size={tile_size}."
            )
        fewest = math.ceil(length / tile_size)
        if len(sizes) != fewest:
            raise ExerciseIncorrect(
                f"{call} returned {bounds}: {len(sizes)} tiles where {fewest} suffice (ceil(length / tile_size)); "
                "every tile costs a forward and a backward pass."
            )
    passed("tile_bounds covers every pixel with as few tiles as possible, none longer than tile_size.")


# --- Lesson 07 ---


def _factor_range(factor: Any) -> tuple[float, float]:
    """A Keras factor (a number f means -f..f) as a (low, high) pair."""
    if factor is None:
        return (0.0, 0.0)
    if isinstance(factor, (int, float)):
        return (-float(factor), float(factor))
    low, high = factor
    return (float(low), float(high))


def check_augmenter(student_make_augmenter: Callable) -> None:
    """Compare the student's augmenter with the source's imageDataAugmenter settings.

    Expected: a horizontal RandomFlip, a RandomTranslation of 30/224 of the side in both
    directions, and a RandomZoom with independent height and width factors that scale the
    content by 0.9..1.1 (exactly 1/1.1 - 1 .. 1/0.9 - 1; +-0.1 is accepted as close enough).
    """
    import keras

    augment = call_student(student_make_augmenter, 0)
    if not isinstance(augment, keras.Layer):
        raise ExerciseIncorrect(f"make_augmenter should return a keras.Sequential of layers; got {type(augment).__name__}.")
    layers = {type(layer).__name__: layer for layer in getattr(augment, "layers", [augment])}
    missing = [name for name in ("RandomFlip", "RandomTranslation", "RandomZoom") if name not in layers]
    if missing:
        raise ExerciseIncorrect(f"The augmenter lacks {', '.join(missing)}; the source reflects, translates and scales.")
    if layers["RandomFlip"].mode != "horizontal":
        raise ExerciseIncorrect(
            f"RandomFlip mode is {layers['RandomFlip'].mode!r}; 'RandXReflection' flips left-right only: use 'horizontal'."
        )
    shift = 30 / 224
    translation = layers["RandomTranslation"]
    for axis in ("height_factor", "width_factor"):
        low, high = _factor_range(getattr(translation, axis))
        if abs(low + shift) > 2e-3 or abs(high - shift) > 2e-3:
            raise ExerciseIncorrect(
                f"RandomTranslation {axis} covers {low:.3f}..{high:.3f} of the side; the source's +-30 px on a "
                f"224 px input is +-{shift:.3f} (30 / 224)."
            )
    zoom = layers["RandomZoom"]
    exact = (1 / 1.1 - 1, 1 / 0.9 - 1)
    for axis in ("height_factor", "width_factor"):
        factor = getattr(zoom, axis)
        if factor is None:
            raise ExerciseIncorrect(
                "RandomZoom needs a width_factor too: the source scales x ('RandXScale') and y ('RandYScale') independently."
            )
        low, high = _factor_range(factor)
        if abs(low - exact[0]) > 0.012 or abs(high - exact[1]) > 0.012:
            raise ExerciseIncorrect(
                f"RandomZoom {axis} covers {low:.3f}..{high:.3f}; a scale of 0.9..1.1 needs about "
                f"{exact[0]:.3f}..{exact[1]:.3f} (a zoom factor z shows the content at 1 / (1 + z))."
            )
    batch = np.full((2, 48, 48, 3), 128.0, dtype=np.float32)
    output = np.asarray(augment(batch, training=True))
    if output.shape != batch.shape:
        raise ExerciseIncorrect(f"The augmenter changed the batch shape from {batch.shape} to {output.shape}.")
    passed("the augmenter flips left-right, shifts up to 30/224 of the side and scales by 0.9-1.1 in x and y.")


# --- Lesson 08 ---


def check_confusion_matrix(student_confusion_matrix: Callable) -> None:
    """Compare the student's confusion matrix with ``metrics.confusion_matrix`` (rows = true class)."""
    from course_lib import metrics

    rng = np.random.default_rng(8)
    cases = [
        (rng.integers(0, 4, 50), rng.integers(0, 4, 50), 4),
        (np.array([0, 0, 1, 1, 1]), np.array([0, 1, 1, 1, 0]), 3),  # class 2 never occurs: still 3x3
    ]
    for true_labels, predicted, classes in cases:
        expected = metrics.confusion_matrix(true_labels, predicted, classes)
        actual = np.asarray(call_student(student_confusion_matrix, true_labels, predicted, classes))
        if actual.shape == expected.shape and np.array_equal(actual, expected.T) and not np.array_equal(actual, expected):
            raise ExerciseIncorrect("Rows and columns are swapped: a row is the TRUE class, a column the PREDICTED one.")
        assert_close(actual, expected, f"confusion_matrix(true, predicted, {classes})", atol=0, rtol=0)
    passed("confusion_matrix counts true classes in rows and predictions in columns.")


# --- Lesson 09 ---


def check_laplacian_normalize(student_laplacian_normalize: Callable) -> None:
    """Compare the student's Laplacian-pyramid normalisation with ``classviz.laplacian_normalize``.

    The test gradient is deliberately unbalanced (strong fine detail, weak coarse structure), like
    a real classifier gradient, so returning it unchanged or dividing by one overall RMS both fail.
    """
    import tensorflow as tf

    from course_lib import classviz

    rng = np.random.default_rng(9)
    coarse = tf.image.resize(rng.normal(size=(2, 6, 6, 3)).astype(np.float32) * 0.05, [48, 48]).numpy()
    gradient = tf.constant(coarse + rng.normal(size=(2, 48, 48, 3)).astype(np.float32) * 20.0)
    expected = classviz.laplacian_normalize(gradient, 4).numpy()
    actual = np.asarray(call_student(student_laplacian_normalize, gradient, 4))
    if actual.shape == expected.shape:
        per_image_rms = np.sqrt(np.mean(gradient.numpy() ** 2, axis=(1, 2, 3), keepdims=True))
        if np.allclose(actual, gradient.numpy() / per_image_rms, atol=1e-3):
            raise ExerciseIncorrect("You divided the whole gradient by one RMS; divide EACH band by its own RMS.")
    assert_close(actual, expected, "laplacian_normalize(gradient, levels=4)", atol=1e-3, rtol=1e-3)
    passed("each Laplacian band of the gradient gets unit RMS before the bands are merged back.")
