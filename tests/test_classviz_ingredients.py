"""Lesson 09's ingredients: the robust method's switches, MATLAB's loop as a function, a student's loop."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from course_lib import classviz, models
from course_lib.classviz import robust
from course_lib.classviz.param import COLOR_CORRELATION, FourierImage, PixelImage

SMALL = 64


@pytest.fixture(scope="module")
def classifier() -> models.Classifier:
    return models.dog_breed_classifier()


# --- robust_class_images: one switch per ingredient ------------------------------------------------


def test_default_recipe_is_the_full_robust_method(monkeypatch, classifier):
    made, compiled = [], []
    for name in ("FourierImage", "PixelImage"):
        def record(*args, _real=getattr(robust, name), **kwargs):
            made.append((_real.__name__, kwargs["decorrelate"]))
            return _real(*args, **kwargs)

        monkeypatch.setattr(robust, name, record)
    real_gradient = robust._robust_gradient

    def record_gradient(target, fourier, transforms, shape):
        compiled.append((fourier, transforms))
        return real_gradient(target, fourier, transforms, shape)

    monkeypatch.setattr(robust, "_robust_gradient", record_gradient)
    classviz.robust_class_images(classifier, "dense", "pug", num_iterations=1, image_size=SMALL, verbose=False, seed=0)
    classviz.robust_class_images(classifier, "dense", "pug", num_iterations=1, image_size=SMALL, verbose=False, seed=0,
                                 fourier=False, decorrelate=False, transforms=False)
    assert made == [("FourierImage", True), ("PixelImage", False)]
    assert compiled == [(True, True), (False, False)]


@pytest.mark.parametrize("switches", [
    dict(fourier=False, decorrelate=False, transforms=True),
    dict(fourier=True, decorrelate=False, transforms=False),
    dict(fourier=True, decorrelate=True, transforms=False),
    dict(fourier=False, decorrelate=True, transforms=False),
])
def test_every_recipe_runs_and_raises_the_logit(classifier, switches):
    pug = classifier.class_index("pug")
    grey = classviz.channel_activations(classifier, "dense", np.zeros((1, SMALL, SMALL, 3), np.float32))[0, pug]
    raw = classviz.robust_class_images(classifier, "dense", "pug", num_iterations=8, image_size=SMALL,
                                       output_scaling="none", verbose=False, seed=1, **switches)
    assert raw.shape == (1, SMALL, SMALL, 3) and np.isfinite(raw).all()
    assert raw.min() >= -1.0 and raw.max() <= 1.0  # a sigmoid keeps every recipe in range
    assert classviz.channel_activations(classifier, "dense", raw)[0, pug] > grey + 1.0


def test_recipes_give_different_images(classifier):
    common = dict(num_iterations=3, image_size=SMALL, verbose=False, seed=4)
    full = classviz.robust_class_images(classifier, "dense", "Samoyed", **common)
    for switches in (dict(fourier=False), dict(decorrelate=False), dict(transforms=False)):
        other = classviz.robust_class_images(classifier, "dense", "Samoyed", **common, **switches)
        assert not np.allclose(full, other, atol=1e-3), switches


def test_the_first_images_do_not_depend_on_how_many_are_made(classifier):
    # The lesson shows the robust tile's first three images as the ablation's full-recipe row.
    common = dict(num_iterations=4, image_size=SMALL, verbose=False, seed=5, output_scaling="none")
    six = classviz.robust_class_images(classifier, "dense", ["Doberman", "pug", "Samoyed", "Chihuahua", "pug", 3],
                                       **common)
    three = classviz.robust_class_images(classifier, "dense", ["Doberman", "pug", "Samoyed"], **common)
    np.testing.assert_allclose(six[:3], three, atol=2e-3)


@pytest.mark.parametrize("name, value", [("fourier", 1), ("decorrelate", "yes"), ("transforms", None)])
def test_switches_must_be_true_or_false(classifier, name, value):
    with pytest.raises(ValueError, match=f"{name} must be True or False"):
        classviz.robust_class_images(classifier, "dense", "pug", num_iterations=1, verbose=False, **{name: value})


def test_methods_keep_the_command_line_signature(classifier):
    for name, method in classviz.METHODS.items():
        pictures = method(classifier, None, ["pug"], image_size=SMALL, seed=0, verbose=False, num_iterations=1)
        side = 124 if name == "matlab" else SMALL  # MATLAB's pyramid enlarges: 64 -> 89 -> 124 px
        assert pictures.shape == (1, side, side, 3), name


# --- the parameterisations ------------------------------------------------------------------------


@pytest.mark.parametrize("decorrelate", [True, False])
def test_parameterisations_reproduce_their_initial_image(decorrelate):
    rng = np.random.default_rng(0)
    photo = tf.image.resize(rng.uniform(0.1, 0.9, size=(1, 8, 8, 3)), [32, 40]).numpy()
    for kind in (FourierImage, PixelImage):
        parameterization = kind(1, 32, 40, rng, photo, decorrelate=decorrelate)
        np.testing.assert_allclose(parameterization().numpy(), photo, atol=2e-3)


def test_decorrelation_mixes_the_stored_channels_into_rgb():
    rng = np.random.default_rng(0)
    plain = PixelImage(1, 4, 4, rng, decorrelate=False)
    plain.pixels.assign(tf.constant(np.tile([2.0, 0.0, 0.0], (1, 4, 4, 1)), tf.float32))
    np.testing.assert_allclose(plain().numpy()[0, 0, 0], [1 / (1 + np.exp(-2.0)), 0.5, 0.5], atol=1e-6)
    mixed = PixelImage(1, 4, 4, rng, decorrelate=True)
    mixed.pixels.assign(plain.pixels)
    expected = 1 / (1 + np.exp(-2.0 * COLOR_CORRELATION[:, 0]))  # the first stored channel is mostly brightness
    np.testing.assert_allclose(mixed().numpy()[0, 0, 0], expected, atol=1e-6)


def test_fourier_image_makes_smoother_images_than_pixels():
    rng = np.random.default_rng(3)
    fourier = FourierImage(1, 64, 64, rng, decorrelate=False)
    pixels = PixelImage(1, 64, 64, rng, decorrelate=False)
    # The same white noise in each parameter space (Lucid's start): the spectrum's is coloured, pink, not white.
    assert classviz.high_frequency_share(fourier()[0].numpy()) < 0.1 < classviz.high_frequency_share(pixels()[0].numpy())


# --- MATLAB's loop ---------------------------------------------------------------------------------


def test_deep_dream_image_is_pyramid_images_with_the_library_loop(classifier):
    common = dict(num_iterations=2, pyramid_levels=2, image_size=SMALL, seed=3, verbose=False, output_scaling="none")
    library = classviz.deep_dream_image(classifier, "dense", ["pug", "Samoyed"], **common)
    through = classviz.pyramid_images(classviz.pyramid_ascent, classifier, "dense", ["pug", "Samoyed"], **common)
    np.testing.assert_allclose(library, through, atol=1e-5)


def test_pyramid_images_gives_the_loop_what_it_needs_and_reports_levels(classifier, capsys):
    calls = []

    def loop(class_gradient, start, random_shift, normalize, levels, scale, iterations, step_size, tile_size):
        calls.append((start.shape, levels, scale, iterations, step_size, tile_size))
        return classviz.pyramid_ascent(class_gradient, start, random_shift, normalize, levels=levels, scale=scale,
                                       iterations=iterations, step_size=step_size, tile_size=tile_size)

    result = classviz.pyramid_images(loop, classifier, "dense", ["pug"], pyramid_levels=2, pyramid_scale=1.5,
                                     num_iterations=3, image_size=SMALL, verbose=True, seed=0)
    assert calls == [((1, SMALL, SMALL, 3), 2, 1.5, 3, classviz.MATLAB_STEP_SIZE, classifier.input_size)]
    assert result.shape == (1, 96, 96, 3)
    rows = [line.split("|") for line in capsys.readouterr().out.splitlines() if line.strip("|= ")[:1].isdigit()]
    assert [(int(row[1]), int(row[3])) for row in rows] == [(1, 1), (2, 1), (3, 1), (1, 2), (2, 2), (3, 2)]


def test_pyramid_images_jitter_zero_means_no_shift_and_normalize_is_used(classifier):
    shifts, normalised = [], []

    def loop(class_gradient, start, random_shift, normalize, **options):
        shifts.append(random_shift().numpy().tolist())
        normalised.append(normalize(tf.ones([1, 8, 8, 3])))
        return start

    classviz.pyramid_images(loop, classifier, "dense", "pug", jitter=0, normalize=lambda g: g * 0 + 7.0,
                            image_size=SMALL, pyramid_levels=1, show_progress=False)
    assert shifts == [[0, 0]] and float(normalised[0][0, 0, 0, 0]) == 7.0


def test_the_class_gradient_refuses_images_larger_than_the_network_input(classifier):
    def untiled(class_gradient, start, random_shift, normalize, **options):
        return class_gradient(tf.image.resize(start, [200, 200]))

    with pytest.raises(ValueError, match=r"at most 160x160 px.*classviz.tiled_gradient"):
        classviz.pyramid_images(untiled, classifier, "dense", "pug", image_size=SMALL, show_progress=False)


def test_pyramid_images_refuses_a_loop_that_returns_nothing_or_the_wrong_size(classifier):
    with pytest.raises(ValueError, match="returned None: end it with `return image`"):
        classviz.pyramid_images(lambda *a, **k: None, classifier, "dense", "pug", image_size=SMALL, show_progress=False)
    with pytest.raises(ValueError, match="returned shape \\(1, 32, 32, 3\\); expected \\(1, 124, 124, 3\\)"):
        classviz.pyramid_images(lambda g, start, *a, **k: start[:, :32, :32], classifier, "dense", "pug",
                                image_size=SMALL, show_progress=False)


def test_jitter_changes_the_result_and_single_level_runs_at_full_size(classifier):
    common = dict(num_iterations=2, image_size=SMALL, seed=2, show_progress=False, output_scaling="none")
    jittered = classviz.pyramid_images(classviz.pyramid_ascent, classifier, "dense", "pug", pyramid_levels=1, **common)
    still = classviz.pyramid_images(classviz.pyramid_ascent, classifier, "dense", "pug", pyramid_levels=1, jitter=0,
                                    **common)
    assert jittered.shape == still.shape == (1, SMALL, SMALL, 3)
    assert not np.allclose(jittered, still, atol=1e-4)
