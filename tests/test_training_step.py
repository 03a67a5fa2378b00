"""The pieces lesson 07's student writes, as the library has them: add_head, two_rate_step, and training
with the student's own head and step; fine-tuning again from the head phase's weights."""
from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_lib import classifiers, data, models, training
from conftest import PHOTOS_PER_CLASS

SMALL = 64


@pytest.fixture(scope="module")
def dog_backbone():
    return models.backbone("dog_breeds", verbose=False)


@pytest.fixture
def tiny_split(pets_dir):
    pets = data.image_folder(pets_dir)
    subset = pets.subset([i for i in range(len(pets)) if i % PHOTOS_PER_CLASS < 4])
    return data.split_each_label(subset, 0.5, seed=2)


def test_build_classifier_is_frozen_copy_plus_add_head(dog_backbone):
    classifier = classifiers.build_classifier(dog_backbone, ["a", "b", "c"], input_size=SMALL)
    base = classifiers.base_model(classifier)
    assert base is not dog_backbone.model and not base.trainable
    assert [layer.name for layer in classifier.model.layers[1:]] == [base.name, "avg_pool", "dropout", "new_fc", "prob"]
    assert classifier.model.get_layer("dropout").rate == pytest.approx(0.2)
    np.testing.assert_array_equal(classifier.model.get_layer("new_fc").get_weights()[0], 0)


def test_build_classifier_takes_the_students_head_and_checks_its_names(dog_backbone):
    calls = []

    def head(base, num_classes):
        calls.append(num_classes)
        return classifiers.add_head(base, num_classes, dropout_rate=0.1)

    classifier = classifiers.build_classifier(dog_backbone, ["a", "b"], input_size=SMALL, head=head)
    assert calls == [2] and classifier.model.get_layer("dropout").rate == pytest.approx(0.1)

    def unnamed(base, num_classes):
        inputs = keras.Input(shape=(None, None, 3))
        pooled = keras.layers.GlobalAveragePooling2D()(base(inputs))
        return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(pooled))

    with pytest.raises(ValueError, match="no layer named avg_pool, dropout, new_fc, prob"):
        classifiers.build_classifier(dog_backbone, ["a", "b"], input_size=SMALL, head=unnamed)


def test_two_rate_step_works_while_the_base_is_frozen(dog_backbone):
    classifier = classifiers.build_classifier(dog_backbone, ["a", "b", "c"], input_size=SMALL)
    head = classifier.model.get_layer("new_fc")
    logits_model = keras.Model(classifier.model.input, head.output)
    images = tf.random.stateless_uniform((3, SMALL, SMALL, 3), seed=(1, 2), minval=-1, maxval=1)
    loss, logits = training.two_rate_step(logits_model, images, tf.constant([0, 1, 2]), head.trainable_variables, [],
                                          keras.optimizers.SGD(0.1), keras.optimizers.SGD(0.01))  # fmt: skip
    assert float(loss) == pytest.approx(np.log(3), rel=1e-5) and logits.shape == (3, 3)
    assert np.any(head.get_weights()[0] != 0)


@pytest.mark.slow
def test_training_runs_the_given_step_in_both_phases_and_can_fine_tune_again(dog_backbone, tiny_split):
    train, valid = tiny_split
    calls = {"head": 0, "full": 0}

    def counting_step(model, images, labels, head_variables, base_variables, head_optimizer, base_optimizer):
        calls["full" if base_variables else "head"] += 1  # counted while tracing: once per compiled step kind
        return training.two_rate_step(model, images, labels, head_variables, base_variables,
                                      head_optimizer, base_optimizer)  # fmt: skip

    classifier = classifiers.build_classifier(dog_backbone, train.class_names, input_size=SMALL)
    history = training.train_classifier(classifier, train, valid, epochs=2, fine_tune_epochs=1, batch_size=8,
                                        augment=None, step=counting_step, seed=2, verbose=False)  # fmt: skip
    assert calls["head"] >= 1 and calls["full"] >= 1
    assert [r["phase"] for r in history.epochs] == ["head", "head", "fine-tune"]
    assert history.head_weights is not None

    again = classifiers.build_classifier(dog_backbone, train.class_names, input_size=SMALL)
    again.model.set_weights(history.head_weights)
    second = training.train_classifier(again, train, valid, epochs=0, fine_tune_epochs=1, batch_size=8,
                                       augment=None, seed=2, verbose=False)  # fmt: skip
    assert [r["phase"] for r in second.epochs] == ["fine-tune"] and second.head_weights is None
    with pytest.raises(ValueError, match="nothing to train"):
        training.train_classifier(again, train, valid, epochs=0, fine_tune_epochs=0, verbose=False)


def test_update_per_gradient_recovers_the_learning_rate():
    variable = keras.Variable(np.ones(50, dtype="float32"))
    gradient = np.linspace(-1, 1, 50).astype("float32")
    before = [variable.numpy().copy()]
    keras.optimizers.SGD(0.03).apply([tf.constant(gradient)], [variable])
    assert training.update_per_gradient([variable], before, [gradient]) == [pytest.approx(0.03, rel=1e-4)]
