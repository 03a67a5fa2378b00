"""Specification of course_lib.dream: the tutorial's numbers, compiled once, tiles that cover everything.

Every expected value is computed here independently, with a plain ``tf.GradientTape`` on the
Keras feature extractor of the real embedded ``dog_breeds`` backbone, on small crops of real photos.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from course_lib import dream, dream_graph, models, tiles

pytestmark = pytest.mark.slow  # a real network runs in every test (a few seconds in all)


@pytest.fixture(scope="module")
def backbone() -> models.Backbone:
    return models.backbone("dog_breeds", verbose=False)


@pytest.fixture(scope="module")
def dream_model(backbone) -> "models.keras.Model":
    return models.feature_extractor(backbone)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real photo (scikit-image's cat), 120x160 uint8."""
    from skimage import data
    from skimage.transform import resize

    return (resize(data.chelsea(), (120, 160), anti_aliasing=True) * 255).astype(np.uint8)


def model_range(photo: np.ndarray) -> tf.Tensor:
    return tf.constant(photo.astype(np.float32) / 127.5 - 1.0)


def tutorial_loss(img: tf.Tensor, model, weights=None) -> tf.Tensor:
    """The tutorial's loss written out again: sum of the mean activation of each layer."""
    activations = model(tf.expand_dims(img, 0), training=False)
    weights = weights or [1.0] * len(activations)
    return tf.add_n([w * tf.reduce_mean(a) for w, a in zip(weights, activations)])


def tutorial_gradient(img: tf.Tensor, model, weights=None) -> np.ndarray:
    with tf.GradientTape() as tape:
        tape.watch(img)
        loss = tutorial_loss(img, model, weights)
    return tape.gradient(loss, img).numpy()


