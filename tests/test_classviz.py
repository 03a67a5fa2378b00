"""Specifications of course_lib.classviz: MATLAB's deepDreamImage and the robust class images."""
from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from course_lib import classviz, models
from course_lib.classviz.param import FourierImage

keras = pytest.importorskip("keras")

SMALL = 64  # px: big enough for MobileNetV2 (32 px minimum) at every pyramid level below


@pytest.fixture(scope="module")
def classifier() -> models.Classifier:
    return models.dog_breed_classifier()


def _photo_batch(size: int = SMALL) -> np.ndarray:
    from skimage import data

    from course_lib import images

    photo = images.resize_max_dim(data.chelsea(), size)
    return images.to_model_range(photo)[None]


# --- channels by name -------------------------------------------------------------------------


def test_class_names_select_their_channel(classifier):
    target = classviz.channel_target(classifier, "dense")
    assert classviz.resolve_channels(target, ["Chihuahua", "Doberman", 3]) == [0, 10, 3]
    assert classviz.resolve_channels(target, "siberian husky") == [classifier.class_names.index("Siberian_husky")]


def test_unknown_class_name_lists_the_valid_ones(classifier):
    target = classviz.channel_target(classifier, "dense")
    with pytest.raises(ValueError, match="Did you mean 'Doberman'") as error:
        classviz.resolve_channels(target, ["Dobermann"])
    assert "Chihuahua" in str(error.value) and "miniature_poodle" in str(error.value)


def test_channel_out_of_range_and_names_without_classes_are_refused(classifier):
    target = classviz.channel_target(classifier, "dense")
    with pytest.raises(ValueError, match="numbered 0..18"):
        classviz.resolve_channels(target, [19])
    with pytest.raises(ValueError, match="neither an index nor a class name"):
        classviz.resolve_channels(target, [True])
    with pytest.raises(ValueError, match="empty"):
        classviz.resolve_channels(target, [])
    plain = classviz.channel_target(classifier.model, "dense")  # a Keras model: no class names
    with pytest.raises(ValueError, match="has no class names"):
        classviz.resolve_channels(plain, "pug")


def test_unknown_layer_lists_the_valid_layers(classifier):
    with pytest.raises(ValueError, match="Valid layers: .*dense") as error:
        classviz.channel_target(classifier, "dens")
    assert "Did you mean 'dense'" in str(error.value)


# --- logits from a softmax-folded Dense -----------------------------------------------------------


def test_class_scores_are_logits_even_when_softmax_is_folded_into_dense(classifier):
    folded = classifier.model.get_layer("dense")
    assert folded.activation.__name__ == "softmax"
    # The same network with a linear head: its outputs are the logits by construction.
    features = classifier.model.get_layer("dense").input
    linear_head = keras.layers.Dense(folded.units, activation=None, name="linear_dense")
    linear_model = keras.Model(classifier.model.input, linear_head(features))
    linear_head.set_weights(folded.get_weights())
    batch = _photo_batch()
    logits = classviz.channel_activations(classifier, "dense", batch)
    np.testing.assert_allclose(logits, linear_model(batch).numpy(), rtol=1e-4, atol=1e-4)
    # ...and they are not the probabilities the model outputs, though softmax(logits) is.
    probabilities = classifier.model(batch).numpy()
    assert not np.allclose(logits, probabilities, atol=1e-2)
    np.testing.assert_allclose(tf.nn.softmax(logits).numpy(), probabilities, rtol=1e-4, atol=1e-5)


def test_softmax_layer_channels_are_its_input_logits(classifier):
    logits = keras.layers.Dense(19, name="new_fc")(classifier.model.get_layer("dense").input)
    separate = keras.Model(classifier.model.input, keras.layers.Softmax(name="prob")(logits))
    separate.get_layer("new_fc").set_weights(classifier.model.get_layer("dense").get_weights())
    batch = _photo_batch()
    np.testing.assert_allclose(
        classviz.channel_activations(separate, "prob", batch),
        classviz.channel_activations(classifier, "dense", batch), rtol=1e-4, atol=1e-4,
    )
    assert classviz.class_layer(separate) == "new_fc"


