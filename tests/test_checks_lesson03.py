"""Lesson 03's checks: the tutorial's calc_loss passes; each single-line slip is caught with a hint."""
from __future__ import annotations

import pytest
import tensorflow as tf

from course_lib import checks, models
from course_lib.checks import ExerciseIncorrect, ExerciseNotDone


@pytest.fixture(scope="module")
def backbone():
    return models.backbone("dog_breeds", verbose=False)


def _calc_loss(img, model, batch=True, reduce=tf.math.reduce_mean, wrap=True, total=tf.reduce_sum):
    """The tutorial's calc_loss; each keyword undoes one of its lines."""
    img_batch = tf.expand_dims(img, axis=0) if batch else img
    layer_activations = model(img_batch)
    if wrap and len(layer_activations) == 1:
        layer_activations = [layer_activations]
    losses = []
    for act in layer_activations:
        loss = reduce(act)
        losses.append(loss)
    return total(losses)


def test_the_tutorials_calc_loss_passes(backbone, capsys):
    checks.check_calc_loss(_calc_loss, backbone)
    assert capsys.readouterr().out.startswith("Correct:")


def test_the_libraries_calc_loss_passes(backbone, capsys):
    from course_lib.dream import calc_loss

    checks.check_calc_loss(calc_loss, backbone)
    assert capsys.readouterr().out.startswith("Correct:")


def test_a_missing_batch_axis_gets_the_expand_dims_hint_not_a_keras_traceback(backbone):
    with pytest.raises(ExerciseIncorrect, match=r"add a batch axis.*tf.expand_dims\(img, axis=0\)") as raised:
        checks.check_calc_loss(lambda img, model: _calc_loss(img, model, batch=False), backbone)
    assert len(str(raised.value)) < 400, "one short message, not Keras's dump of the input array"


def test_sums_instead_of_means_are_explained(backbone):
    with pytest.raises(ExerciseIncorrect, match="averaged so that a big shallow layer.*does not drown"):
        checks.check_calc_loss(lambda img, model: _calc_loss(img, model, reduce=tf.math.reduce_sum), backbone)


def test_only_the_first_layer_is_caught(backbone):
    def first_only(img, model):
        layer_activations = model(tf.expand_dims(img, axis=0))
        losses = []
        for act in layer_activations:
            losses.append(tf.math.reduce_mean(act))
            return tf.reduce_sum(losses)  # the slip: return inside the loop

    with pytest.raises(ExerciseIncorrect, match="first layer's mean alone"):
        checks.check_calc_loss(first_only, backbone)


def test_only_the_last_layer_is_caught(backbone):
    def last_only(img, model):
        for act in model(tf.expand_dims(img, axis=0)):
            loss = tf.math.reduce_mean(act)
        return loss

    with pytest.raises(ExerciseIncorrect, match="last layer's mean alone"):
        checks.check_calc_loss(last_only, backbone)


def test_averaging_the_layers_instead_of_adding_is_caught(backbone):
    with pytest.raises(ExerciseIncorrect, match=r"\*average\* of the layers' means"):
        checks.check_calc_loss(lambda img, model: _calc_loss(img, model, total=tf.reduce_mean), backbone)


def test_one_mean_over_all_layers_is_caught(backbone):
    with pytest.raises(ExerciseIncorrect, match="different shapes"):
        checks.check_calc_loss(lambda img, model: tf.reduce_mean(model(tf.expand_dims(img, 0))), backbone)


def test_the_lessons_global_model_instead_of_the_argument_is_caught(backbone):
    dream_model = models.feature_extractor(backbone)
    with pytest.raises(ExerciseIncorrect, match="use the `model` argument"):
        checks.check_calc_loss(lambda img, model: _calc_loss(img, dream_model), backbone)


def test_a_single_output_not_wrapped_in_a_list_is_caught_where_it_breaks_inside_tf_function(backbone):
    # Eagerly the slip is harmless (iterating over a batch of one); inside a tf.function it fails.
    with pytest.raises(ExerciseIncorrect, match=r"single output layer.*layer_activations = \[layer_activations\]"):
        checks.check_calc_loss(lambda img, model: _calc_loss(img, model, wrap=False), backbone)


def test_a_list_per_layer_is_asked_to_be_one_number(backbone):
    def per_layer(img, model):
        return [tf.math.reduce_mean(a) for a in model(tf.expand_dims(img, axis=0))]

    with pytest.raises(ExerciseIncorrect, match="one number"):
        checks.check_calc_loss(per_layer, backbone)


def test_the_students_print_is_not_in_the_checks_output(backbone, capsys):
    def chatty(img, model):
        print("Tracing")
        return _calc_loss(img, model)

    checks.check_calc_loss(chatty, backbone)
    assert capsys.readouterr().out.splitlines() == [
        "Correct: calc_loss adds up each layer's mean activation, for one layer or several, also inside a tf.function."]


def test_a_stub_is_not_done(backbone):
    def stub(img, model):
        raise NotImplementedError("write calc_loss")

    with pytest.raises(ExerciseNotDone, match="not written yet"):
        checks.check_calc_loss(stub, backbone)


def test_the_weighted_loss_check_gives_the_batch_axis_hint_too(backbone):
    def no_batch(img, model, layer_weights):
        return tf.reduce_sum([w * tf.reduce_mean(a) for w, a in zip(layer_weights, model(img))])

    with pytest.raises(ExerciseIncorrect, match="tf.expand_dims"):
        checks.check_weighted_loss(no_batch, backbone)
