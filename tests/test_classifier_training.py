"""Transfer learning: the split, the 10x head, saving, evaluation by class name, broken photos."""
from __future__ import annotations

import shutil
import warnings
import zipfile

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_lib import classifiers, data, metrics, models, plots, training
from conftest import PHOTOS_PER_CLASS

SMALL = 64  # px: small photos keep every test here fast; the code paths are the full ones


@pytest.fixture
def pets(pets_dir) -> data.LabeledImages:
    return data.image_folder(pets_dir)


def _mini_folder(pets_dir, root, classes: dict[str, str], per_class: int):
    """A folder ``root/<new name>/`` with the first ``per_class`` photos of each pets class (copies)."""
    for new_name, pets_class in classes.items():
        (root / new_name).mkdir(parents=True)
        for photo in sorted((pets_dir / pets_class).glob("*.jpg"))[:per_class]:
            shutil.copyfile(photo, root / new_name / photo.name)
    return root


# --- data and split -------------------------------------------------------------------------


def test_image_folder_lists_classes_sorted_and_ignores_top_level_files(pets, pets_dir):
    assert pets.class_names == tuple(sorted(p.name for p in pets_dir.iterdir() if p.is_dir()))
    assert (pets_dir / "manifest.csv").exists() and all(f.parent.parent == pets_dir for f in pets.files)
    assert set(pets.counts().values()) == {PHOTOS_PER_CLASS}


def test_split_is_stratified_seventy_thirty_per_class(pets):
    train, valid = data.split_each_label(pets, 0.7, seed=3)
    assert all(count == 21 for count in train.counts().values())  # 70% of 30
    assert all(count == 9 for count in valid.counts().values())
    assert not set(train.files) & set(valid.files)
    assert set(train.files) | set(valid.files) == set(pets.files)
    for part in (train, valid):  # every file keeps its own folder's label
        assert all(part.class_names[label] == path.parent.name for path, label in zip(part.files, part.labels))


def test_split_is_reproducible_with_a_seed_and_random_across_seeds(pets):
    first = data.split_each_label(pets, 0.7, seed=11)[1].files
    again = data.split_each_label(pets, 0.7, seed=11)[1].files
    other = data.split_each_label(pets, 0.7, seed=12)[1].files
    assert first == again
    assert set(first) != set(other)
    # 'randomized', not the first 21 by name: the validation part is not simply each class's tail
    tail = {f for name in pets.class_names for f in sorted(f for f in pets.files if f.parent.name == name)[21:]}
    assert set(first) != tail


def test_split_keeps_a_photo_on_each_side_and_rejects_bad_fractions(pets):
    tiny = pets.subset([i for i, label in enumerate(pets.labels) if i % PHOTOS_PER_CLASS < 2])  # 2 photos per class
    train, valid = data.split_each_label(tiny, 0.9, seed=1)
    assert set(train.counts().values()) == {1} and set(valid.counts().values()) == {1}
    for bad in (0.0, 1.0, -0.5, float("nan")):
        with pytest.raises(ValueError, match="train_fraction"):
            data.split_each_label(pets, bad)


def test_count_table_reports_counts_per_class(pets):
    train, valid = data.split_each_label(pets, 0.7, seed=1)
    table = data.count_table(train=train, validation=valid)
    assert "beagle" in table and "validation" in table
    assert [line.split() for line in table.splitlines() if line.startswith("cat ")] == [["cat", "21", "9"]]


def test_folder_errors_say_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.image_folder(tmp_path / "nowhere")
    (tmp_path / "only").mkdir()
    with pytest.raises(ValueError, match="at least two"):
        data.image_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "only" / "a.jpg").write_bytes(b"x")
    with pytest.raises(ValueError, match="empty.*has no images"):
        data.image_folder(tmp_path)


# --- augmentation -----------------------------------------------------------------------------


