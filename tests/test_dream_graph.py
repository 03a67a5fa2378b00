"""Specification of course_lib.dream_graph: the fast graph's levers change the work, never the numbers.

Expected values come from a plain ``tf.GradientTape`` on the Keras model. The networks here have
random weights (and random batch-norm statistics, so that folding them is really tested): they
test the wiring only, and nothing here is a dream.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from course_lib import conv_units, dream_graph, strided_gradients

pytestmark = pytest.mark.slow  # real (random-weight) networks run in most tests

SOURCES = [Path(module.__file__) for module in (dream_graph, conv_units, strided_gradients)]


def randomise_batch_norms(model: keras.Model, seed: int = 0) -> keras.Model:
    """Give every batch norm non-trivial statistics (Keras starts them as the identity)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            weights = layer.get_weights()  # [gamma] [beta] mean variance
            new = [rng.uniform(0.5, 1.5, w.shape) for w in weights[:-2]]
            new += [rng.normal(0, 0.2, weights[-2].shape), rng.uniform(0.5, 2.0, weights[-1].shape)]
            layer.set_weights([w.astype(np.float32) for w in new])
    return model


@pytest.fixture(scope="module")
def mobilenet() -> keras.Model:
    """A small MobileNetV2 to block 13: ReLU6, residual adds, and four ZeroPadding2D + stride-2 depthwise."""
    base = randomise_batch_norms(keras.applications.MobileNetV2(
        input_shape=(None, None, 3), alpha=0.35, include_top=False, weights=None))
    outputs = [base.get_layer(name).output for name in ("block_6_expand_relu", "block_13_expand_relu")]
    return keras.Model(base.input, outputs)


@pytest.fixture(scope="module")
def inception() -> keras.Model:
    """InceptionV3 to mixed3 and mixed5 (the tutorial's layers): VALID strided convolutions, pools, concats."""
    base = randomise_batch_norms(keras.applications.InceptionV3(include_top=False, weights=None), seed=1)
    return keras.Model(base.input, [base.get_layer(name).output for name in ("mixed3", "mixed5")])


@pytest.fixture(autouse=True)
def choices_in_tmp(course_settings):
    """Every test times strided gradients afresh and caches them in its own tmp folder, nothing pinned."""
    course_settings(gradient_forms="auto")


def image(height: int, width: int, seed: int = 0) -> tf.Tensor:
    return tf.random.stateless_uniform((height, width, 3), seed=(seed, 7), minval=-1, maxval=1)


def reference(model: keras.Model, img: tf.Tensor) -> tuple[float, np.ndarray]:
    """The tutorial's loss (sum of mean activations) and its gradient, by GradientTape on the Keras model."""
    with tf.GradientTape() as tape:
        tape.watch(img)
        loss = tf.add_n([tf.reduce_mean(a) for a in model(img[None], training=False)])
    return float(loss), tape.gradient(loss, img).numpy()


def fast(loss_fn, img: tf.Tensor) -> tuple[float, np.ndarray]:
    """Loss and gradient of the fast graph, compiled as the engine compiles it (grappler and all)."""
    @tf.function
    def loss_and_gradient(img):
        with tf.GradientTape() as tape:
            tape.watch(img)
            loss = loss_fn(img)
        return loss, tape.gradient(loss, img)

    loss, gradient = loss_and_gradient(img)
    return float(loss), gradient.numpy()


def assert_same(actual: tuple[float, np.ndarray], expected: tuple[float, np.ndarray], what: str,
                median: bool = True) -> None:
    """Same loss, and the same gradient up to float32 rounding and ReLU-kink flips (see test_dream.py).

    ``median``: also most values to 1e-5 of the largest. Not for random-weight InceptionV3, whose
    gradient is so peaked (median 1e-8, max 1e-5) that rounding alone exceeds that.
    """
    assert actual[0] == pytest.approx(expected[0], rel=1e-4), f"{what}: loss"
    a, b = actual[1].ravel().astype(np.float64), expected[1].ravel().astype(np.float64)
    assert np.linalg.norm(a - b) / np.linalg.norm(b) <= 2e-2, f"{what}: relative error"
    assert a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) >= 0.999, f"{what}: cosine"
    assert not median or np.median(np.abs(a - b)) <= 1e-5 * np.abs(b).max(), f"{what}: median difference"


