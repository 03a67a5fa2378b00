"""Lesson 07's checks: the right answers pass, and each single-line slip fails with a hint naming the fix."""
from __future__ import annotations

import inspect
import textwrap

import keras
import pytest
import tensorflow as tf

from course_lib import checks


def add_head(base, num_classes):
    inputs = keras.Input(shape=(None, None, 3))
    features = base(inputs, training=False)
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
    dropped = keras.layers.Dropout(0.2, name="dropout")(pooled)
    logits = keras.layers.Dense(num_classes, kernel_initializer="zeros", name="new_fc")(dropped)
    probabilities = keras.layers.Softmax(name="prob")(logits)
    return keras.Model(inputs, probabilities)


def train_step(model, images, labels, head_variables, base_variables, head_optimizer, base_optimizer):
    with tf.GradientTape() as tape:
        logits = model(images, training=True)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    gradients = tape.gradient(loss, head_variables + base_variables)
    head_gradients = gradients[:len(head_variables)]
    base_gradients = gradients[len(head_variables):]
    head_optimizer.apply(head_gradients, head_variables)
    base_optimizer.apply(base_gradients, base_variables)
    return loss, logits


def slipped(function, old: str, new: str):
    """``function`` with one line changed: the student's slip."""
    source = textwrap.dedent(inspect.getsource(function))
    assert old in source, f"{old!r} is not in {function.__name__}"
    namespace = {"keras": keras, "tf": tf}
    exec(compile(source.replace(old, new), "<slip>", "exec"), namespace)  # noqa: S102 - our own test code
    return namespace[function.__name__]


def make_augmenter(seed):
    shift = 30 / 224
    zoom = (1 / 1.1 - 1, 1 / 0.9 - 1)
    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomTranslation(shift, shift, fill_mode="constant", seed=seed + 1),
        keras.layers.RandomZoom(zoom, zoom, fill_mode="constant", seed=seed + 2),
    ])


# --- the augmenter ---------------------------------------------------------------------------------

def test_check_augmenter_passes_the_right_answer(capsys):
    checks.check_augmenter(make_augmenter)
    assert capsys.readouterr().out.startswith("Correct:")


@pytest.mark.parametrize(("old", "new", "hint"), [
    ("shift = 30 / 224", "shift = 30", "not pixels"),
    ("shift = 30 / 224", "shift = 30 / 160", "30 / 224"),
    ("zoom = (1 / 1.1 - 1, 1 / 0.9 - 1)", "zoom = (0.9, 1.1)", "not scales"),
    ("zoom = (1 / 1.1 - 1, 1 / 0.9 - 1)", "zoom = (-0.2, 0.2)", "1 / \\(1 \\+ z\\)"),
    ('RandomFlip("horizontal"', 'RandomFlip("vertical"', "horizontal"),
    ("RandomZoom(zoom, zoom,", "RandomZoom(zoom,", "width_factor"),
])
def test_check_augmenter_names_the_slip(old, new, hint):
    with pytest.raises(checks.ExerciseIncorrect, match=hint):
        checks.check_augmenter(slipped(make_augmenter, old, new))


# --- the head --------------------------------------------------------------------------------------

def test_check_head_passes_the_right_answer(capsys):
    checks.check_head(add_head)
    assert capsys.readouterr().out.startswith("Correct:")


@pytest.mark.parametrize(("old", "new", "hint"), [
    ('kernel_initializer="zeros", ', "", "kernel_initializer='zeros'"),
    ('kernel_initializer="zeros", name="new_fc"', 'kernel_initializer="zeros", activation="softmax", name="new_fc"',
     "must output logits"),
    ('probabilities = keras.layers.Softmax(name="prob")(logits)', "probabilities = logits", "name='prob'"),
    ('keras.layers.GlobalAveragePooling2D(name="avg_pool")', 'keras.layers.Flatten(name="avg_pool")', "pool the feature maps"),
    ('keras.layers.GlobalAveragePooling2D(name="avg_pool")', 'keras.layers.GlobalMaxPooling2D(name="avg_pool")',
     "GlobalAveragePooling2D"),
    ("Dropout(0.2", "Dropout(0.5", "0.2"),
    ("shape=(None, None, 3)", "shape=(160, 160, 3)", "any image size"),
    ("Dense(num_classes", "Dense(1000", "one unit per class"),
    ('name="new_fc"', 'name="fc"', "'new_fc'"),
    ("features = base(inputs, training=False)", "features = inputs", "base you were given"),
    ('dropped = keras.layers.Dropout(0.2, name="dropout")(pooled)', "dropped = pooled", "'dropout'"),
])
def test_check_head_names_the_slip(old, new, hint):
    with pytest.raises(checks.ExerciseIncorrect, match=hint):
        checks.check_head(slipped(add_head, old, new))