# --- Laplacian-pyramid normalisation ---------------------------------------------------------------


def test_laplacian_split_and_merge_reconstruct_exactly():
    gradient = tf.random.stateless_normal([2, 48, 40, 3], seed=[1, 2])
    bands = classviz.laplacian_split(gradient, 4)
    assert len(bands) == 5
    assert [tuple(band.shape[1:3]) for band in bands] == [(3, 3), (6, 5), (12, 10), (24, 20), (48, 40)]
    np.testing.assert_allclose(classviz.laplacian_merge(bands).numpy(), gradient.numpy(), atol=1e-5)


def test_every_band_of_the_normalised_gradient_has_unit_rms():
    # A gradient whose bands have very different strengths, like a real one (fine detail dominates).
    rng = np.random.default_rng(0)
    coarse = tf.image.resize(rng.normal(size=(2, 6, 6, 3)).astype(np.float32) * 0.01, [48, 48])
    fine = rng.normal(size=(2, 48, 48, 3)).astype(np.float32) * 50.0
    gradient = tf.constant(coarse + fine)
    raw_rms = [float(tf.sqrt(tf.reduce_mean(b ** 2))) for b in classviz.laplacian_split(gradient, 4)]
    assert max(raw_rms) / min(raw_rms) > 10  # the test input really is unbalanced
    for band in classviz.normalize_bands(classviz.laplacian_split(gradient, 4)):
        per_image_rms = tf.sqrt(tf.reduce_mean(band ** 2, axis=[1, 2, 3])).numpy()
        np.testing.assert_allclose(per_image_rms, 1.0, rtol=1e-4)
    normalised = classviz.laplacian_normalize(gradient, 4)
    expected = classviz.laplacian_merge(classviz.normalize_bands(classviz.laplacian_split(gradient, 4)))
    np.testing.assert_allclose(normalised.numpy(), expected.numpy(), atol=1e-5)


# --- deep_dream_image: output scaling, shapes, validation ----------------------------------------------


def test_linear_output_scaling_maps_each_image_to_zero_one(classifier):
    result = classviz.deep_dream_image(classifier, "dense", ["pug", "Samoyed"], num_iterations=2,
                                       pyramid_levels=2, image_size=SMALL, verbose=False, seed=1)
    assert result.shape == (2, 89, 89, 3) and result.dtype == np.float32  # floor(64 * 1.4)
    for image in result:
        assert math.isclose(image.min(), 0.0, abs_tol=1e-6) and math.isclose(image.max(), 1.0, abs_tol=1e-6)


