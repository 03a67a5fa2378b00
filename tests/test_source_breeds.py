"""The MATLAB source's own six breeds: InceptionV3's ImageNet classifier online, the embedded one offline.

Offline (here and in CI) the ImageNet weights cannot be had, so the wiring is tested on the same
architecture with random weights; nothing random is ever shown as a result.
"""
from __future__ import annotations

import numpy as np
import pytest

from course_lib import models

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def random_imagenet_classifier() -> models.Classifier:
    return models.imagenet_classifier(weights=None)  # the wiring only: random weights


def test_the_source_channels_are_the_imagenet_classes_of_its_six_breeds(random_imagenet_classifier):
    classifier = random_imagenet_classifier
    assert len(classifier.class_names) == 1000 and classifier.input_size == 299
    assert [classifier.class_index(name) for name in models.SOURCE_BREEDS] == [151, 236, 255, 186, 243, 168]
    assert classifier.class_index("norwich terrier") == 186  # case and spaces are forgiven, as for every classifier
    with pytest.raises(ValueError, match="Did you mean 'Leonberg'"):
        classifier.class_index("Leonberger")


def test_the_imagenet_classifier_maps_a_299_px_image_to_1000_probabilities(random_imagenet_classifier):
    probabilities = random_imagenet_classifier.model(np.zeros((1, 299, 299, 3), np.float32)).numpy()
    assert probabilities.shape == (1, 1000) and probabilities.sum() == pytest.approx(1.0, abs=1e-4)
    assert random_imagenet_classifier.model.layers[-1].name == "predictions"  # the layer class images maximise


def test_offline_the_imagenet_classifier_says_which_file_to_put_where(course_settings, tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    course_settings(offline=True)
    with pytest.raises(models.ModelUnavailableError, match="inception_v3_weights_tf_dim_ordering_tf_kernels.h5"):
        models.imagenet_classifier()


def test_offline_the_six_breeds_come_from_the_embedded_classifier_and_it_says_why(course_settings, tmp_path,
                                                                                 monkeypatch, capsys):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    course_settings(offline=True)
    classifier, breeds = models.source_breeds_classifier()
    assert classifier.class_names == models.DOG_BREEDS and len(breeds) == 6
    assert all(name in classifier.class_names for name in breeds)
    assert {"Chihuahua", "Doberman", "bull_mastiff"} <= set(breeds)  # the three it shares with the source
    printed = capsys.readouterr().out
    assert "DEEPDREAM_OFFLINE is set" in printed and "Leonberg" in printed


def test_bad_weights_are_refused():
    with pytest.raises(ValueError, match="weights must be 'imagenet' or None"):
        models.imagenet_classifier(weights="random")


def test_class_images_work_with_the_fixed_299_px_network(random_imagenet_classifier):
    """Pyramid levels and robust transforms make images of other sizes; the network sees them at 299 px
    (MATLAB's larger levels tile by tile: 299, then 418 and 585 px)."""
    from course_lib import classviz

    for method, side in (("matlab", 585), ("robust", 299)):
        pictures = classviz.METHODS[method](random_imagenet_classifier, "predictions", ["Leonberg", "redbone"],
                                            num_iterations=1, verbose=False, show_progress=False)
        assert pictures.shape == (2, side, side, 3) and np.isfinite(pictures).all()