def test_check_head_says_a_stub_is_not_done():
    def stub(base, num_classes):
        raise NotImplementedError("build the new head")

    with pytest.raises(checks.ExerciseNotDone, match="not written yet"):
        checks.check_head(stub)


# --- the step with two learning rates -----------------------------------------------------------------

def test_check_train_step_passes_the_right_answer_and_the_library_step(capsys):
    from course_lib import training

    checks.check_train_step(train_step)
    checks.check_train_step(training.two_rate_step)
    assert capsys.readouterr().out.count("Correct:") == 2


@pytest.mark.parametrize(("old", "new", "hint"), [
    ("from_logits=True", "from_logits=False", "from_logits=True"),
    ("SparseCategoricalCrossentropy(from_logits=True)", 'SparseCategoricalCrossentropy(from_logits=True, reduction="sum")',
     "SUM"),
    ("head_optimizer.apply(head_gradients, head_variables)\n    base_optimizer.apply(base_gradients, base_variables)",
     "head_optimizer.apply(base_gradients, base_variables)\n    base_optimizer.apply(head_gradients, head_variables)",
     "swapped"),
    ("head_optimizer.apply(head_gradients, head_variables)", "base_optimizer.apply(head_gradients, head_variables)",
     "same variables"),
    ("    base_optimizer.apply(base_gradients, base_variables)\n", "", "base did not move"),
    ("    head_optimizer.apply(head_gradients, head_variables)\n", "", "head \\(new_fc\\) did not move"),
    ("head_optimizer.apply(head_gradients, head_variables)",
     "head_optimizer.apply([-g for g in head_gradients], head_variables)", "UP the gradient"),
    ("model(images, training=True)", "model(images)", "training=True"),
    ("return loss, logits", "return loss", "pair \\(loss, logits\\)"),
    ("return loss, logits", "return float(loss), logits", "compiled"),
    ("return loss, logits", "return loss.numpy(), logits", "compiled"),
    ("gradients[len(head_variables):]", "gradients[1:]", "Split the gradient list"),
    ("tape.gradient(loss, head_variables + base_variables)", "tape.gradient(loss, base_variables + head_variables)",
     "Split the gradient list"),
    ("        loss = keras", "    loss = keras", "GradientTape"),
])
def test_check_train_step_names_the_slip(old, new, hint):
    with pytest.raises(checks.ExerciseIncorrect, match=hint):
        checks.check_train_step(slipped(train_step, old, new))


def test_check_train_step_says_a_stub_is_not_done():
    def stub(*args):
        raise NotImplementedError("write the step")

    with pytest.raises(checks.ExerciseNotDone, match="not written yet"):
        checks.check_train_step(stub)


def test_check_head_and_build_classifier_accept_a_sequential_with_or_without_an_input(capsys):
    from course_lib import classifiers, models

    def sequential(base, num_classes, with_input=True):
        layers = [keras.Input(shape=(None, None, 3))] if with_input else []
        return keras.Sequential(layers + [
            base, keras.layers.GlobalAveragePooling2D(name="avg_pool"), keras.layers.Dropout(0.2, name="dropout"),
            keras.layers.Dense(num_classes, kernel_initializer="zeros", name="new_fc"), keras.layers.Softmax(name="prob"),
        ])

    for with_input in (True, False):
        checks.check_head(lambda base, n: sequential(base, n, with_input))
        classifier = classifiers.build_classifier(models.backbone("dog_breeds", verbose=False), ["a", "b"], input_size=64,
                                                  head=lambda base, n: sequential(base, n, with_input))  # fmt: skip
        assert keras.Model(classifier.model.input, classifier.model.get_layer("new_fc").output).output_shape == (None, 2)
    assert capsys.readouterr().out.count("Correct:") == 2

    def never_built(base, num_classes):
        return keras.Sequential([keras.layers.Dense(num_classes, name="new_fc")])

    with pytest.raises(checks.ExerciseIncorrect, match="never built"):
        checks.check_head(never_built)