def assert_same_gradient(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Two computations of the same ReLU network's input gradient agree, on any CPU.

    The gradient is piecewise constant: when a unit's input is within float32 rounding of a kink
    (0, or 6 for ReLU6), two correct computations (oneDNN's kernels on one CPU, Eigen's on another,
    batch norm folded or not) can put it on different sides, and that unit's contribution appears
    or vanishes. One unit among tens of thousands moves the gradient by a tiny fraction of its
    norm, so the test is on the whole vector, never on a share of matching pixels (which depends on
    the CPU): measured, the largest kink effect is 0.22% of the norm (cosine 0.999998), with
    oneDNN on and off (``TF_ENABLE_ONEDNN_OPTS=0`` is what an AVX2-only AMD CPU runs). A real bug is
    far away: one 40x40 tile left out of twelve moves about 30% of the norm, a mirrored kernel
    gives an unrelated direction. So: relative error at most 2% and cosine at least 0.999.
    """
    actual, expected = actual.ravel().astype(np.float64), expected.ravel().astype(np.float64)
    error = np.linalg.norm(actual - expected) / np.linalg.norm(expected)
    cosine = actual @ expected / (np.linalg.norm(actual) * np.linalg.norm(expected))
    assert error <= 2e-2, f"{what}: relative error {error:.3g} (at most 0.02 for kink flips)"
    assert cosine >= 0.999, f"{what}: cosine {cosine:.6f} (at least 0.999)"


# --- calc_loss -----------------------------------------------------------------------------------


def test_calc_loss_is_the_sum_of_each_layers_mean_activation(dream_model, photo):
    img = model_range(photo)
    activations = dream_model(tf.expand_dims(img, 0))
    expected = sum(float(np.mean(a)) for a in activations)
    assert float(dream.calc_loss(img, dream_model)) == pytest.approx(expected, rel=1e-5)


def test_calc_loss_weights_each_layer(dream_model, photo):
    img = model_range(photo)
    means = [float(np.mean(a)) for a in dream_model(tf.expand_dims(img, 0))]
    loss = float(dream.calc_loss(img, dream_model, layer_weights=[0.0, 2.0]))
    assert loss == pytest.approx(2.0 * means[1], rel=1e-5)


def test_calc_loss_accepts_a_single_output_model(backbone, photo):
    single = models.feature_extractor(backbone, "block_3_expand_relu")
    img = model_range(photo)
    expected = float(np.mean(single(tf.expand_dims(img, 0))))
    assert float(dream.calc_loss(img, single)) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "weights, message",
    [([1.0], "one weight per layer"), ([1.0, -1.0], ">= 0"), ([1.0, float("nan")], "finite"), ([0, 0], "all 0")],
)
def test_bad_layer_weights_are_refused_clearly(dream_model, photo, weights, message):
    with pytest.raises(ValueError, match=message):
        dream.calc_loss(model_range(photo), dream_model, layer_weights=weights)


# --- the compiled step ---------------------------------------------------------------------------


@pytest.mark.parametrize("weights", [None, [0.5, 2.0]])
def test_one_engine_step_is_the_tutorials_normalised_clipped_gradient_ascent(dream_model, photo, weights):
    img = model_range(photo)
    step_size = 0.01
    g = tutorial_gradient(img, dream_model, weights)
    expected = np.clip(img.numpy() + g / (np.std(g) + 1e-8) * step_size, -1, 1)

    # optimize=False: the Keras model itself, so the numbers must agree to float32 rounding.
    plain = dream.DeepDream(dream_model, layer_weights=weights, optimize=False)
    loss, stepped = plain(img, tf.constant(1), tf.constant(step_size))
    assert float(loss) == pytest.approx(float(tutorial_loss(img, dream_model, weights)), rel=1e-5)
    np.testing.assert_allclose(stepped.numpy(), expected, atol=1e-6)
    assert np.abs(stepped.numpy() - img.numpy()).max() > 1e-3  # the step really moved the image

    # The default engine (folded batch norm, forward-convolution gradients, float32 here): same step.
    engine = dream.DeepDream(dream_model, layer_weights=weights)
    assert engine.precision == "float32"  # the dog model has depthwise convolutions: never bfloat16
    loss, stepped = engine(img, tf.constant(1), tf.constant(step_size))
    assert float(loss) == pytest.approx(float(tutorial_loss(img, dream_model, weights)), rel=1e-4)
    assert_same_gradient(stepped.numpy() - img.numpy(), expected - img.numpy(), "one step")


def test_engine_gradient_equals_the_keras_models_input_gradient(dream_model, photo):
    """The fast graph (folded batch norm, forward-convolution gradients) changes no numbers."""
    img = model_range(photo)
    engine = dream.DeepDream(dream_model)
    with tf.GradientTape() as tape:
        tape.watch(img)
        loss = engine._loss_fn(img)
    fast = tape.gradient(loss, img).numpy()
    reference = tutorial_gradient(img, dream_model)
    assert float(loss) == pytest.approx(float(tutorial_loss(img, dream_model)), rel=1e-4)
    assert_same_gradient(fast, reference, "input gradient")
    # Away from ReLU kinks the agreement is float32 rounding: most values agree to 1e-5.
    assert np.median(np.abs(fast - reference)) <= 1e-5 * np.abs(reference).max()


def test_octave_loop_does_not_retrace(dream_model, photo):
    engine = dream.DeepDream(dream_model)
    dreamed = dream.run_deep_dream(
        photo, engine, steps_per_octave=2, octaves=range(-2, 3), show_progress=False
    )
    assert dreamed.shape == photo.shape and dreamed.dtype == np.uint8
    assert engine.trace_count == 1  # five image sizes, one trace


def test_engines_are_reused_between_runs(backbone, photo):
    first = dream.engine_for(backbone)
    dream.run_deep_dream(photo, backbone, steps_per_octave=1, show_progress=False)
    assert dream.engine_for(backbone) is first and first.trace_count == 1


def test_engines_are_cached_by_the_model_object_not_its_id(backbone):
    first_model = models.feature_extractor(backbone, ["block_3_expand_relu"])
    second_model = models.feature_extractor(backbone, ["block_3_expand_relu"])  # equal, yet another object
    first = dream.engine_for(first_model)
    assert dream.engine_for(first_model) is first
    assert dream.engine_for(second_model) is not first and dream.engine_for(second_model).model is second_model
    assert dream.engine_for(first_model, [2.0]) is not first  # other layer weights, another engine


def test_simple_dream_changes_the_photo_and_keeps_its_size(backbone, photo):
    dreamed = dream.run_deep_dream(photo, backbone, steps_per_octave=5, show_progress=False)
    assert dreamed.shape == photo.shape and dreamed.dtype == np.uint8
    assert np.abs(dreamed.astype(int) - photo.astype(int)).mean() > 1.0


def test_zero_steps_return_the_photo(backbone, photo):
    same = dream.run_deep_dream(photo, backbone, steps_per_octave=0, show_progress=False)
    assert np.abs(same.astype(int) - photo.astype(int)).max() <= 1  # float round trip only


# --- parameter checks ----------------------------------------------------------------------------


@pytest.mark.parametrize("step_size", [float("nan"), -0.01, 0, float("inf"), "big"])
def test_bad_step_size_is_refused(backbone, photo, step_size):
    with pytest.raises(ValueError, match="step_size"):
        dream.run_deep_dream(photo, backbone, steps_per_octave=1, step_size=step_size, show_progress=False)


@pytest.mark.parametrize("steps", [-1, 2.5, "ten"])
def test_bad_steps_are_refused(backbone, photo, steps):
    with pytest.raises(ValueError, match="steps"):
        dream.run_deep_dream(photo, backbone, steps_per_octave=steps, show_progress=False)


@pytest.mark.parametrize("octave_scale", [0, -1.3, float("nan")])
def test_bad_octave_scale_is_refused(backbone, photo, octave_scale):
    with pytest.raises(ValueError, match="octave_scale"):
        dream.run_deep_dream(photo, backbone, steps_per_octave=1, octave_scale=octave_scale,
                                          show_progress=False)


def test_empty_octaves_are_refused(backbone, photo):
    with pytest.raises(ValueError, match="octaves is empty"):
        dream.run_deep_dream(photo, backbone, octaves=[], show_progress=False)


def test_octave_sizes_follow_the_tutorial():
    # The tutorial: tf.cast(float_base_shape * 1.3**n, tf.int32) for n in -2..2.
    expected = [(int(375 * 1.3**n), int(500 * 1.3**n)) for n in range(-2, 3)]
    assert dream.octave_sizes((375, 500)) == expected


def test_octaves_below_the_networks_minimum_are_dreamed_at_the_minimum_with_a_note(capsys):
    sizes = dream.octave_sizes((40, 80), range(-3, 1), 1.3, min_size=32)
    assert all(min(size) >= 32 for size in sizes)
    assert sizes[-1] == (40, 80)
    assert "smaller than the network's minimum of 32 px" in capsys.readouterr().out


def test_a_photo_smaller_than_the_network_minimum_is_refused(backbone):
    with pytest.raises(ValueError):
        dream.run_deep_dream(np.zeros((8, 8, 3), np.uint8), backbone, steps_per_octave=1, show_progress=False)


def test_wrong_dream_model_type_is_refused(photo):
    with pytest.raises(ValueError, match="dream_model must be"):
        dream.run_deep_dream(photo, "inception", steps_per_octave=1, show_progress=False)


# --- random roll and tiles -----------------------------------------------------------------------


def test_tile_bounds_partition_every_side_into_near_equal_tiles():
    for length in [1, 31, 32, 33, 100, 511, 512, 513, 1000, 4000]:
        for tile_size in [32, 100, 512]:
            bounds = tiles.tile_bounds(length, tile_size).numpy()
            widths = np.diff(bounds)
            assert bounds[0] == 0 and bounds[-1] == length
            assert widths.max() <= max(tile_size, 0) or len(widths) == 1
            assert widths.max() - widths.min() <= 1
            assert len(widths) == max(math.ceil(length / tile_size), 1)
            # The promise run_deep_dream's tiles rely on: no tile shorter than half a tile.
            assert widths.min() >= math.ceil(tile_size / 2) or len(widths) == 1


def test_random_roll_is_undone_by_rolling_back(photo):
    img = model_range(photo)
    shift, rolled = tiles.random_roll(img, 50)
    assert np.all(np.abs(shift.numpy()) <= 50)
    np.testing.assert_array_equal(tf.roll(rolled, -shift, axis=[0, 1]).numpy(), img.numpy())


def engine_gradient(img: tf.Tensor, loss_fn) -> np.ndarray:
    """The input gradient of an engine's own loss function, with a plain tape."""
    with tf.GradientTape() as tape:
        tape.watch(img)
        loss = loss_fn(img)
    return tape.gradient(loss, img).numpy()


def expected_tiled_gradient(img: tf.Tensor, loss_fn, tile_size: int, generator: tf.random.Generator) -> np.ndarray:
    """The tiled gradient computed here tile by tile: roll, tile grid, one tape per tile, roll back."""
    shift = generator.uniform([2], minval=-tile_size, maxval=tile_size, dtype=tf.int32)
    rolled = tf.roll(img, shift, axis=[0, 1])
    height, width = img.shape[:2]
    gradients = np.zeros(img.shape, np.float32)
    for top in range(0, height, tile_size):  # the test sizes are multiples of the tile size
        for left in range(0, width, tile_size):
            tile = rolled[top:top + tile_size, left:left + tile_size]
            gradients[top:top + tile_size, left:left + tile_size] = engine_gradient(tile, loss_fn)
    gradients = np.roll(gradients, -shift.numpy(), axis=(0, 1))
    return gradients / (gradients.std() + 1e-8)


@pytest.mark.parametrize("optimize", [False, True], ids=["keras-model", "fast-graph"])
def test_tiled_gradients_cover_every_pixel_and_read_the_size_at_run_time(dream_model, photo, optimize):
    """Like with like: the tiled gradient against one tape per tile of the *same* engine's loss.

    Only the tiling differs (the roll, the tile grid, the gather, the roll back), so a missing or
    shifted tile shows at once, while kernels that differ between CPUs cancel out.
    """
    tiled = tiles.TiledGradients(dream_model, tile_size=40, optimize=optimize)
    for height, width in [(120, 160), (80, 120)]:  # 3x4 tiles, then 2x3 tiles, one traced function
        img = tf.image.resize(model_range(photo), (height, width))
        twin = tf.random.Generator.from_state(tiled.generator.state.numpy(), tiled.generator.algorithm)
        expected = expected_tiled_gradient(img, tiled._loss_fn, 40, twin)
        gradients = tiled(img).numpy()
        assert gradients.shape == (height, width, 3)
        assert np.all(np.abs(gradients).sum(axis=-1) > 0), "some pixels got no gradient (a skipped tile)"
        assert_same_gradient(gradients, expected, f"tiled gradient at {height}x{width}")
    assert tiled.trace_count == 1


def test_the_fast_tiled_gradient_equals_the_keras_models(dream_model, photo):
    """Across engines (fast graph against the Keras model), within the kink tolerance."""
    tiled = tiles.TiledGradients(dream_model, tile_size=40)
    img = model_range(photo)
    twin = tf.random.Generator.from_state(tiled.generator.state.numpy(), tiled.generator.algorithm)
    expected = expected_tiled_gradient(img, lambda tile: tutorial_loss(tile, dream_model), 40, twin)
    assert_same_gradient(tiled(img).numpy(), expected, "fast tiled gradient against the Keras model's")


def test_tiled_dream_runs_octaves_and_keeps_the_photo_size(backbone, photo):
    dreamed = dream.run_deep_dream(photo, backbone, steps_per_octave=1, octaves=range(-1, 1),
                                              tile_size=64, show_progress=False)
    assert dreamed.shape == photo.shape and dreamed.dtype == np.uint8
    assert np.abs(dreamed.astype(int) - photo.astype(int)).mean() > 0.2


def test_tile_smaller_than_the_network_minimum_is_refused(backbone, photo):
    with pytest.raises(ValueError, match="tile_size"):
        dream.run_deep_dream(photo, backbone, steps_per_octave=1, tile_size=8, show_progress=False)


def test_tile_size_must_be_twice_the_network_minimum_because_tiles_can_be_half_as_long(backbone, photo):
    # A 161 px side with 2 * min_size - 1 px tiles would make tiles shorter than the network's minimum.
    too_small = 2 * backbone.min_size - 1
    with pytest.raises(ValueError, match=f"tile_size must be >= {2 * backbone.min_size}"):
        dream.run_deep_dream(photo, backbone, steps_per_octave=1, tile_size=too_small, show_progress=False)


def test_octaves_may_be_any_iterable(backbone, photo):
    """A generator is read once; it must dream exactly like the range it yields."""
    for options in [{}, {"tile_size": 64}]:
        from_range = dream.run_deep_dream(photo, backbone, steps_per_octave=2, octaves=range(-1, 1),
                                          show_progress=False, **options)
        from_generator = dream.run_deep_dream(photo, backbone, steps_per_octave=2, octaves=(n for n in range(-1, 1)),
                             show_progress=False, **options)
        assert np.abs(from_range.astype(int) - photo.astype(int)).mean() > 0.2, "the range did not dream"
        np.testing.assert_array_equal(from_generator, from_range)


def test_the_same_seed_gives_the_same_tiled_dream_and_another_seed_another(backbone, photo):
    def tiled(seed: int) -> np.ndarray:
        # tile_size 64 on 120x160 px: the random roll moves the tile borders, so the seed matters.
        return dream.run_deep_dream(photo, backbone, steps_per_octave=3, octaves=[0], tile_size=64,
                                               seed=seed, show_progress=False)

    first = tiled(7)
    tiled(8)  # the cached engine's generator moves on in between
    np.testing.assert_array_equal(tiled(7), first)
    assert np.abs(tiled(8).astype(int) - first.astype(int)).max() > 0


def test_a_bad_seed_is_refused(backbone, photo):
    with pytest.raises(ValueError, match="seed must be a whole number"):
        dream.run_deep_dream(photo, backbone, steps_per_octave=1, tile_size=64, seed=1.5,
                                        show_progress=False)


def test_an_octave_larger_than_the_pixel_limit_is_refused_before_any_work():
    from course_lib import images

    # 375x500 px grows by 1.3 per octave: octave 10 is 5169x6892 px (35.6 M pixels), octave 11 is 60.2 M.
    height, width = dream.octave_sizes((375, 500), range(-2, 11))[-1]
    assert height * width <= images.MAX_PIXELS
    with pytest.raises(ValueError, match=r"octave 11 would make the image \d+x\d+ px") as error:
        dream.octave_sizes((375, 500), range(-2, 21))  # the CLI's --octaves -2..20
    assert f"{images.MAX_PIXELS:,}" in str(error.value) and "octave_scale" in str(error.value)


# --- precision -----------------------------------------------------------------------------------


def test_bfloat16_gradient_points_the_same_way_as_float32(dream_model, photo):
    """precision='bfloat16' (chosen automatically only for InceptionV3 on CPUs with AMX) changes the
    numbers a little, never the direction of the ascent."""
    img = model_range(photo)
    engine = dream.DeepDream(dream_model, precision="bfloat16")
    assert engine.precision == "bfloat16"
    with tf.GradientTape() as tape:
        tape.watch(img)
        loss = engine._loss_fn(img)
    fast = tape.gradient(loss, img).numpy().ravel()
    reference = tutorial_gradient(img, dream_model).ravel()
    cosine = fast @ reference / np.linalg.norm(fast) / np.linalg.norm(reference)
    # Measured: 0.89 for this 17-block MobileNetV2 (every ReLU6 kink moves in bfloat16), 0.99 for
    # InceptionV3 to mixed5. Unrelated directions would give ~0; a wrong graph, well under 0.5.
    assert cosine > 0.8
    assert float(loss) == pytest.approx(float(tutorial_loss(img, dream_model)), rel=3e-2)


def test_unknown_precision_is_refused(dream_model):
    with pytest.raises(ValueError, match="precision must be one of"):
        dream.DeepDream(dream_model, precision="float16")


def test_the_minimum_size_of_a_feature_extractor_is_its_backbones(backbone, dream_model):
    assert dream._min_size_of(dream_model) == backbone.min_size


def test_a_layer_the_fast_graph_does_not_know_falls_back_to_the_keras_model(backbone, photo):
    import keras

    features = backbone.model.get_layer("block_5_expand_relu").output
    unusual = keras.Model(backbone.model.input, keras.layers.LeakyReLU(negative_slope=0.1)(features))
    assert dream_graph.fast_loss_function(unusual) is None
    img = model_range(photo)
    g = tutorial_gradient(img, unusual)
    expected = np.clip(img.numpy() + g / (np.std(g) + 1e-8) * 0.01, -1, 1)
    _, stepped = dream.DeepDream(unusual)(img, tf.constant(1), tf.constant(0.01))
    np.testing.assert_allclose(stepped.numpy(), expected, atol=1e-6)


# --- frames: watching a dream form ---------------------------------------------------------------


def test_frames_record_the_photo_then_every_k_steps_and_each_octave_end_at_one_shape(backbone, photo):
    frames = []
    dreamed = dream.run_deep_dream(photo, backbone, steps_per_octave=4, octaves=range(-1, 1), frames=frames,
                                   frame_every=2, show_progress=False)
    # the photo, then 2 frames per octave (after steps 2 and 4), for 2 octaves
    assert len(frames) == 1 + 2 * 2
    assert {frame.shape for frame in frames} == {photo.shape} and frames[0].dtype == np.uint8
    assert np.abs(frames[0].astype(int) - photo.astype(int)).max() <= 1, "the first frame is the photo"
    np.testing.assert_allclose(frames[-1].astype(int), dreamed.astype(int), atol=2)  # the last one is the dream
    changes = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(frames, frames[1:])]
    assert all(change > 0 for change in changes), "every frame shows the dream moving on"


