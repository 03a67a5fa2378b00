"""A faster graph for DeepDream's loss and input gradient, with the Keras model's numbers.

DeepDream never trains: each step asks for the gradient of a loss with respect to the *image*,
every weight fixed, and the Keras model computes it the general way, as training would. This
module reads the architecture through public Keras means only (``model.get_config()`` for the
wiring, ``layer.get_config()`` and ``layer.get_weights()`` for each layer) and rebuilds it as
TensorFlow functions that give the same loss and gradient with less work:

* **Batch norm folded into the convolution before it.** In inference a batch norm is a fixed
  affine map per channel; scaling the kernel and shifting the bias saves a pass over the
  activation forward and one backward, and TensorFlow fuses convolution, bias and ReLU.
* **Input gradients as forward convolutions** (``tf.custom_gradient``). A stride-1 convolution's
  input gradient is a forward convolution of the incoming gradient with the kernel flipped in
  space, in/out channels swapped: for 1x1 kernels a matrix product, which TensorFlow's backward
  kernel does 1.5x (oneDNN) to 2-3x (Eigen) slower. The ReLU's mask is applied in the same step.
* **Padding layers absorbed.** MobileNetV2 pads with a ``ZeroPadding2D`` layer before each stride-2
  depthwise convolution; copying the padded activation forward and cropping its gradient backward
  cost as much as a convolution. Here the convolution pads by itself.
* **Strided convolutions' input gradients chosen per machine.** TensorFlow's backward kernel, its
  VALID kernel on the padded shape, or (not depthwise) one forward convolution per output phase
  interleaved by ``depth_to_space``: which is fastest depends on the kernel family (oneDNN on
  recent Intel CPUs, Eigen on AVX2-only ones such as AMD EPYC) and the layer. Each layer's forms
  are timed once per machine; the choice is reported on stderr and cached.
* **bfloat16 where the hardware makes it pay** (``precision="auto"``, see :func:`fast_precision`).

This module reads the model and plans the graph; :mod:`course_lib.conv_units` holds the folded
convolution units and their input-gradient forms, and :mod:`course_lib.strided_gradients` chooses
the strided layers' forms on this machine.

The levers are arguments of :func:`fast_loss_function`, so ``bench/bench_dream.py`` measures what each
brings (``--variants``); timings live in its output, not here, where they would go stale. For a
layer this module does not know, :func:`fast_loss_function` returns ``None`` and the caller uses the
Keras model: never a wrong answer, at worst the slower path. ``tests/test_dream.py`` and
``tests/test_dream_graph.py`` check loss and gradient against ``tf.GradientTape`` on the model.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from course_lib.conv_units import (  # noqa: E402
    Chain,
    ConvSpec,
    ConvUnit,
    GradientForm,
    Unsupported,
    activation_kind,
    apply_activation,
    batch_norm_affine,
    default_form,
)
from course_lib.strided_gradients import Forms, choose_forms, cpuinfo  # noqa: E402

Tensor = tf.Tensor
Key = tuple[str, int]  # (layer name, call index): the one tensor that call of the layer produced

#: Precisions :func:`fast_loss_function` accepts.
PRECISIONS = ("auto", "float32", "bfloat16")


def fast_loss_function(
    model: keras.Model,
    layer_weights: Sequence[float] | None = None,
    *,
    precision: str = "auto",
    fold_batch_norm: bool = True,
    forward_conv_gradients: bool = True,
    forms: Forms = None,
) -> tuple[Callable[[Tensor], Tensor], str] | None:
    """An ``image -> loss`` function equal to ``course_lib.ascent.calc_loss(image, model, layer_weights)``,
    or ``None`` when this module cannot rebuild the model (:func:`course_lib.ascent.loss_function`,
    the engines' one, then falls back to ``calc_loss`` itself).

    Args:
        model: a functional Keras feature extractor (image batch in, one or more activations out).
        layer_weights: optional weight per output (already validated by the caller).
        precision: ``"float32"`` (the Keras model's numbers), ``"bfloat16"`` (weights and
            activations in bfloat16, the loss in float32: faster on CPUs with AMX, with gradients
            within a few per cent of float32), or ``"auto"`` (see :func:`fast_precision`).
        fold_batch_norm: fold each batch norm into the convolution before it.
        forward_conv_gradients: compute convolutions' input gradients in this module's forms
            (forward convolutions; strided ones chosen per machine); ``False`` leaves them to
            TensorFlow's automatic differentiation.
        forms: pins the strided convolutions' input-gradient forms (see
            :func:`course_lib.strided_gradients.choose_forms`); ``None`` follows
            ``DEEPDREAM_GRADIENT_FORMS``, else they are timed once per machine.

    Returns:
        ``(loss function of one image (height, width, 3), precision used)``, or ``None`` when the
        model holds a layer this module does not know (then use the Keras model itself). The loss
        function's ``gradient_forms`` attribute says which form each convolution's gradient runs in.

    Raises:
        ValueError: an unknown precision, or a pinned form that is unknown or does not apply.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    try:
        if precision == "auto":
            precision = fast_precision(model)
        graph = DreamGraph(model, tf.as_dtype(precision), fold_batch_norm=fold_batch_norm,
                           forward_conv_gradients=forward_conv_gradients, forms=forms)
    except Unsupported:
        return None
    weights = None if layer_weights is None else [float(w) for w in layer_weights]

    # Plain TensorFlow calls with no Python branching on tensors: AutoGraph would only spend about
    # a second rewriting each of the graph's functions at the trace (measured with cProfile).
    @tf.autograph.experimental.do_not_convert
    def loss(img: Tensor) -> Tensor:
        activations = graph(tf.cast(tf.expand_dims(img, axis=0), graph.dtype))
        losses = [tf.math.reduce_mean(tf.cast(activation, tf.float32)) for activation in activations]
        if weights is not None:
            losses = [weight * layer_loss for weight, layer_loss in zip(weights, losses)]
        return tf.reduce_sum(losses)

    loss.gradient_forms = dict(graph.gradient_forms)
    return loss, precision