def test_no_output_scaling_returns_the_raw_values_and_linear_is_their_rescaling(classifier):
    common = dict(num_iterations=2, pyramid_levels=2, image_size=SMALL, verbose=False, seed=3)
    raw = classviz.deep_dream_image(classifier, "dense", ["pug", "Samoyed"], output_scaling="none", **common)
    linear = classviz.deep_dream_image(classifier, "dense", ["pug", "Samoyed"], output_scaling="linear", **common)
    assert raw.min() < 0.0 < raw.max() and np.abs(raw).max() < 1.0  # small steps around mid grey
    low, high = raw.min(axis=(1, 2, 3), keepdims=True), raw.max(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(linear, (raw - low) / (high - low), atol=1e-5)


def test_matlab_method_raises_the_activation_and_prints_the_table(classifier, capsys):
    before = classviz.channel_activations(classifier, "dense", np.zeros((1, SMALL, SMALL, 3), np.float32))[0, 14]
    raw = classviz.deep_dream_image(classifier, "dense", "pug", num_iterations=4, pyramid_levels=1,
                                    image_size=SMALL, output_scaling="none", seed=0)
    after = classviz.channel_activations(classifier, "dense", raw)[0, 14]
    assert after > before + 1.0
    table = capsys.readouterr().out
    assert "Iteration" in table and "Activation" in table and "Pyramid Level" in table
    assert len([line for line in table.splitlines() if line.startswith("|") and line.strip("|= ")[:1].isdigit()]) == 4


def test_matlab_pyramid_grows_from_the_start_size_as_deepDreamImage_does(classifier):
    # MATLAB: the first level is the initial image's size, each later one floor(previous * PyramidScale);
    # the embedded classifier's input is 160 px, so a 224 px start is computed tile by tile from the first level.
    common = dict(num_iterations=1, image_size=224, verbose=False, seed=0, output_scaling="none")
    three = classviz.deep_dream_image(classifier, "dense", "pug", **common)
    one = classviz.deep_dream_image(classifier, "dense", "pug", pyramid_levels=1, **common)
    side = math.floor(math.floor(224 * 1.4) * 1.4)
    assert side == 438 and three.shape == (1, side, side, 3) and one.shape == (1, 224, 224, 3)
    assert np.isfinite(three).all()
    assert classviz.pyramid_sizes(224, 300, 3, 1.4) == [(224, 300), (313, 420), (438, 588)]


def test_matlab_default_start_is_the_network_input_size(classifier):
    result = classviz.deep_dream_image(classifier, "dense", "pug", num_iterations=1, pyramid_levels=2, verbose=False)
    assert result.shape == (1, 224, 224, 3)  # 160 px (the classifier's input), then floor(160 * 1.4)


def test_tiled_gradient_covers_every_pixel_once_and_keeps_tiles_within_the_input():
    rng = np.random.default_rng(0)
    image = tf.constant(rng.normal(size=(2, 50, 71, 3)).astype(np.float32))
    seen = []

    def class_gradient(tile):
        assert max(tile.shape[1:3]) <= 24
        seen.append(tuple(tile.shape[1:3]))
        return 3.0 * tile + 1.0  # pixel-wise, so the assembled result shows where each pixel went

    gradient = classviz.tiled_gradient(class_gradient, image, 24)
    np.testing.assert_allclose(gradient.numpy(), 3.0 * image.numpy() + 1.0, atol=1e-6)
    assert seen == [(24, 24)] * 9  # ceil(50 / 24) x ceil(71 / 24) tiles, zero-padded at the end
    assert classviz.tiled_gradient(class_gradient, image[:, :24, :20], 24).shape == (2, 24, 20, 3)
    assert seen[-1] == (24, 20)  # an image that fits is passed whole


def test_matlab_tiled_gradient_matches_the_whole_image_gradient_inside_each_tile(classifier):
    # The network sees each tile alone: inside a tile the gradient is that tile's own gradient.
    target = classviz.channel_target(classifier, "dense")
    photo = tf.image.resize(_photo_batch(SMALL), [200, 200]).numpy()
    ids, no_shift = tf.constant([14], tf.int32), tf.zeros([2], tf.int32)

    def class_gradient(images):
        return target.pixel_gradient(images, ids, no_shift)[0]

    tiled = classviz.tiled_gradient(class_gradient, photo, 160).numpy()
    corner = class_gradient(tf.constant(photo[:, :160, :160])).numpy()
    np.testing.assert_allclose(tiled[:, :160, :160], corner, atol=1e-6)
    assert np.abs(tiled[:, 160:, 160:]).max() > 0  # the padded corner tile has a gradient too


def test_robust_method_starts_from_a_photo_and_keeps_its_size(classifier):
    from skimage import data

    result = classviz.robust_class_images(classifier, "dense", "Doberman", num_iterations=2,
                                          initial_image=data.chelsea(), image_size=SMALL, verbose=False)
    assert result.shape == (1, 43, SMALL, 3)  # chelsea is 300x451: longer side -> 64 px


def test_fourier_image_reproduces_its_initial_image():
    rng = np.random.default_rng(0)
    photo = tf.image.resize(rng.uniform(0.1, 0.9, size=(1, 8, 8, 3)), [32, 40]).numpy()
    parameterization = FourierImage(1, 32, 40, rng, photo)
    np.testing.assert_allclose(parameterization().numpy(), photo, atol=2e-3)


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(pyramid_levels=0), "pyramid_levels is 0, but it must be >= 1"),
        (dict(pyramid_levels=2.5), "pyramid_levels must be a whole number"),
        (dict(pyramid_scale=float("nan")), "pyramid_scale is nan, but it must be a finite number"),
        (dict(pyramid_scale=1.0), "pyramid_scale is 1.0, but it must be > 1.0"),
        (dict(pyramid_scale=-2), "pyramid_scale is -2, but it must be > 1.0"),
        (dict(num_iterations=0), "num_iterations is 0, but it must be >= 1"),
        (dict(num_iterations=-5), "num_iterations is -5, but it must be >= 1"),
        (dict(output_scaling="log"), "output_scaling must be one of 'linear', 'none'"),
        (dict(output_scaling="linaer"), "Did you mean 'linear'"),
        (dict(image_size=8), "image_size is 8, but it must be between 32 and 2048"),
        (dict(seed=-1), "seed is -1, but it must be >= 0"),
        (dict(seed=1.5), "seed must be a whole number"),
        (dict(pyramid_levels=12, image_size=224), r"last pyramid level would be \d+x\d+ px, above 2048"),
    ],
)
def test_bad_parameters_get_a_clear_error(classifier, options, message):
    with pytest.raises(ValueError, match=message):
        classviz.deep_dream_image(classifier, "dense", "pug", verbose=False, **{"num_iterations": 1, **options})