def test_augmenter_uses_the_sources_ranges_at_any_input_size():
    layers = {type(layer).__name__: layer for layer in training.augmenter(seed=0).layers}
    assert layers["RandomFlip"].mode == "horizontal"
    assert layers["RandomTranslation"].height_factor == pytest.approx(30 / 224)
    assert layers["RandomTranslation"].width_factor == pytest.approx(30 / 224)
    low, high = layers["RandomZoom"].height_factor
    assert 1 / (1 + high) == pytest.approx(0.9) and 1 / (1 + low) == pytest.approx(1.1)


def test_augmenter_changes_photos_but_not_their_size(pets):
    pixels, _ = data.read_images(pets.subset([0]), SMALL)
    batch = np.repeat(pixels, 4, axis=0).astype("float32")
    augmented = np.asarray(training.augmenter(seed=5)(batch, training=True))
    assert augmented.shape == batch.shape
    assert all(not np.allclose(copy, batch[0]) for copy in augmented)
    assert len({copy.tobytes() for copy in augmented}) == 4


# --- the classifier and its 10x head --------------------------------------------------------


@pytest.fixture(scope="module")
def dog_backbone():
    return models.backbone("dog_breeds", verbose=False)


def test_build_classifier_adds_new_fc_with_logits_and_leaves_shared_backbone_alone(dog_backbone):
    before = [w.copy() for w in dog_backbone.model.get_weights()[:3]]
    trainable_before = [layer.trainable for layer in dog_backbone.model.layers]
    classifier = classifiers.build_classifier(dog_backbone, ["a", "b", "c"], input_size=SMALL)
    assert isinstance(classifier, models.Classifier)
    head = classifier.model.get_layer("new_fc")
    assert head.units == 3 and head.activation.__name__ == "linear"
    assert classifier.model.layers[-1].name == "prob"
    classifiers.unfreeze_top(classifier, 20)
    assert classifiers.base_model(classifier) is not dog_backbone.model
    classifiers.base_model(classifier).weights[0].assign(tf.zeros_like(classifiers.base_model(classifier).weights[0]))
    assert all(np.array_equal(a, b) for a, b in zip(before, dog_backbone.model.get_weights()[:3]))
    # unfreezing the copy's top 20 layers must not unfreeze anything in the shared backbone
    assert [layer.trainable for layer in dog_backbone.model.layers] == trainable_before


def test_build_classifier_rejects_bad_arguments(dog_backbone):
    for names in (["only"], ["a", "a"], ["a", ""]):
        with pytest.raises(ValueError, match="class_names"):
            classifiers.build_classifier(dog_backbone, names)
    with pytest.raises(ValueError, match="input_size"):
        classifiers.build_classifier(dog_backbone, ["a", "b"], input_size=0)


def test_new_fc_takes_ten_times_larger_steps_than_the_base(dog_backbone, pets):
    """One real step of plain SGD: update / gradient is the learning rate, 10x for new_fc."""
    classifier = classifiers.build_classifier(dog_backbone, pets.class_names, input_size=SMALL, dropout_rate=0.0)
    classifiers.unfreeze_top(classifier, 12)
    head = classifier.model.get_layer("new_fc")  # at zero it would pass no gradient to the base
    head.kernel.assign(keras.initializers.GlorotUniform(seed=0)(head.kernel.shape))
    trainer = training.Trainer(classifier, learning_rate=0.05, momentum=0.0, augment=None)
    assert trainer.base_variables, "fine-tuning must make some base weights trainable"
    pixels, photos = data.read_images(pets.subset(np.arange(0, 9 * PHOTOS_PER_CLASS, PHOTOS_PER_CLASS)), SMALL)
    variables = trainer.head_variables + trainer.base_variables
    logits_model = keras.Model(classifier.model.input, classifier.model.get_layer("new_fc").output)
    with tf.GradientTape() as tape:
        logits = logits_model(pixels.astype("float32") / 127.5 - 1.0, training=True)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(photos.labels, logits)
    gradients = [g.numpy() for g in tape.gradient(loss, variables)]
    before = [v.numpy().copy() for v in variables]
    trainer.train_batch(pixels, photos.labels)
    rates = []
    for variable, old, gradient in zip(variables, before, gradients):
        strong = np.abs(gradient) >= np.quantile(np.abs(gradient), 0.9)  # well above float32 round-off
        rates.append(np.median((old - variable.numpy())[strong] / gradient[strong]))
    head_count = len(trainer.head_variables)
    assert np.allclose(rates[:head_count], 0.5, rtol=1e-3)  # 0.05 x factor 10
    assert np.allclose(rates[head_count:], 0.05, rtol=1e-3)