def cpu_has_fast_bfloat16() -> bool:
    """True when the CPU multiplies bfloat16 matrices in hardware (Intel AMX) and TensorFlow uses oneDNN,
    whose kernels use it (``TF_ENABLE_ONEDNN_OPTS=0`` selects Eigen's, which emulate bfloat16 slowly)."""
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1").strip().lower() not in ("0", "false")
    return onednn and "amx_bf16" in cpuinfo("flags").split()


def fast_precision(model: keras.Model) -> str:
    """The precision ``"auto"`` picks: ``"bfloat16"`` where it is measurably faster, else ``"float32"``.

    Measured with ``bench/bench_dream.py`` on a 2-core Xeon with AMX: InceptionV3 to mixed5 runs
    about 1.6x faster in bfloat16 than in float32 with oneDNN's kernels. MobileNetV2 (the dog model)
    runs *slower* in bfloat16 (its depthwise convolutions have no fast bfloat16 kernel), and so does
    everything on CPUs without AMX or with Eigen's kernels. So: bfloat16 only for networks without
    depthwise convolutions, on CPUs with AMX, with oneDNN.
    """
    has_depthwise = any(isinstance(layer, keras.layers.DepthwiseConv2D) for layer in model.layers)
    return "bfloat16" if cpu_has_fast_bfloat16() and not has_depthwise else "float32"


# --- reading the model from its public config ------------------------------------------------------


