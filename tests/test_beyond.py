"""Lesson 10's library: the guided objective matches a NumPy computation and pulls the dream towards
the guide; the zoom frames have the right count, shape and motion; bad arguments get clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from course_lib import beyond, models


@pytest.fixture(scope="module")
def backbone():
    return models.backbone("dog_breeds", verbose=False)


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(7)
    smooth = tf.image.resize(rng.uniform(0, 255, (8, 10, 3)).astype(np.float32), (64, 80)).numpy()
    return np.clip(smooth, 0, 255).astype(np.uint8)


def _numpy_guided_loss(dream_features: np.ndarray, guide_features: np.ndarray) -> tuple[float, np.ndarray]:
    """The original notebook's objective_guide, in NumPy: (loss, gradient = the matched guide rows)."""
    channels = dream_features.shape[-1]
    x = dream_features.reshape(-1, channels).astype(np.float64)
    y = guide_features.reshape(-1, channels).astype(np.float64)
    a = x.dot(y.T)  # the original: A = x.T.dot(y) with channels first
    matched = y[a.argmax(1)]
    return float((x * matched).sum()), matched


@pytest.mark.parametrize("dream_shape, guide_shape", [((1, 6, 5, 8), (1, 4, 7, 8)), ((1, 3, 3, 16), (1, 9, 9, 16))])
def test_guided_loss_is_the_original_notebooks_matching(dream_shape, guide_shape):
    rng = np.random.default_rng(0)
    dream_features = rng.uniform(0, 1, dream_shape).astype(np.float32)
    guide_features = rng.uniform(0, 1, guide_shape).astype(np.float32)
    expected, matched = _numpy_guided_loss(dream_features, guide_features)
    x = tf.constant(dream_features)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = beyond.guided_loss(x, tf.constant(guide_features))
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    gradient = tape.gradient(loss, x).numpy().reshape(-1, dream_shape[-1])
    np.testing.assert_allclose(gradient, matched, atol=1e-6)


def test_guided_loss_refuses_features_of_different_layers():
    with pytest.raises(ValueError, match="same layer"):
        beyond.guided_loss(tf.zeros((1, 2, 2, 8)), tf.zeros((1, 2, 2, 16)))


def test_a_step_up_the_guided_gradient_brings_the_dream_closer_to_the_guide(backbone, photo):
    """One gradient step on the image (through the network) raises the guided loss."""
    layer = beyond.guide_layer(backbone)
    model = models.feature_extractor(backbone, [layer])
    guide = beyond.layer_features(photo[::-1, ::-1].copy(), backbone)
    img = tf.constant(np.asarray(photo, np.float32) / 127.5 - 1)

    def loss_of(image):
        return beyond.guided_loss(model(image[None], training=False), guide)

    with tf.GradientTape() as tape:
        tape.watch(img)
        before = loss_of(img)
    gradient = tape.gradient(before, img)
    after = loss_of(img + gradient / (tf.math.reduce_std(gradient) + 1e-8) * 0.01)
    assert float(after) > float(before)


def test_guided_dream_changes_the_photo_and_keeps_its_size(backbone, photo):
    dreamed = beyond.guided_dream(photo, photo[::-1].copy(), backbone, steps_per_octave=2, octaves=range(-1, 1),
                                  show_progress=False)
    assert dreamed.shape == photo.shape and dreamed.dtype == np.uint8
    assert np.abs(dreamed.astype(int) - photo).mean() > 0.5


def test_guided_dream_with_another_objective_dreams_differently(backbone, photo):
    guide = photo[:, ::-1].copy()
    kwargs = dict(steps_per_octave=3, octaves=(0,), show_progress=False)
    guided = beyond.guided_dream(photo, guide, backbone, **kwargs)
    plain = beyond.guided_dream(photo, guide, backbone, loss_fn=beyond.mean_loss, **kwargs)
    assert np.abs(guided.astype(int) - plain).mean() > 0.5


def test_guided_dream_says_when_the_objective_ignores_the_dream(backbone, photo):
    with pytest.raises(ValueError, match="does not depend"):
        beyond.guided_dream(photo, photo, backbone, loss_fn=lambda x, g: tf.reduce_sum(g), steps_per_octave=1,
                            octaves=(0,), show_progress=False)


@pytest.mark.parametrize("kwargs, message", [
    (dict(steps_per_octave=-1), "steps_per_octave"),
    (dict(step_size=float("nan")), "step_size"),
    (dict(loss_fn="mean"), "loss_fn must be a function"),
    (dict(layer="block_99"), "not found"),
])
def test_guided_dream_refuses_bad_arguments(backbone, photo, kwargs, message):
    with pytest.raises(ValueError, match=message):
        beyond.guided_dream(photo, photo, backbone, show_progress=False, **kwargs)


def test_guided_dream_refuses_a_guide_too_small_for_the_network(backbone, photo):
    with pytest.raises(ValueError, match="The guide image: .*at least 32 pixels"):
        beyond.guided_dream(photo, photo[:20, :20], backbone, show_progress=False)