def test_new_fc_starts_at_chance_and_frozen_phase_trains_only_new_fc(dog_backbone, pets):
    classifier = classifiers.build_classifier(dog_backbone, pets.class_names, input_size=SMALL)
    pixels, _ = data.read_images(pets.subset([0, 5 * PHOTOS_PER_CLASS]), SMALL)
    np.testing.assert_allclose(classifiers.predict_probabilities(classifier, pixels), 1 / 9, rtol=1e-6)
    trainer = training.Trainer(classifier, augment=None)
    assert trainer.base_variables == []
    assert {v.path.split("/")[0] for v in trainer.head_variables} == {"new_fc"}


# --- training, saving, loading ----------------------------------------------------------------


@pytest.mark.slow
def test_training_improves_validation_and_save_load_gives_identical_predictions(dog_backbone, pets, tmp_path):
    subset = pets.subset([i for i in range(len(pets)) if i % PHOTOS_PER_CLASS < 8])
    train, valid = data.split_each_label(subset, 0.5, seed=2)
    classifier = classifiers.build_classifier(dog_backbone, pets.class_names, input_size=SMALL)
    plot = plots.TrainingProgressPlot(enabled=False)
    history = training.train_classifier(classifier, train, valid, epochs=3, fine_tune_epochs=1, patience=3,
                                        batch_size=8, seed=2, callbacks=[plot], verbose=False)  # fmt: skip
    assert [r["phase"] for r in history.epochs] == ["head"] * 3 + ["fine-tune"]
    assert len(plot.records) == 4 and plot.records[-1]["val_accuracy"] == history.epochs[-1]["val_accuracy"]
    # new_fc starts at zero, i.e. at chance: loss ln(9). Better than chance means it learned.
    assert history.best()["val_loss"] < np.log(9) and history.best()["val_accuracy"] > 1 / 9
    assert classifiers.base_model(classifier).trainable_weights == []  # left frozen after fine-tuning

    path = classifiers.save_classifier(classifier, tmp_path / "models" / "pets.keras", trained_on=train)
    assert sorted(p.name for p in path.parent.iterdir()) == ["pets.keras"]  # no half-written leftovers
    loaded = classifiers.load_classifier(path)
    assert loaded.class_names == pets.class_names and loaded.input_size == SMALL
    pixels, _ = data.read_images(valid, SMALL)
    np.testing.assert_array_equal(
        classifiers.predict_probabilities(loaded, pixels), classifiers.predict_probabilities(classifier, pixels)
    )
    assert classifiers.classifier_info(path)["training_files"] == train.relative_names()
    assert keras.models.load_model(path, compile=False).get_layer("new_fc").units == 9  # still a plain Keras file


def test_training_that_diverges_to_nan_is_a_clear_error_not_a_type_error(dog_backbone, pets):
    subset = pets.subset([i for i in range(len(pets)) if i % PHOTOS_PER_CLASS < 2])
    train, valid = data.split_each_label(subset, 0.5, seed=2)
    classifier = classifiers.build_classifier(dog_backbone, pets.class_names, input_size=SMALL)
    # 1e38 x the head's factor 10 overflows float32: the head's weights become inf/NaN at once
    with pytest.raises(ValueError, match="diverged.*[Ll]ower the learning rate"):
        training.train_classifier(classifier, train, valid, epochs=1, learning_rate=1e38, augment=None,
                                  batch_size=8, seed=2, verbose=False)  # fmt: skip