def test_frames_of_a_tiled_dream_and_a_bad_frames_argument(backbone, photo):
    frames = []
    dream.run_deep_dream(photo, backbone, steps_per_octave=3, tile_size=64, frames=frames, frame_every=2,
                         show_progress=False)
    assert len(frames) == 1 + 2  # after step 2 and at the octave's end (step 3)
    with pytest.raises(ValueError, match="frames must be a list"):
        dream.run_deep_dream(photo, backbone, steps_per_octave=1, frames=(), show_progress=False)
    with pytest.raises(ValueError, match="frame_every"):
        dream.run_deep_dream(photo, backbone, steps_per_octave=1, frames=[], frame_every=0, show_progress=False)


def test_big_photos_record_small_frames(backbone):
    from skimage import data

    frames = []
    dream.run_deep_dream(data.astronaut(), backbone, steps_per_octave=1, frames=frames, show_progress=False)
    assert frames[0].shape == (dream.FRAME_MAX_DIM, dream.FRAME_MAX_DIM, 3)


# --- one coding of the step ------------------------------------------------------------------------


def test_the_step_is_coded_once_in_ascent():
    """dream, tiles, beyond and classviz's naive images take ascent's step; none codes its own
    normalisation or clip (the step was written four times)."""
    import ast
    from pathlib import Path

    from course_lib import ascent, beyond
    from course_lib.classviz import render

    for module in (dream, tiles, beyond, render):
        tree = ast.parse(Path(module.__file__).read_text())
        calls = {node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}
        names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        names |= {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        assert not calls & {"clip_by_value", "reduce_std"}, module.__name__
        assert "GRADIENT_EPSILON" not in names, module.__name__  # re-exported by dream, never used outside ascent
    for name in ("STEP_SIZE", "GRADIENT_EPSILON", "PIXEL_MIN", "PIXEL_MAX", "calc_loss", "check_layer_weights",
                 "loss_function", "ascent_step"):
        assert getattr(dream, name) is getattr(ascent, name), name  # the lessons' dream.* names, re-exported
    assert tiles.ascend.python_function is ascent.ascend and tiles.check_layer_weights is ascent.check_layer_weights


def test_ascend_and_normalize_are_the_tutorials_step(photo):
    img = model_range(photo)
    gradients = tf.random.stateless_normal(img.shape, seed=(1, 2)) * 3.0
    g = gradients.numpy()
    expected = np.clip(img.numpy() + g / (np.std(g) + 1e-8) * 0.5, -1, 1)
    from course_lib import ascent

    stepped = ascent.ascend(img, ascent.normalize(gradients), 0.5).numpy()
    np.testing.assert_allclose(stepped, expected, atol=1e-5)
    np.testing.assert_allclose(tiles.ascend(img, ascent.normalize(gradients), tf.constant(0.5)).numpy(), stepped)
    batch = tf.stack([gradients, 10 * gradients])  # each image of a batch by its own spread
    normalised = ascent.normalize(batch, axis=[1, 2, 3]).numpy()
    np.testing.assert_allclose(normalised[0], normalised[1], rtol=1e-4, atol=1e-6)
    assert np.std(normalised[1]) == pytest.approx(1.0, rel=1e-4)


def test_the_engine_says_which_gradient_forms_ran_and_can_be_pinned(dream_model, course_settings):
    pinned = dream.DeepDream(dream_model, forms="tensorflow")
    strided = [name for name, form in pinned.gradient_forms.items() if form.value != "forward"]
    assert strided and {pinned.gradient_forms[name].value for name in strided} == {"tensorflow"}
    assert dream.DeepDream(dream_model, optimize=False).gradient_forms == {}
    with pytest.raises(ValueError, match="forms pins 'polyphase' for block_1_depthwise"):
        dream.DeepDream(dream_model, forms="polyphase")