def _tensor_keys(value: Any) -> list[Key]:
    """The keys of the Keras tensors in a serialized call argument, in order."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            name, node_index, tensor_index = value["config"]["keras_history"]
            if tensor_index != 0:
                raise Unsupported(f"layer {name} has several outputs")
            return [(name, node_index)]
        return [key for item in value.values() for key in _tensor_keys(item)]
    if isinstance(value, (list, tuple)):
        return [key for item in value for key in _tensor_keys(item)]
    return []


def _read_graph(model: keras.Model) -> tuple[Key, list[Key], dict[Key, tuple[Any, list[Key]]], list[Key]]:
    """(input key, output keys, {key: (layer, input keys)}, the keys the outputs need, in order)."""
    try:
        config = model.get_config()
    except Exception as error:  # e.g. a subclassed model without get_config
        raise Unsupported(f"no config: {error}") from None
    if not isinstance(config, dict) or not {"layers", "input_layers", "output_layers"} <= config.keys():
        raise Unsupported("not a functional model")
    layers = {layer.name: layer for layer in model.layers}
    nodes = {}
    for layer_config in config["layers"]:
        for index, call in enumerate(layer_config.get("inbound_nodes") or []):
            if _tensor_keys(call.get("kwargs", {})):
                raise Unsupported(f"{layer_config['name']}: a tensor passed by keyword")
            nodes[(layer_config["name"], index)] = (layers[layer_config["name"]], _tensor_keys(call.get("args", ())))
    ends = {}
    for end in ("input_layers", "output_layers"):  # [name, node, tensor], or a list of them
        entries = config[end] if config[end] and not isinstance(config[end][0], str) else [config[end]]
        ends[end] = _tensor_keys([{"class_name": "__keras_tensor__", "config": {"keras_history": entry}}
                                  for entry in entries])
    if len(ends["input_layers"]) != 1:
        raise Unsupported("more than one input")
    order: list[Key] = []  # depth first from each output, without recursion (InceptionV3 is deep)
    done = set(ends["input_layers"])
    for output in ends["output_layers"]:
        stack = [(output, False)]
        while stack:
            key, inputs_done = stack.pop()
            if key in done:
                continue
            if key not in nodes:
                raise Unsupported(f"{key[0]} is not computed from the model's input")
            if inputs_done:
                done.add(key)
                order.append(key)
            else:
                stack += [(key, True)] + [(source, False) for source in reversed(nodes[key][1]) if source not in done]
    return ends["input_layers"][0], ends["output_layers"], nodes, order


def _plan(nodes: dict[Key, tuple[Any, list[Key]]], order: list[Key], outputs: list[Key],
          fold_batch_norm: bool) -> list[tuple[Key, Any, list[Key]]]:
    """``(output key, layer or Chain, input keys)`` in an order to compute them.

    A layer joins a chain only when it is the one consumer of the chain's value so far (and that
    value is not a model output), so the values inside a chain are never needed on their own.
    """
    consumers: dict[Key, list[Key]] = {}
    for key in order:
        for source in nodes[key][1]:
            consumers.setdefault(source, []).append(key)

    def only_consumer(key: Key) -> Key | None:
        users = consumers.get(key, [])
        return users[0] if len(users) == 1 and key not in outputs else None

    chains, absorbed = {}, set()
    for key in order:
        conv = nodes[key][0]
        if not isinstance(conv, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
            continue
        source = nodes[key][1][0]
        chain, end, linear = Chain(conv), key, conv.get_config()["activation"] == "linear"
        if (source in nodes and isinstance(nodes[source][0], keras.layers.ZeroPadding2D)
                and only_consumer(source) == key and conv.get_config()["padding"] == "valid"
                and nodes[source][0].get_config().get("data_format", "channels_last") == "channels_last"):
            absorbed.add(source)
            chain.pad, source = nodes[source][0], nodes[source][1][0]
        follower = only_consumer(end)
        if linear and fold_batch_norm and follower and isinstance(nodes[follower][0], keras.layers.BatchNormalization):
            absorbed.add(end)
            chain.batch_norm, end, follower = nodes[follower][0], follower, only_consumer(follower)
        if linear and follower and activation_kind(nodes[follower][0]) is not None:
            absorbed.add(end)
            chain.activation, end = nodes[follower][0], follower
        chains[end] = (chain, [source])
    return [(key, *chains[key]) if key in chains else (key, *nodes[key]) for key in order if key not in absorbed]


class DreamGraph:
    """A Keras functional model rebuilt as TensorFlow functions; calling it returns the outputs' list.

    With ``forward_conv_gradients``, each convolution's input gradient runs in a
    :class:`course_lib.conv_units.GradientForm`: forward for stride 1, and for strided ones what
    :func:`course_lib.strided_gradients.choose_forms` returns (timed, or pinned by ``forms``).

    Attributes:
        steps: ``(name, function, input keys, output key)`` in the order they run.
        gradient_forms: each convolution's input-gradient form (layer name -> form); empty without
            ``forward_conv_gradients`` (TensorFlow's automatic differentiation throughout).

    Raises:
        Unsupported: for a layer type or option it does not rebuild.
        ValueError: a pinned form that is unknown or does not apply to its layer.
    """

    def __init__(self, model: keras.Model, dtype: tf.DType = tf.float32, *, fold_batch_norm: bool = True,
                 forward_conv_gradients: bool = True, forms: Forms = None):
        if forms is not None and not forward_conv_gradients:
            raise ValueError("forms pins the input-gradient forms of forward_conv_gradients=True; with False, "
                             "TensorFlow's automatic differentiation computes every gradient. Drop one of the two.")
        self.dtype, self.name = dtype, model.name
        self.input_key, self.output_keys, nodes, order = _read_graph(model)
        steps = []
        for key, what, inputs in _plan(nodes, order, self.output_keys, fold_batch_norm):
            if isinstance(what, Chain):
                spec = ConvSpec.of(what)
                steps.append((what.conv.name, ConvUnit(spec, dtype, default_form(spec) if forward_conv_gradients else None),
                              inputs, key))
            else:
                steps.append((what.name, _simple_layer(what, dtype), inputs, key))
        self.steps: list[tuple[str, Callable[..., Tensor], list[Key], Key]] = steps
        if forward_conv_gradients:
            # The default forms run the graph forward, which choose_forms needs to time at a probe size;
            # then the strided units it chose another form for are rebuilt with it.
            chosen = choose_forms(self, forms)
            self.steps = [(name, ConvUnit(function.spec, dtype, chosen[key])
                           if key in chosen and chosen[key] is not function.gradient_form else function, inputs, key)
                          for name, function, inputs, key in steps]
        self.gradient_forms: dict[str, GradientForm] = {
            name: function.gradient_form for name, function, _, _ in self.steps
            if isinstance(function, ConvUnit) and function.gradient_form is not None}

    def __call__(self, img_batch: Tensor) -> list[Tensor]:
        values = {self.input_key: img_batch}
        for name, function, inputs, key in self.steps:
            with tf.name_scope(re.sub(r"[^A-Za-z0-9_.\-]", "_", name)):  # so that a profile names the layers
                values[key] = function(*[values[source] for source in inputs])
        return [values[key] for key in self.output_keys]


# --- the other layers -----------------------------------------------------------------------------


def _simple_layer(layer: Any, dtype: tf.DType = tf.float32) -> Callable[..., Tensor]:
    """The layers between convolutions: padding, pooling, joins, lone batch norms and activations."""
    config = layer.get_config()
    if config.get("data_format", "channels_last") != "channels_last":
        raise Unsupported(f"{layer.name}: channels_first")
    if isinstance(layer, keras.layers.BatchNormalization):
        scale, shift = (tf.constant(v, dtype=dtype) for v in batch_norm_affine(layer))
        return lambda x: x * scale + shift
    kind = activation_kind(layer)
    if kind is not None:
        return lambda x: apply_activation(kind, x)
    if isinstance(layer, keras.layers.ZeroPadding2D):
        (top, bottom), (left, right) = config["padding"]
        return lambda x: tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])
    if isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)):
        pool = tf.nn.max_pool2d if isinstance(layer, keras.layers.MaxPooling2D) else tf.nn.avg_pool2d
        size, strides, padding = tuple(config["pool_size"]), tuple(config["strides"]), config["padding"].upper()
        return lambda x: pool(x, size, strides, padding)
    if isinstance(layer, keras.layers.Concatenate) and config["axis"] in (-1, 3):
        return lambda *xs: tf.concat(list(xs), axis=-1)
    if isinstance(layer, keras.layers.Add):
        return lambda *xs: tf.add_n(list(xs))
    raise Unsupported(f"layer {layer.name} ({type(layer).__name__})")