def test_a_bad_learning_rate_is_refused_before_any_photo_is_read(dog_backbone, tmp_path):
    for name in ("a", "b"):  # unreadable photos: reading them would warn and fail differently
        (tmp_path / name).mkdir()
        for index in range(2):
            (tmp_path / name / f"{index}.jpg").write_text("text")
    train, valid = data.split_each_label(data.image_folder(tmp_path), 0.5, seed=1)
    classifier = classifiers.build_classifier(dog_backbone, ["a", "b"], input_size=SMALL)
    for bad in (0.0, -1e-3, float("nan")):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a warning would mean the photos were read first
            with pytest.raises(ValueError, match="learning_rate .*must be a positive number"):
                training.train_classifier(classifier, train, valid, learning_rate=bad, verbose=False)


def test_unseen_leaves_out_recorded_training_photos_from_another_split(dog_backbone, pets, tmp_path):
    """Lesson 08's case: a model saved from a 20-per-class split, evaluated on a 30-per-class split."""
    small_train, _ = data.split_each_label(data.image_folder(pets.root, max_per_class=20), 0.7, seed=5)
    _, big_valid = data.split_each_label(pets, 0.7, seed=5)
    classifier = classifiers.build_classifier(dog_backbone, pets.class_names, input_size=SMALL)
    path = classifiers.save_classifier(classifier, tmp_path / "small.keras", trained_on=small_train)
    trained_names = set(small_train.relative_names())
    overlap = [name for name in big_valid.relative_names() if name in trained_names]
    assert overlap  # the same seed on other lists: the "validation" part holds training photos

    fair = metrics.unseen(big_valid, classifiers.classifier_info(path))
    assert len(fair) == len(big_valid) - len(overlap)
    assert not set(fair.relative_names()) & trained_names
    assert set(fair.files) <= set(big_valid.files)
    assert all(fair.class_names[label] == f.parent.name for f, label in zip(fair.files, fair.labels))
    # the training LabeledImages or plain names give the same answer; nothing recorded keeps all
    assert metrics.unseen(big_valid, small_train).files == fair.files
    assert metrics.unseen(big_valid, sorted(trained_names)).files == fair.files
    assert metrics.unseen(big_valid, {"training_files": None}) is big_valid
    assert metrics.unseen(big_valid, None) is big_valid


def test_unseen_refuses_a_data_set_made_only_of_training_photos(pets):
    train, _ = data.split_each_label(pets, 0.7, seed=5)
    with pytest.raises(ValueError, match="none is left to judge"):
        metrics.unseen(train, train)
    with pytest.raises(ValueError, match="single string"):
        metrics.unseen(train, "beagle/x.jpg")


def test_save_refuses_other_extensions_and_load_explains_missing_or_foreign_files(dog_backbone, tmp_path):
    classifier = classifiers.build_classifier(dog_backbone, ["a", "b"], input_size=SMALL)
    with pytest.raises(ValueError, match=r"\.keras"):
        classifiers.save_classifier(classifier, tmp_path / "model.h5")
    with pytest.raises(FileNotFoundError, match="Train one first"):
        classifiers.load_classifier(tmp_path / "missing.keras")
    classifier.model.save(tmp_path / "plain.keras")
    with pytest.raises(ValueError, match="without the course's class names"):
        classifiers.load_classifier(tmp_path / "plain.keras")
    (tmp_path / "text.keras").write_text("not a model")
    with pytest.raises(ValueError, match="not a zip"):
        classifiers.load_classifier(tmp_path / "text.keras")
    with zipfile.ZipFile(classifiers.save_classifier(classifier, tmp_path / "ok.keras")) as archive:
        assert classifiers.METADATA_ENTRY in archive.namelist()