def test_zoom_in_keeps_the_shape_and_enlarges_the_centre():
    column = tf.random.stateless_uniform((40, 1, 3), seed=(1, 2), minval=-1, maxval=1)
    img = tf.tile(column, [1, 60, 1])  # varies down the rows only
    zoomed = beyond.zoom_in(img, 1.25)
    assert zoomed.shape == img.shape
    np.testing.assert_allclose(beyond.zoom_box(1.25), [0.1, 0.1, 0.9, 0.9], atol=1e-12)
    # Pixel centres: output row i samples input row 3.9 + 0.8 i (the box [0.1, 0.9] of rows 0..39).
    rows = 0.1 * 39 + np.arange(40) * 0.8
    np.testing.assert_allclose(zoomed.numpy()[:, 17], _linear(column.numpy()[:, 0], rows), atol=1e-5)


def _linear(column: np.ndarray, rows: np.ndarray) -> np.ndarray:
    low = np.floor(rows).astype(int)
    weight = (rows - low)[:, None]
    high = np.minimum(low + 1, len(column) - 1)
    return column[low] * (1 - weight) + column[high] * weight


@pytest.mark.parametrize("point", [(0.5, 0.5), (0.25, 0.8), (0.9, 0.1)])
def test_zoom_in_keeps_its_point_in_place_frame_after_frame(point):
    # A bright dot at the zoom point stays there over 10 zooms (it only grows): no drift.
    height, width = 41, 61
    y, x = point[0] * (height - 1), point[1] * (width - 1)
    rows, columns = np.mgrid[0:height, 0:width]
    img = tf.constant(np.exp(-((rows - y) ** 2 + (columns - x) ** 2) / 2.0)[..., None].repeat(3, -1), tf.float32)
    for _ in range(10):
        img = beyond.zoom_in(img, 1.1, point)
    weights = img.numpy()[..., 0]
    weights = np.where(weights > 0.5 * weights.max(), weights, 0.0)
    assert abs((weights * rows).sum() / weights.sum() - y) < 0.5
    assert abs((weights * columns).sum() / weights.sum() - x) < 0.5


def test_zoom_box_refuses_a_point_outside_the_picture():
    with pytest.raises(ValueError, match="point's x is 1.5, but it must be >= 0.0 and <= 1.0"):
        beyond.zoom_box(1.1, (0.5, 1.5))
    with pytest.raises(ValueError, match="point must be a pair"):
        beyond.zoom_box(1.1, 0.5)


def test_zoom_frames_have_the_count_and_shape_and_each_differs_from_the_last(backbone, photo):
    frames = beyond.zoom_frames(photo, backbone, frames=4, steps_per_frame=1, show_progress=False)
    assert len(frames) == 4
    assert all(frame.shape == photo.shape and frame.dtype == np.uint8 for frame in frames)
    np.testing.assert_array_equal(frames[0], photo)
    for before, after in zip(frames, frames[1:]):
        assert np.abs(after.astype(int) - before).mean() > 0.5


def test_zoom_frames_shrink_the_photo_to_max_dim(backbone, photo):
    frames = beyond.zoom_frames(photo, backbone, frames=2, steps_per_frame=0, max_dim=40, show_progress=False)
    assert frames[0].shape == (32, 40, 3)


def test_zoom_frames_without_dreaming_only_zoom(backbone, photo):
    frames = beyond.zoom_frames(photo, backbone, frames=3, steps_per_frame=0, zoom=1.25, show_progress=False)
    once = beyond.zoom_in(np.asarray(photo, np.float32) / 127.5 - 1, 1.25).numpy()
    np.testing.assert_allclose(frames[1].astype(int), np.rint((np.clip(once, -1, 1) + 1) * 127.5), atol=1)


def test_zoom_frames_use_the_zoom_function_given(backbone, photo):
    calls = []

    def my_zoom(img, zoom, point):
        calls.append((zoom, point))
        return beyond.zoom_in(img, zoom, point)

    beyond.zoom_frames(photo, backbone, frames=3, zoom=1.1, steps_per_frame=0, zoom_fn=my_zoom, point=(0.2, 0.7),
                       show_progress=False)
    assert calls == [(1.1, (0.2, 0.7)), (1.1, (0.2, 0.7))]


def test_zoom_frames_refuse_a_zoom_function_that_changes_the_size(backbone, photo):
    with pytest.raises(ValueError, match="same size"):
        beyond.zoom_frames(photo, backbone, frames=2, steps_per_frame=0, zoom_fn=lambda img, zoom, point: img[1:-1],
                           show_progress=False)


@pytest.mark.parametrize("kwargs, message", [
    (dict(zoom=1.0), "zoom is 1.0, but it must be > 1"),
    (dict(zoom=0.9), "zoom"),
    (dict(zoom=float("nan")), "finite"),
    (dict(frames=1), "frames is 1"),
    (dict(frames=2.5), "whole number"),
    (dict(steps_per_frame=-1), "steps_per_frame"),
    (dict(step_size=0), "step_size"),
    (dict(max_dim=16), "max_dim"),
    (dict(zoom_fn=1.05), "zoom_fn must be a function"),
])
def test_zoom_frames_refuse_bad_arguments(backbone, photo, kwargs, message):
    with pytest.raises(ValueError, match=message):
        beyond.zoom_frames(photo, backbone, show_progress=False, **kwargs)


def test_zoom_in_refuses_a_zoom_of_one_or_less():
    with pytest.raises(ValueError, match="zoom"):
        beyond.zoom_in(tf.zeros((8, 8, 3)), 1.0)