LEVERS = [
    {"fold_batch_norm": True, "forward_conv_gradients": True},
    {"fold_batch_norm": False, "forward_conv_gradients": True},
    {"fold_batch_norm": True, "forward_conv_gradients": False},
    {"fold_batch_norm": False, "forward_conv_gradients": False},
]


# --- public Keras means only ------------------------------------------------------------------------


@pytest.mark.parametrize("source", SOURCES, ids=lambda path: path.name)
def test_the_engine_reads_no_private_attribute_of_anything(source):
    """No ``x._name`` anywhere: Keras' private attributes (_keras_history, _inbound_nodes) change between versions."""
    tree = ast.parse(source.read_text())
    private = sorted({node.attr for node in ast.walk(tree)
                      if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.endswith("__")})
    assert private == []
    assert not re.search(r"\._[a-z]", source.read_text())
    assert "_keras_history" not in source.read_text() and "_inbound_nodes" not in source.read_text()


def test_the_levers_are_arguments_not_module_globals():
    import inspect

    parameters = inspect.signature(dream_graph.fast_loss_function).parameters
    for name in ("precision", "fold_batch_norm", "forward_conv_gradients"):
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY
    assert not hasattr(dream_graph, "FOLD_BATCH_NORM") and not hasattr(dream_graph, "FORWARD_CONV_GRADIENTS")


# --- the levers: other graphs, the same numbers ------------------------------------------------------