# --- evaluation -------------------------------------------------------------------------------


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    confusion = metrics.confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 0, 2], 3)
    assert confusion.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]
    with pytest.raises(ValueError, match="pair up"):
        metrics.confusion_matrix([0], [0, 1], 2)
    with pytest.raises(ValueError, match="0..1"):
        metrics.confusion_matrix([0, 2], [0, 1], 2)


def test_evaluation_matches_classes_by_name_not_folder_order(pets_dir, tmp_path):
    """The embedded model lists Samoyed 15th and golden_retriever 6th; the folder sorts them 1st and 2nd."""
    folder = _mini_folder(pets_dir, tmp_path / "eval", {"Samoyed": "samoyed", "golden_retriever": "golden_retriever",
                                                         "Shih-Tzu": "shih_tzu"}, per_class=8)  # fmt: skip
    dataset = data.image_folder(folder)
    assert dataset.class_names == ("Samoyed", "Shih-Tzu", "golden_retriever")
    classifier = models.dog_breed_classifier()
    result = metrics.evaluate(classifier, dataset)
    rows = {name: result.confusion[classifier.class_index(name)].sum() for name in dataset.class_names}
    assert rows == {"Samoyed": 8, "Shih-Tzu": 8, "golden_retriever": 8}
    assert result.accuracy >= 0.8, result.report()  # a real, trained classifier: folder order would give ~0
    assert set(result.per_class_accuracy()) == set(dataset.class_names)
    assert "Samoyed" in result.report() and result.to_json()["count"] == 24


def test_evaluation_names_classes_the_classifier_does_not_know(pets_dir, tmp_path):
    folder = _mini_folder(pets_dir, tmp_path / "eval", {"Samoyed": "samoyed", "unicorn": "cat"}, per_class=2)
    with pytest.raises(ValueError, match="unicorn"):
        metrics.evaluate(models.dog_breed_classifier(), data.image_folder(folder))


def test_broken_images_are_skipped_with_a_warning_naming_them(pets_dir, tmp_path):
    folder = _mini_folder(pets_dir, tmp_path / "data", {"Samoyed": "samoyed", "pug": "cat"}, per_class=3)
    good = next((folder / "Samoyed").glob("*.jpg"))
    (folder / "Samoyed" / "truncated.jpg").write_bytes(good.read_bytes()[:300])
    (folder / "pug" / "notes.jpg").write_text("this is not a photo")
    dataset = data.image_folder(folder)
    assert len(dataset) == 8
    with pytest.warns(UserWarning, match="Skipped 2 unreadable") as caught:
        pixels, readable = data.read_images(dataset, SMALL)
    message = str(caught[0].message)
    assert "truncated.jpg" in message and "notes.jpg" in message
    assert pixels.shape == (6, SMALL, SMALL, 3) and len(readable) == 6
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert len(metrics.evaluate(models.dog_breed_classifier(), dataset).files) == 6


def test_a_class_whose_photos_are_all_unreadable_is_an_error(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.jpg").write_text("text")
    with pytest.raises(ValueError, match="could be read"), pytest.warns(UserWarning):
        data.read_images(data.image_folder(tmp_path), SMALL)


def test_confusion_chart_and_training_plot_are_labelled():
    figure = plots.confusion_chart(np.array([[3, 1], [0, 4]]), ["beagle", "cat"], title="test")
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.get_yticklabels()] == ["beagle", "cat"]
    assert axes.get_xlabel() == "predicted class" and "87.5%" in figure._suptitle.get_text()
    with pytest.raises(ValueError, match="square"):
        plots.confusion_chart(np.ones((2, 3)), ["a", "b"])
    records = [{"epoch": 1, "phase": "head", "loss": 1.0, "accuracy": 0.5, "val_loss": 0.9, "val_accuracy": 0.6},
               {"epoch": 2, "phase": "fine-tune", "loss": 0.5, "accuracy": 0.8, "val_loss": 0.4, "val_accuracy": 0.9}]
    curves = plots.plot_training_history(records)
    assert "90.0%" in curves._suptitle.get_text() and curves.axes[1].get_ylabel().startswith("loss")