@pytest.mark.parametrize(
    "method, options, message",
    [
        ("robust", dict(diversity=-1.0), "diversity is -1.0, but it must be >= 0.0"),
        ("robust", dict(num_iterations=0), "num_iterations is 0, but it must be >= 1"),
        ("naive", dict(num_iterations=True), "num_iterations must be a whole number"),
        ("naive", dict(image_size=10_000), "image_size is 10000, but it must be between 32 and 2048"),
    ],
)
def test_the_other_methods_check_their_own_options(classifier, method, options, message):
    with pytest.raises(ValueError, match=message):
        classviz.METHODS[method](classifier, "dense", "pug", verbose=False, **options)


def test_model_must_be_a_classifier_or_keras_model():
    with pytest.raises(ValueError, match="models.Classifier"):
        classviz.deep_dream_image("dog_breeds", "dense", "pug")


def test_robust_diversity_runs_for_a_repeated_class(classifier):
    result = classviz.robust_class_images(classifier, "dense", ["pug", "pug"], num_iterations=2,
                                          diversity=5.0, image_size=SMALL, verbose=False, seed=2)
    assert result.shape == (2, SMALL, SMALL, 3)
    assert not np.allclose(result[0], result[1], atol=1e-2)


# --- command line ---------------------------------------------------------------------------------


def test_command_line_writes_a_labelled_tile(tmp_path, capsys):
    from course_lib.__main__ import main

    target = tmp_path / "tile.png"
    code = main(["classviz", "--classes", "pug,Samoyed", "--method", "matlab", "--iterations", "1",
                 "--size", str(SMALL), "--seed", "0", "-o", str(target)])
    assert code == 0 and target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*partial*"))  # written atomically: no temporary file left


def test_command_line_bad_class_name_is_one_line_and_exit_2(tmp_path, capsys):
    from course_lib.__main__ import main

    code = main(["classviz", "--classes", "Chihuahua,Dobermann", "-o", str(tmp_path / "tile.png")])
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1 and "Did you mean 'Doberman'" in error
    assert not (tmp_path / "tile.png").exists()