@pytest.mark.parametrize("levers", LEVERS, ids=lambda levers: "-".join(k for k, v in levers.items() if v) or "none")
@pytest.mark.parametrize("size", [(120, 160), (121, 157), (120, 130), (97, 97)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_mobilenet_loss_and_gradient_equal_the_keras_models(mobilenet, levers, size):
    """Sizes chosen so that the stride-2 depthwise layers see every parity of rows and columns
    (their absorbed (0, 1) padding is SAME, VALID, or VALID with the last row or column apart)."""
    loss_fn, precision = dream_graph.fast_loss_function(mobilenet, precision="float32", **levers)
    assert precision == "float32"
    img = image(*size)
    assert_same(fast(loss_fn, img), reference(mobilenet, img), f"{levers} at {size}")


@pytest.mark.parametrize("levers", LEVERS[:2], ids=["fold", "no-fold"])
def test_inception_loss_and_gradient_equal_the_keras_models(inception, levers):
    loss_fn, _ = dream_graph.fast_loss_function(inception, precision="float32", **levers)
    img = image(139, 171, seed=3)  # odd sides: VALID strided convolutions and pools drop a row
    assert_same(fast(loss_fn, img), reference(inception, img), str(levers), median=False)


def test_layer_weights_weigh_each_output(mobilenet):
    img = image(96, 96)
    loss_fn, _ = dream_graph.fast_loss_function(mobilenet, [0.5, 2.0], precision="float32")
    first, second = mobilenet(img[None])
    expected = 0.5 * float(tf.reduce_mean(first)) + 2.0 * float(tf.reduce_mean(second))
    assert float(loss_fn(img)) == pytest.approx(expected, rel=1e-4)


def kinds(graph: dream_graph.DreamGraph) -> list[str]:
    return [type(function).__name__ for _, function, _, _ in graph.steps]


def test_folding_removes_every_batch_norm_and_activation_step(mobilenet):
    folded = dream_graph.DreamGraph(mobilenet, fold_batch_norm=True)
    unfolded = dream_graph.DreamGraph(mobilenet, fold_batch_norm=False)
    names = {name for name, *_ in folded.steps}
    batch_norms = [layer.name for layer in mobilenet.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert batch_norms and not names & set(batch_norms)
    assert {name for name, *_ in unfolded.steps} >= set(batch_norms)  # each one its own step
    assert len(folded.steps) < len(unfolded.steps) - len(batch_norms) // 2  # the ReLU6s join too
    assert not any("pad" in name for name in names)  # the ZeroPadding2D layers joined their convolution


def gradient_op_types(loss_fn) -> list[str]:
    """The op types of the image gradient's graph (outside the switch_case branches)."""
    concrete = tf.function(lambda img: tf.gradients(loss_fn(img), img)[0]).get_concrete_function(
        tf.TensorSpec([None, None, 3], tf.float32))
    return [op.type for op in concrete.graph.get_operations()]


def test_forward_conv_gradients_replace_tensorflows_backward_kernels(mobilenet):
    """With the lever, stride-1 convolutions' input gradients are forward convolutions: of TensorFlow's
    backward kernels remain only Conv1's (if it won the timing) and the strided depthwise layers'
    (inside a switch on the padding). Without it, every other layer has its backward kernel."""
    with_lever, _ = dream_graph.fast_loss_function(mobilenet, precision="float32", forward_conv_gradients=True)
    without, _ = dream_graph.fast_loss_function(mobilenet, precision="float32", forward_conv_gradients=False)
    ops_with, ops_without = gradient_op_types(with_lever), gradient_op_types(without)
    convs = [layer for layer in mobilenet.layers if type(layer) is keras.layers.Conv2D]
    depthwise_stride_1 = [layer for layer in mobilenet.layers
                          if isinstance(layer, keras.layers.DepthwiseConv2D) and layer.get_config()["strides"] == (1, 1)]
    assert len(convs) > 20 and len(depthwise_stride_1) > 5
    assert ops_without.count("Conv2DBackpropInput") == len(convs)
    assert ops_without.count("DepthwiseConv2dNativeBackpropInput") == len(depthwise_stride_1)
    assert ops_with.count("Conv2DBackpropInput") <= 1 and ops_with.count("DepthwiseConv2dNativeBackpropInput") == 0
    assert ops_with.count("Conv2D") >= len(convs) - 1 + ops_without.count("Conv2D")  # gradients as forward convs


# --- strided convolutions' input gradients -------------------------------------------------------------


def spec(kernel_shape, stride, padding, pads=((0, 0), (0, 0)), depthwise=False, seed=0):
    rng = np.random.default_rng(seed)
    kernel = rng.normal(size=kernel_shape).astype(np.float32)
    channels = kernel_shape[2] if depthwise else kernel_shape[3]
    return conv_units.ConvSpec(depthwise, kernel, np.zeros(channels, np.float32), stride, padding, pads, "linear")


def tape_input_gradient(conv_spec, x, dy):
    """TensorFlow's own input gradient. In a tf.function, so that the kernel's gradient is pruned:
    computed eagerly, oneDNN's Conv2DBackpropFilter crashes the process for 1x1 stride-2 kernels
    (TensorFlow 2.21)."""
    @tf.function
    def gradient(x, dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            if conv_spec.depthwise:
                y = tf.nn.depthwise_conv2d(x, conv_spec.kernel, (1, conv_spec.stride, conv_spec.stride, 1),
                                           conv_spec.padding_arg())
            else:
                y = tf.nn.conv2d(x, conv_spec.kernel, conv_spec.stride, conv_spec.padding_arg())
        return tape.gradient(y, x, output_gradients=tf.ones_like(y) if dy is None else dy), tf.shape(y)

    result, shape = gradient(x, dy)
    return result.numpy(), tuple(shape.numpy())


CASES = {
    "3x3 s2 SAME": ((3, 3, 3, 8), 2, "SAME", ((0, 0), (0, 0))),
    "3x3 s2 VALID": ((3, 3, 4, 8), 2, "VALID", ((0, 0), (0, 0))),
    "1x1 s2 VALID": ((1, 1, 4, 8), 2, "VALID", ((0, 0), (0, 0))),
    "2x2 s2 SAME": ((2, 2, 4, 6), 2, "SAME", ((0, 0), (0, 0))),
    "3x3 s3 SAME": ((3, 3, 2, 5), 3, "SAME", ((0, 0), (0, 0))),
    "3x3 s2 pad (0,1)": ((3, 3, 4, 8), 2, "EXPLICIT", ((0, 1), (0, 1))),
    "7x7 s2 pad (3,3)": ((7, 7, 3, 8), 2, "EXPLICIT", ((3, 3), (3, 3))),
    "3x3 s1 pad (1,1)": ((3, 3, 4, 8), 1, "EXPLICIT", ((1, 1), (1, 1))),
    "depthwise 3x3 s2 pad (0,1)": ((3, 3, 6, 1), 2, "EXPLICIT", ((0, 1), (0, 1))),
    "depthwise 3x3 s1 SAME": ((3, 3, 6, 1), 1, "SAME", ((0, 0), (0, 0))),
}


FORMS = [None, *conv_units.GradientForm]


@pytest.fixture
def forms_that_ran(monkeypatch) -> list[conv_units.GradientForm]:
    """The forms whose builder really made an input gradient (a spy on conv_units.GRADIENT_BUILDERS)."""
    ran = []
    for form, build in list(conv_units.GRADIENT_BUILDERS.items()):
        def spy(*args, form=form, build=build, **kwargs):
            ran.append(form)
            return build(*args, **kwargs)

        monkeypatch.setitem(conv_units.GRADIENT_BUILDERS, form, spy)
    return ran


@pytest.mark.parametrize("form", FORMS, ids=lambda form: "default" if form is None else form.value)
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("size", [(16, 20), (17, 23)], ids=["even", "odd"])
def test_every_input_gradient_form_equals_the_tapes(case, form, size, forms_that_ran):
    """Each form that applies is the form that runs, and equals TensorFlow's tape; one that does
    not apply is refused (it used to run TensorFlow's kernel under the form's name)."""
    kernel_shape, stride, padding, pads = CASES[case]
    conv_spec = spec(kernel_shape, stride, padding, pads, depthwise=case.startswith("depthwise"))
    if form is not None and form not in conv_units.applicable_forms(conv_spec):
        with pytest.raises(ValueError, match=f"The '{form.value}' input gradient does not apply here"):
            conv_units.input_gradient(conv_spec, tf.float32, form)
        assert forms_that_ran == []
        return
    x = tf.random.stateless_normal((1, *size, kernel_shape[2]), seed=(1, 2))
    _, y_shape = tape_input_gradient(conv_spec, x, None)
    dy = tf.random.stateless_normal(y_shape, seed=(3, 4))
    expected, _ = tape_input_gradient(conv_spec, x, dy)
    gradient = tf.function(conv_units.input_gradient(conv_spec, tf.float32, form))
    assert forms_that_ran == [conv_units.default_form(conv_spec) if form is None else form]
    np.testing.assert_allclose(gradient(dy, tf.shape(x)).numpy(), expected, atol=2e-5 * np.abs(expected).max())


def test_which_forms_apply_to_which_convolution():
    """The rules, spelled out: 23 of the 40 (case, form) pairs apply; the others are refused."""
    forms = conv_units.GradientForm
    applicable = {case: set(conv_units.applicable_forms(
        spec(kernel_shape, stride, padding, pads, depthwise=case.startswith("depthwise"))))
        for case, (kernel_shape, stride, padding, pads) in CASES.items()}
    strided_dense = {forms.TENSORFLOW, forms.POLYPHASE}
    assert applicable == {
        "3x3 s2 SAME": strided_dense, "3x3 s2 VALID": strided_dense, "1x1 s2 VALID": strided_dense,
        "2x2 s2 SAME": strided_dense, "3x3 s3 SAME": strided_dense,
        "3x3 s2 pad (0,1)": strided_dense | {forms.PADDED}, "7x7 s2 pad (3,3)": strided_dense | {forms.PADDED},
        "3x3 s1 pad (1,1)": {forms.FORWARD, forms.TENSORFLOW, forms.PADDED},
        "depthwise 3x3 s2 pad (0,1)": {forms.TENSORFLOW, forms.PADDED},
        "depthwise 3x3 s1 SAME": {forms.FORWARD, forms.TENSORFLOW},
    }
    assert conv_units.default_form(spec((2, 2, 4, 6), 1, "SAME")) is forms.TENSORFLOW  # even kernel: no forward form


@pytest.mark.parametrize("form", ["polyphase ", "Polyphase", "poly", "default", 3])
def test_an_unknown_form_is_refused_by_name(form):
    with pytest.raises(ValueError, match="is not an input-gradient form; use one of 'forward', 'polyphase'"):
        conv_units.input_gradient(spec((3, 3, 4, 8), 2, "SAME"), tf.float32, form)


CASE = conv_units.PaddingCase


@pytest.mark.parametrize("pads, expected", [
    (((0, 1), (0, 1)), {(16, 20): CASE.SAME, (17, 23): CASE.VALID, (16, 23): CASE.VALID_AND_LAST_ROWS,
                        (17, 20): CASE.VALID_AND_LAST_COLUMNS}),
    (((1, 1), (1, 1)), {(17, 23): CASE.SAME, (16, 20): CASE.EXPLICIT, (16, 23): CASE.EXPLICIT}),
    (((0, 1), (1, 1)), {(17, 23): CASE.EXPLICIT, (16, 23): CASE.SAME, (16, 20): CASE.EXPLICIT})])
def test_an_explicit_padding_runs_as_same_or_valid_where_it_equals_one(pads, expected):
    """TensorFlow's SAME pads (0, 1) for an even side and (1, 1) for an odd one, at stride 2. With
    (0, 1), an even side with an odd one is VALID plus the last row or column."""
    conv_spec = spec((3, 3, 4, 1), 2, "EXPLICIT", pads, depthwise=True)
    for (height, width), case in expected.items():
        assert conv_units.PaddingCase(int(conv_units.padding_case(conv_spec, tf.constant([1, height, width, 4])))) is case


# --- the per-machine choice ---------------------------------------------------------------------------


def small_strided_model() -> keras.Model:
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU(6.0)(x)
    return keras.Model(inputs, keras.layers.Conv2D(4, 1, activation="relu")(x))


def strided_name(model: keras.Model) -> str:
    """The name Keras gave small_strided_model's strided convolution (conv2d, conv2d_2, ...)."""
    return model.layers[1].name


FORM = conv_units.GradientForm


def test_strided_gradients_are_timed_once_cached_and_reported(capsys, monkeypatch):
    model = small_strided_model()
    loss_fn, _ = dream_graph.fast_loss_function(model, precision="float32")
    report = capsys.readouterr().err
    assert "strided_gradients: timed strided convolutions' input gradients" in report and strided_name(model) in report
    strided_form = loss_fn.gradient_forms[strided_name(model)]
    assert strided_form in {FORM.POLYPHASE, FORM.TENSORFLOW}
    assert loss_fn.gradient_forms[model.layers[-1].name] is FORM.FORWARD  # stride 1: never timed
    import json

    stored = json.loads(strided_gradients.choices_path().read_text())
    assert list(stored[strided_gradients.machine()].values()) == [strided_form.value]
    assert strided_gradients.cached_choices() == stored[strided_gradients.machine()]

    def no_timing(*args, **kwargs):
        raise AssertionError("timed again")

    monkeypatch.setattr(strided_gradients, "_time_forms", no_timing)
    graph = dream_graph.DreamGraph(model)  # from the JSON file, as a new process would
    assert capsys.readouterr().err == ""
    forms = [unit.gradient_form for _, unit, _, _ in graph.steps if isinstance(unit, conv_units.ConvUnit)]
    assert forms == [strided_form, FORM.FORWARD] and graph.gradient_forms == loss_fn.gradient_forms


def test_the_choice_is_what_makes_the_graph(monkeypatch, forms_that_ran):
    """Whatever the timing says is the form the graph's strided unit is built with and computes in,
    and both choices give the same numbers."""
    model = randomise_batch_norms(small_strided_model())
    img = image(45, 38)
    for winner in (FORM.POLYPHASE, FORM.TENSORFLOW):
        strided_gradients.choices_path().unlink(missing_ok=True)
        monkeypatch.setattr(strided_gradients, "_time_forms", lambda *args, winner=winner, **kwargs: {
            FORM.POLYPHASE: 1.0 if winner is FORM.POLYPHASE else 2.0,
            FORM.TENSORFLOW: 2.0 if winner is FORM.POLYPHASE else 1.0})
        forms_that_ran.clear()
        loss_fn, _ = dream_graph.fast_loss_function(model, precision="float32")
        assert loss_fn.gradient_forms[strided_name(model)] is winner
        # The graph first runs with the default forms (to time at the probe size), then rebuilds the strided unit.
        assert forms_that_ran == [FORM.TENSORFLOW, FORM.FORWARD] + [winner] * (winner is FORM.POLYPHASE)
        assert_same(fast(loss_fn, img), reference(model, img), winner.value)


@pytest.mark.parametrize("pin", [FORM.POLYPHASE, "polyphase", "by name", "tensorflow"])
def test_forms_pin_the_choice_without_timing(monkeypatch, forms_that_ran, pin):
    monkeypatch.setattr(strided_gradients, "_time_forms", lambda *args, **kwargs: pytest.fail("timed"))
    model = randomise_batch_norms(small_strided_model())
    forms = {strided_name(model): "polyphase"} if pin == "by name" else pin
    loss_fn, _ = dream_graph.fast_loss_function(model, precision="float32", forms=forms)
    expected = FORM.TENSORFLOW if pin == "tensorflow" else FORM.POLYPHASE
    assert loss_fn.gradient_forms == {strided_name(model): expected, model.layers[-1].name: FORM.FORWARD}
    assert expected in forms_that_ran and set(forms_that_ran) <= {expected, FORM.FORWARD, FORM.TENSORFLOW}
    img = image(45, 38)
    assert_same(fast(loss_fn, img), reference(model, img), str(pin))


def test_the_gradient_forms_setting_pins_the_choice(course_settings, monkeypatch, mobilenet):
    """DEEPDREAM_GRADIENT_FORMS, read by course_lib.config: one form everywhere, or per layer."""
    from course_lib import config

    monkeypatch.setattr(strided_gradients, "_time_forms", lambda *args, **kwargs: pytest.fail("timed"))
    monkeypatch.setenv("DEEPDREAM_GRADIENT_FORMS", "tensorflow")
    course_settings(gradient_forms=config.load_settings().gradient_forms)
    graph = dream_graph.DreamGraph(mobilenet)
    strided = {name for name, unit, _, _ in graph.steps if isinstance(unit, conv_units.ConvUnit) and unit.spec.stride > 1}
    assert len(strided) == 4 and {graph.gradient_forms[name] for name in strided} == {FORM.TENSORFLOW}
    monkeypatch.setenv("DEEPDREAM_GRADIENT_FORMS", "Conv1=polyphase, block_1_depthwise=padded")
    course_settings(gradient_forms=config.load_settings().gradient_forms)
    monkeypatch.setattr(strided_gradients, "_time_forms", lambda spec, *args, **kwargs: {FORM.TENSORFLOW: 1.0})
    graph = dream_graph.DreamGraph(mobilenet)
    assert graph.gradient_forms["Conv1"] is FORM.POLYPHASE and graph.gradient_forms["block_1_depthwise"] is FORM.PADDED
    assert graph.gradient_forms["block_3_depthwise"] is FORM.TENSORFLOW  # not pinned: timed (here, a stand-in)
    # The forms= argument wins over the setting.
    assert dream_graph.DreamGraph(mobilenet, forms="tensorflow").gradient_forms["Conv1"] is FORM.TENSORFLOW


def test_a_pinned_form_that_does_not_apply_is_an_error_not_a_fallback(mobilenet, course_settings):
    with pytest.raises(ValueError, match=r"forms pins 'polyphase' for block_1_depthwise, but the polyphase form is "
                                         r"for strided convolutions that are not depthwise. Forms that apply to "
                                         r"block_1_depthwise: 'tensorflow', 'padded'"):
        dream_graph.DreamGraph(mobilenet, forms="polyphase")
    with pytest.raises(ValueError, match="forms names Conv_1, which is no strided convolution of"):
        dream_graph.DreamGraph(mobilenet, forms={"Conv_1": "tensorflow"})
    with pytest.raises(ValueError, match="'polyfase' is not an input-gradient form"):
        dream_graph.fast_loss_function(mobilenet, forms="polyfase")
    with pytest.raises(ValueError, match="forms must be 'auto', a form such as 'tensorflow', or"):
        dream_graph.DreamGraph(mobilenet, forms=2)
    with pytest.raises(ValueError, match="forms pins the input-gradient forms of forward_conv_gradients=True"):
        dream_graph.DreamGraph(mobilenet, forms="tensorflow", forward_conv_gradients=False)
    course_settings(gradient_forms="padded")  # Conv1 is SAME-padded: no explicit padding to pad
    with pytest.raises(ValueError, match="forms pins 'padded' for Conv1, but the padded form is for an explicit padding"):
        dream_graph.DreamGraph(mobilenet)


@pytest.mark.parametrize("text, expected", [
    ("", None), ("auto", None), (" AUTO ", None), ("polyphase", FORM.POLYPHASE),
    ("Conv1=polyphase,block_1_depthwise=padded", {"Conv1": FORM.POLYPHASE, "block_1_depthwise": FORM.PADDED})])
def test_the_setting_is_parsed(text, expected):
    assert strided_gradients.parse_forms(text) == expected


@pytest.mark.parametrize("text, message", [
    ("fastest", "'fastest' is not an input-gradient form"), ("Conv1=", "'' is not an input-gradient form"),
    ("=polyphase", "entry '=polyphase' is not layer=form")])
def test_a_bad_setting_is_refused(text, message):
    with pytest.raises(ValueError, match=message):
        strided_gradients.parse_forms(text)


def test_a_read_only_cache_folder_does_not_stop_the_dream(course_settings, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the cache folder should be")
    course_settings(cache_dir=blocker / "cache")
    model = small_strided_model()
    loss_fn, _ = dream_graph.fast_loss_function(model, precision="float32")
    assert loss_fn.gradient_forms[strided_name(model)] in {FORM.POLYPHASE, FORM.TENSORFLOW}  # timed, used, not cached


# --- what it does not rebuild ------------------------------------------------------------------------


def test_layers_it_does_not_know_give_none():
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(8, 3)(inputs)
    leaky = keras.Model(inputs, keras.layers.LeakyReLU(negative_slope=0.1)(x))
    dilated = keras.Model(inputs, keras.layers.Conv2D(4, 3, dilation_rate=2)(inputs))
    nested = keras.Model(inputs, small_strided_model()(inputs))
    head = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(x))
    for model in (leaky, dilated, nested, head):
        assert dream_graph.fast_loss_function(model, precision="float32") is None, model.layers[-1].name
    sequential = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(4, 3)])
    assert dream_graph.fast_loss_function(sequential, precision="float32") is None


def test_a_layer_used_twice_is_rebuilt_for_each_call():
    inputs = keras.Input((None, None, 3))
    shared = keras.layers.Conv2D(3, 3, padding="same", activation="relu")
    outputs = shared(shared(inputs))
    model = keras.Model(inputs, outputs)
    loss_fn, _ = dream_graph.fast_loss_function(model, precision="float32")
    img = image(20, 24)
    assert_same(fast(loss_fn, img), reference(model, img), "shared layer")


def test_unknown_precision_is_refused(mobilenet):
    with pytest.raises(ValueError, match="precision must be one of"):
        dream_graph.fast_loss_function(mobilenet, precision="float16")


@pytest.mark.parametrize("onednn, flags, expected", [
    (None, "fpu avx2 amx_bf16 amx_tile", "bfloat16"),   # oneDNN is TensorFlow's default on x86
    ("1", "fpu avx2 amx_bf16 amx_tile", "bfloat16"),
    ("0", "fpu avx2 amx_bf16 amx_tile", "float32"),     # Eigen's kernels emulate bfloat16: slower
    ("false", "fpu avx2 amx_bf16 amx_tile", "float32"),
    (None, "fpu avx2 fma", "float32"),                  # no AMX, e.g. an AMD EPYC
])
def test_auto_precision_picks_bfloat16_only_with_amx_and_onednn(inception, mobilenet, monkeypatch, onednn, flags,
                                                                  expected):
    if onednn is None:
        monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    else:
        monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", onednn)
    monkeypatch.setattr(dream_graph, "cpuinfo", lambda field: flags if field == "flags" else "")
    assert dream_graph.fast_precision(inception) == expected
    assert dream_graph.fast_precision(mobilenet) == "float32"  # depthwise convolutions: never bfloat16
