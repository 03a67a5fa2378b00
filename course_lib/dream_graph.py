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
  cost as much as a convolution. Here the convolution pads by itself (see :func:`_padding_case`).
* **Strided convolutions' input gradients chosen per machine.** TensorFlow's backward kernel, its
  VALID kernel on the padded shape, or (not depthwise) one forward convolution per output phase
  interleaved by ``depth_to_space``: which is fastest depends on the kernel family (oneDNN on
  recent Intel CPUs, Eigen on AVX2-only ones such as AMD EPYC) and the layer. Each layer's forms
  are timed once per machine; the choice is reported on stderr and cached (:func:`choices_path`).
* **bfloat16 where the hardware makes it pay** (``precision="auto"``, see :func:`fast_precision`).

The levers are arguments of :func:`loss_function`, so ``bench/bench_dream.py`` measures what each
brings (``--variants``); timings live in its output, not here, where they would go stale. For a
layer this module does not know, :func:`loss_function` returns ``None`` and the caller uses the
Keras model: never a wrong answer, at worst the slower path. ``tests/test_dream.py`` and
``tests/test_dream_graph.py`` check loss and gradient against ``tf.GradientTape`` on the model.
"""
from __future__ import annotations

import json
import os
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

Tensor = tf.Tensor
Key = tuple[str, int]  # (layer name, call index): the one tensor that call of the layer produced

#: Precisions :func:`loss_function` accepts.
PRECISIONS = ("auto", "float32", "bfloat16")


class Unsupported(Exception):
    """The model holds a layer (or a layer option) this module does not rebuild."""


def loss_function(
    model: keras.Model,
    layer_weights: Sequence[float] | None = None,
    *,
    precision: str = "auto",
    fold_batch_norm: bool = True,
    forward_conv_gradients: bool = True,
) -> tuple[Callable[[Tensor], Tensor], str] | None:
    """An ``image -> loss`` function equal to ``course_lib.dream.calc_loss(image, model, layer_weights)``.

    Args:
        model: a functional Keras feature extractor (image batch in, one or more activations out).
        layer_weights: optional weight per output (already validated by the caller).
        precision: ``"float32"`` (the Keras model's numbers), ``"bfloat16"`` (weights and
            activations in bfloat16, the loss in float32: about 2.5x faster on CPUs with AMX, with
            gradients within a few per cent of float32), or ``"auto"`` (see :func:`fast_precision`).
        fold_batch_norm: fold each batch norm into the convolution before it.
        forward_conv_gradients: compute convolutions' input gradients in this module's forms
            (forward convolutions; strided ones chosen per machine); ``False`` leaves them to
            TensorFlow's automatic differentiation.

    Returns:
        ``(loss function of one image (height, width, 3), precision used)``, or ``None`` when the
        model holds a layer this module does not know (then use the Keras model itself).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    try:
        if precision == "auto":
            precision = fast_precision(model)
        graph = DreamGraph(model, tf.as_dtype(precision), fold_batch_norm=fold_batch_norm,
                           forward_conv_gradients=forward_conv_gradients)
    except Unsupported:
        return None
    weights = None if layer_weights is None else [float(w) for w in layer_weights]

    def loss(img: Tensor) -> Tensor:
        activations = graph(tf.cast(tf.expand_dims(img, axis=0), graph.dtype))
        losses = [tf.math.reduce_mean(tf.cast(activation, tf.float32)) for activation in activations]
        if weights is not None:
            losses = [weight * layer_loss for weight, layer_loss in zip(weights, losses)]
        return tf.reduce_sum(losses)

    return loss, precision


def cpu_has_fast_bfloat16() -> bool:
    """True when the CPU multiplies bfloat16 matrices in hardware (Intel AMX), read from /proc/cpuinfo."""
    return "amx_bf16" in _cpuinfo("flags").split()


def fast_precision(model: keras.Model) -> str:
    """The precision ``"auto"`` picks: ``"bfloat16"`` where it is measurably faster, else ``"float32"``.

    Measured with ``bench/bench_dream.py`` on a 2-core Xeon with AMX: InceptionV3 to mixed5 runs
    about 2.5x faster in bfloat16. MobileNetV2 (the dog model) runs *slower* in bfloat16 (its
    depthwise convolutions have no fast bfloat16 kernel), and CPUs without AMX emulate bfloat16
    slowly. So: bfloat16 only for networks without depthwise convolutions, on CPUs with AMX.
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


def _activation_kind(layer: Any) -> str | None:
    """'relu', 'relu6' or 'linear' for a plain activation layer, else None."""
    if isinstance(layer, keras.layers.Activation):
        name = layer.get_config()["activation"]
        return name if name in ("relu", "relu6", "linear") else None
    if isinstance(layer, keras.layers.ReLU):
        config = layer.get_config()
        if config.get("negative_slope") or config.get("threshold"):
            return None
        max_value = config.get("max_value")
        return "relu" if max_value is None else "relu6" if float(max_value) == 6.0 else None
    return None


@dataclass
class _Chain:
    """A convolution and what joins it: a padding layer before, a batch norm and an activation after."""

    conv: Any
    pad: Any = None
    batch_norm: Any = None
    activation: Any = None


def _plan(nodes: dict[Key, tuple[Any, list[Key]]], order: list[Key], outputs: list[Key],
          fold_batch_norm: bool) -> list[tuple[Key, Any, list[Key]]]:
    """``(output key, layer or _Chain, input keys)`` in an order to compute them.

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
        chain, end, linear = _Chain(conv), key, conv.get_config()["activation"] == "linear"
        if (source in nodes and isinstance(nodes[source][0], keras.layers.ZeroPadding2D)
                and only_consumer(source) == key and conv.get_config()["padding"] == "valid"
                and nodes[source][0].get_config().get("data_format", "channels_last") == "channels_last"):
            absorbed.add(source)
            chain.pad, source = nodes[source][0], nodes[source][1][0]
        follower = only_consumer(end)
        if linear and fold_batch_norm and follower and isinstance(nodes[follower][0], keras.layers.BatchNormalization):
            absorbed.add(end)
            chain.batch_norm, end, follower = nodes[follower][0], follower, only_consumer(follower)
        if linear and follower and _activation_kind(nodes[follower][0]) is not None:
            absorbed.add(end)
            chain.activation, end = nodes[follower][0], follower
        chains[end] = (chain, [source])
    return [(key, *chains[key]) if key in chains else (key, *nodes[key]) for key in order if key not in absorbed]


class DreamGraph:
    """A Keras functional model rebuilt as TensorFlow functions; calling it returns the outputs' list.

    Attributes:
        steps: ``(name, function, input keys, output key)`` in the order they run.

    Raises:
        Unsupported: for a layer type or option it does not rebuild.
    """

    def __init__(self, model: keras.Model, dtype: tf.DType = tf.float32, *, fold_batch_norm: bool = True,
                 forward_conv_gradients: bool = True):
        self.dtype = dtype
        self.input_key, self.output_keys, nodes, order = _read_graph(model)
        self.steps: list[tuple[str, Callable[..., Tensor], list[Key], Key]] = []
        for key, what, inputs in _plan(nodes, order, self.output_keys, fold_batch_norm):
            if isinstance(what, _Chain):
                unit = _ConvUnit(_ConvSpec.of(what), dtype, "default" if forward_conv_gradients else None)
                self.steps.append((what.conv.name, unit, inputs, key))
            else:
                self.steps.append((what.name, _simple_layer(what, dtype), inputs, key))
        if forward_conv_gradients:
            _choose_strided_gradients(self)

    def __call__(self, img_batch: Tensor) -> list[Tensor]:
        values = {self.input_key: img_batch}
        for name, function, inputs, key in self.steps:
            with tf.name_scope(re.sub(r"[^A-Za-z0-9_.\-]", "_", name)):  # so that a profile names the layers
                values[key] = function(*[values[source] for source in inputs])
        return [values[key] for key in self.output_keys]


# --- convolution units ----------------------------------------------------------------------------


def _batch_norm_affine(batch_norm: Any) -> tuple[np.ndarray, np.ndarray]:
    """Inference-mode batch norm as ``x * scale + shift`` per channel."""
    config = batch_norm.get_config()
    axis = config["axis"] if isinstance(config["axis"], int) else list(config["axis"])[0]
    if axis not in (-1, 3) or config.get("renorm"):
        raise Unsupported(f"{batch_norm.name}: batch norm over an axis other than channels, or renorm")
    weights = list(batch_norm.get_weights())  # [gamma] [beta] moving_mean moving_variance
    gamma = weights.pop(0) if config["scale"] else 1.0
    beta = weights.pop(0) if config["center"] else 0.0
    scale = gamma / np.sqrt(weights[1] + config["epsilon"])
    return scale.astype(np.float32), (beta - weights[0] * scale).astype(np.float32)


@dataclass
class _ConvSpec:
    """A convolution chain with everything folded in: kernel, bias, stride, padding, activation."""

    depthwise: bool
    kernel: np.ndarray  # (kh, kw, in, out); depthwise (kh, kw, channels, 1)
    bias: np.ndarray
    stride: int
    padding: str  # "SAME", "VALID" or "EXPLICIT"
    pads: tuple[tuple[int, int], tuple[int, int]]  # ((top, bottom), (left, right)) when EXPLICIT
    activation: str  # "relu", "relu6" or "linear"

    @classmethod
    def of(cls, chain: _Chain) -> _ConvSpec:
        conv, config = chain.conv, chain.conv.get_config()
        depthwise = isinstance(conv, keras.layers.DepthwiseConv2D)
        if config.get("data_format", "channels_last") != "channels_last" or tuple(config["dilation_rate"]) != (1, 1):
            raise Unsupported(f"{conv.name}: only channels_last, undilated convolutions")
        if config.get("groups", 1) != 1 or config["activation"] not in ("linear", "relu"):
            raise Unsupported(f"{conv.name}: grouped convolution or a built-in activation other than ReLU")
        if len(set(config["strides"])) != 1 or (depthwise and config["depth_multiplier"] != 1):
            raise Unsupported(f"{conv.name}: unequal strides or a depth multiplier")
        weights = conv.get_weights()
        kernel = weights[0].astype(np.float32)
        channels = kernel.shape[2] if depthwise else kernel.shape[3]
        bias = weights[1].astype(np.float32) if config["use_bias"] else np.zeros(channels, np.float32)
        if chain.batch_norm is not None:
            scale, shift = _batch_norm_affine(chain.batch_norm)
            kernel, bias = kernel * (scale[:, None] if depthwise else scale), bias * scale + shift
        activation = config["activation"] if chain.activation is None else _activation_kind(chain.activation)
        padding, pads = config["padding"].upper(), ((0, 0), (0, 0))
        if chain.pad is not None:
            padding, pads = "EXPLICIT", tuple(tuple(int(p) for p in side) for side in chain.pad.get_config()["padding"])
        return cls(depthwise, kernel, bias, int(config["strides"][0]), padding, pads, activation)

    def padding_arg(self) -> str | list[list[int]]:
        """The padding as ``tf.nn.conv2d`` takes it."""
        return self.padding if self.padding != "EXPLICIT" else [[0, 0], list(self.pads[0]), list(self.pads[1]), [0, 0]]


def _padding_case(spec: _ConvSpec, shape: Tensor) -> Tensor:
    """How an explicit padding can run for an input of this shape, as a ``tf.switch_case`` index.

    0: it is SAME at this size; 1: it is VALID; 3 (4): it is VALID in the columns (rows) and pads
    the rows (columns) only after, so VALID and the last output rows (columns) apart make it; 2:
    none of these. MobileNetV2's (0, 1) is SAME for an even side, VALID for an odd one.
    """
    same, valid = [tf.constant(True)] * 2, [tf.constant(True)] * 2
    s = spec.stride
    for axis, (n, k, (before, after)) in enumerate(zip((shape[1], shape[2]), spec.kernel.shape[:2], spec.pads)):
        size = (n + before + after - k) // s + 1
        same_size = (n + s - 1) // s
        same_before = tf.maximum((same_size - 1) * s + k - n, 0) // 2  # TensorFlow puts the odd pixel after
        same[axis] = tf.equal(same_size, size) & tf.equal(same_before, before)
        valid[axis] = tf.constant(before == 0) & tf.equal((n - k) // s + 1, size)
    rows_after, cols_after = spec.pads[0][0] == 0, spec.pads[1][0] == 0
    return tf.where(same[0] & same[1], 0, tf.where(valid[0] & valid[1], 1, tf.where(
        valid[1] & rows_after, 3, tf.where(valid[0] & cols_after, 4, 2))))


def _apply_activation(kind: str, x: Tensor) -> Tensor:
    return tf.nn.relu(x) if kind == "relu" else tf.nn.relu6(x) if kind == "relu6" else x


def _activation_gradient(kind: str, dy: Tensor, y: Tensor) -> Tensor:
    """The ReLU's derivative as a mask on the incoming gradient (ReluGrad, Relu6Grad read only the output)."""
    if kind == "relu":
        return tf.raw_ops.ReluGrad(gradients=dy, features=y)
    return tf.raw_ops.Relu6Grad(gradients=dy, features=y) if kind == "relu6" else dy


class _ConvUnit:
    """Conv (+ folded batch norm) (+ ReLU) as one function, its input gradient in a given form.

    ``gradient_form``: ``None`` for TensorFlow's automatic differentiation, else a form of
    :func:`_input_gradient`.
    """

    def __init__(self, spec: _ConvSpec, dtype: tf.DType, gradient_form: str | None):
        self.spec, self.dtype, self.gradient_form = spec, dtype, gradient_form
        # oneDNN has no fast bfloat16 depthwise kernel (2x slower than float32): float32 between casts.
        self.compute_dtype = tf.float32 if spec.depthwise else dtype
        self.kernel = tf.constant(spec.kernel, dtype=self.compute_dtype)
        self.bias = tf.constant(spec.bias, dtype=self.compute_dtype)
        self.input_gradient = gradient_form and _input_gradient(spec, self.compute_dtype, gradient_form)

    def convolve(self, x: Tensor, padding: str | list[list[int]]) -> Tensor:
        spec = self.spec
        if spec.depthwise:
            y = tf.nn.depthwise_conv2d(x, self.kernel, (1, spec.stride, spec.stride, 1), padding)
        else:
            y = tf.nn.conv2d(x, self.kernel, spec.stride, padding)
        return _apply_activation(spec.activation, tf.nn.bias_add(y, self.bias))

    def forward(self, x: Tensor) -> Tensor:
        spec = self.spec
        if not (spec.depthwise and spec.padding == "EXPLICIT"):
            return self.convolve(x, spec.padding_arg())
        # TensorFlow 2.21 with oneDNN aborts the process (a failed CHECK in grappler) when it fuses
        # an explicitly padded depthwise convolution with its bias, and a Pad copies the whole
        # input: so SAME or VALID where one of them is the padding at this size (see _padding_case).
        (top, bottom), (left, right) = spec.pads

        def valid_and_tail(axis: int) -> Tensor:
            """VALID, and apart the last outputs, whose windows reach into the padding after ``axis``'s end."""
            start = ((tf.shape(x)[axis] - spec.kernel.shape[axis - 1]) // spec.stride + 1) * spec.stride
            tail = x[:, start:] if axis == 1 else x[:, :, start:]
            # max(): in the branches not taken, the tail may be too short for a window at trace time.
            after = tf.maximum(bottom if axis == 1 else right, spec.kernel.shape[axis - 1] - tf.shape(tail)[axis])
            tail = tf.pad(tail, [[0, 0], [0, after if axis == 1 else 0], [0, after if axis == 2 else 0], [0, 0]])
            return tf.concat([self.convolve(x, "VALID"), self.convolve(tail, "VALID")], axis)

        return tf.switch_case(_padding_case(spec, tf.shape(x)), [
            lambda: self.convolve(x, "SAME"), lambda: self.convolve(x, "VALID"),
            lambda: self.convolve(tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]), "VALID"),
            lambda: valid_and_tail(1), lambda: valid_and_tail(2)])

    def __call__(self, x: Tensor) -> Tensor:
        x = tf.cast(x, self.compute_dtype)
        if self.input_gradient is None:
            return tf.cast(self.forward(x), self.dtype)

        @tf.custom_gradient
        def unit(x: Tensor):
            y = self.forward(x)

            def gradient(dy: Tensor) -> Tensor:
                return self.input_gradient(_activation_gradient(self.spec.activation, dy, y), tf.shape(x))

            return y, gradient

        return tf.cast(unit(x), self.dtype)


def _input_gradient(spec: _ConvSpec, dtype: tf.DType, form: str = "default") -> Callable[[Tensor, Tensor], Tensor]:
    """``(gradient at the output, input shape) -> gradient at the input``, computed in ``form``.

    Forms: ``"forward"`` (stride 1: a forward convolution with the flipped kernel), ``"polyphase"``
    (strided, not depthwise: see :func:`_polyphase_gradient`), ``"tensorflow"`` (TensorFlow's
    backward kernel, given the folded kernel) and ``"padded"`` (for an explicit padding that is
    neither SAME nor VALID at this size: TensorFlow's VALID kernel on the padded shape, cropped).
    ``"default"`` is ``"forward"`` for stride 1, else ``"tensorflow"``; a form that does not apply
    to the layer falls back to ``"tensorflow"``.
    """
    (top, bottom), (left, right) = spec.pads
    height, width = spec.kernel.shape[:2]
    if form == "default":
        form = "forward" if spec.stride == 1 else "tensorflow"
    # A stride-1 input gradient is a "full" correlation: padding k - 1 - p where the forward padded p.
    full = [height - 1 - top, height - 1 - bottom, width - 1 - left, width - 1 - right]
    if spec.padding == "SAME":
        full = [0] if height % 2 and width % 2 else [-1]  # SAME again, for odd kernels
    if (form == "forward" and (spec.stride != 1 or min(full) < 0)) or (form != "forward" and spec.stride == 1) \
            or (form == "polyphase" and spec.depthwise):
        form = "tensorflow"
    if form == "forward":
        padding = "SAME" if spec.padding == "SAME" else [[0, 0], full[:2], full[2:], [0, 0]]
        flipped = spec.kernel[::-1, ::-1] if spec.depthwise else spec.kernel[::-1, ::-1].transpose(0, 1, 3, 2)
        flipped_kernel = tf.constant(np.ascontiguousarray(flipped), dtype=dtype)
        if spec.depthwise:
            return lambda dy, shape: tf.nn.depthwise_conv2d(dy, flipped_kernel, (1, 1, 1, 1), padding)
        return lambda dy, shape: tf.nn.conv2d(dy, flipped_kernel, 1, padding)
    if form == "polyphase":
        return _polyphase_gradient(spec, dtype)
    kernel = tf.constant(spec.kernel, dtype=dtype)
    backprop = tf.raw_ops.DepthwiseConv2dNativeBackpropInput if spec.depthwise else tf.raw_ops.Conv2DBackpropInput

    def tensorflow_gradient(dy: Tensor, shape: Tensor) -> Tensor:
        def run(padding: str, input_shape: Tensor = shape) -> Tensor:
            explicit = [0, 0, top, bottom, left, right, 0, 0] if padding == "EXPLICIT" else []
            return backprop(input_sizes=input_shape, filter=kernel, out_backprop=dy,
                            strides=[1, spec.stride, spec.stride, 1], padding=padding, explicit_paddings=explicit)

        def padded() -> Tensor:
            padded_shape = shape + tf.constant([0, top + bottom, left + right, 0], shape.dtype)
            return tf.slice(run("VALID", padded_shape), tf.constant([0, top, left, 0], shape.dtype), shape)

        if spec.padding != "EXPLICIT":
            return run(spec.padding)
        # oneDNN's backward kernels for SAME and VALID are about 1.7x faster than for explicit padding.
        return tf.switch_case(tf.minimum(_padding_case(spec, shape), 2), [
            lambda: run("SAME"), lambda: run("VALID"), padded if form == "padded" else lambda: run("EXPLICIT")])

    return tensorflow_gradient


def _polyphase_gradient(spec: _ConvSpec, dtype: tf.DType) -> Callable[[Tensor, Tensor], Tensor]:
    """A strided convolution's input gradient as one stride-1 forward convolution and ``depth_to_space``.

    With stride ``s`` and padding ``top``, input row ``j`` (``j + top = s*q + r``) receives the
    gradient of output rows ``q - d`` through kernel row ``s*d + r``, ``d = 0, 1, ...``. So for each
    phase ``r`` of the rows and of the columns, the gradient on the grid ``q`` is a stride-1
    correlation of the output gradient with a sub-kernel. The ``s*s`` phases are the output
    channels of one convolution, and ``depth_to_space`` interleaves them into rows and columns.
    """
    s = spec.stride
    height, width, channels_in, channels_out = spec.kernel.shape
    taps_h, taps_w = -(-height // s), -(-width // s)
    # sub[tap_row, tap_col, out, (phase_row * s + phase_col) * channels_in + in]
    #   = kernel[s * (taps_h - 1 - tap_row) + phase_row, s * (taps_w - 1 - tap_col) + phase_col, in, out]
    kernel = np.pad(spec.kernel, [(0, taps_h * s - height), (0, taps_w * s - width), (0, 0), (0, 0)])
    kernel = kernel.reshape(taps_h, s, taps_w, s, channels_in, channels_out)[::-1, :, ::-1]
    sub = kernel.transpose(0, 2, 5, 1, 3, 4).reshape(taps_h, taps_w, channels_out, s * s * channels_in)
    sub_kernel = tf.constant(np.ascontiguousarray(sub), dtype=dtype)

    def polyphase_gradient(dy: Tensor, shape: Tensor) -> Tensor:
        rows, cols = shape[1], shape[2]
        if spec.padding == "SAME":  # TensorFlow's SAME: the odd pixel of padding goes after
            top = tf.maximum(((rows + s - 1) // s - 1) * s + height - rows, 0) // 2
            left = tf.maximum(((cols + s - 1) // s - 1) * s + width - cols, 0) // 2
        else:
            top, left = spec.pads[0][0], spec.pads[1][0]
        dy_shape = tf.shape(dy)
        grid_rows, grid_cols = (rows + top + s - 1) // s, (cols + left + s - 1) // s
        padded = tf.pad(dy, [[0, 0], [taps_h - 1, tf.maximum(grid_rows - dy_shape[1], 0)],
                             [taps_w - 1, tf.maximum(grid_cols - dy_shape[2], 0)], [0, 0]])
        interleaved = tf.nn.depth_to_space(tf.nn.conv2d(padded, sub_kernel, 1, "VALID"), s)
        return tf.slice(interleaved, tf.stack([0, top, left, 0]), shape)

    return polyphase_gradient


# --- choosing the strided gradients' forms on this machine -------------------------------------------

#: Forms chosen for this machine (timed in this process or read from the cache): layer signature -> form.
_CHOICES: dict[str, str] = {}
#: Those the graphs built in this process use.
_USED: dict[str, str] = {}
#: The image size each strided layer's forms are timed at: a middle octave of a 500 px dream.
PROBE_SIZE = (384, 480)
CHOICES_FILE = "dream_graph_choices.json"


def _cpuinfo(field: str) -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            return next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith(field)), "")
    except OSError:
        return ""


def machine() -> str:
    """What the fastest form depends on: CPU model, core count, TensorFlow version, kernel family setting."""
    return (f"{_cpuinfo('model name') or 'unknown CPU'} | {os.cpu_count()} CPUs | TF {tf.__version__} | "
            f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'default')}")


def choices_path() -> Path:
    """The JSON file caching the choices: ``course_lib.config.settings.cache_dir / CHOICES_FILE``."""
    from course_lib import config  # read now, not at import: the settings may have been changed

    return config.settings.cache_dir / CHOICES_FILE


def strided_gradient_choices() -> dict[str, str]:
    """The input-gradient forms of the strided layers of the graphs built in this process (signature -> form)."""
    return dict(_USED)


def _candidate_forms(spec: _ConvSpec) -> list[str]:
    """The input-gradient forms worth timing for a strided convolution, TensorFlow's kernel first."""
    return ["tensorflow"] + ["padded"] * (spec.padding == "EXPLICIT") + ["polyphase"] * (not spec.depthwise)


def _choose_strided_gradients(graph: DreamGraph) -> None:
    """Give each strided convolution its fastest input-gradient form, timed once per machine."""
    strided = [index for index, (_, unit, _, _) in enumerate(graph.steps)
               if isinstance(unit, _ConvUnit) and unit.spec.stride > 1 and len(_candidate_forms(unit.spec)) > 1]
    if not strided:
        return
    if not _CHOICES:
        try:
            _CHOICES.update(json.loads(choices_path().read_text()).get(machine(), {}))
        except (OSError, ValueError, AttributeError):
            pass
    shapes = _probe_shapes(graph, strided)
    timed = []
    for index in strided:
        name, unit, inputs, key = graph.steps[index]
        spec, shape = unit.spec, _timing_shape(unit.spec, shapes[index])
        signature = (f"{unit.compute_dtype.name} {'depthwise ' if spec.depthwise else ''}{spec.kernel.shape} "
                     f"stride {spec.stride} {spec.padding}{spec.pads if spec.padding == 'EXPLICIT' else ''} "
                     f"input {shape}")
        if signature not in _CHOICES:
            times = _time_forms(spec, unit.compute_dtype, shape)
            best = min(times, key=times.get)  # TensorFlow's kernel unless another is clearly faster
            _CHOICES[signature] = best if times[best] < 0.9 * times["tensorflow"] else "tensorflow"
            timed.append(f"{name}: {_CHOICES[signature]} (median ms "
                         + ", ".join(f"{form} {ms:.2f}" for form, ms in times.items()) + ")")
        graph.steps[index] = (name, _ConvUnit(spec, unit.dtype, _CHOICES[signature]), inputs, key)
        _USED[signature] = _CHOICES[signature]
    if timed:
        print(f"dream_graph: timed strided convolutions' input gradients on this machine ({machine()}), "
              f"chose {'; '.join(timed)}; cached in {choices_path()}", file=sys.stderr)
        try:
            path = choices_path()
            stored = json.loads(path.read_text()) if path.exists() else {}
            stored[machine()] = {**stored.get(machine(), {}), **_CHOICES}
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(stored, indent=1, sort_keys=True))
        except (OSError, ValueError, AttributeError):
            pass  # a read-only cache: the choices hold for this process


def _probe_shapes(graph: DreamGraph, wanted: list[int]) -> dict[int, tuple[int, ...]]:
    """The input shapes of the wanted steps when the graph runs (eagerly) on a :data:`PROBE_SIZE` image."""
    values, shapes = {graph.input_key: tf.zeros((1, *PROBE_SIZE, 3), graph.dtype)}, {}
    for index, (_, function, inputs, key) in enumerate(graph.steps[:max(wanted) + 1]):
        shapes[index] = tuple(int(n) for n in values[inputs[0]].shape)
        values[key] = function(*[values[source] for source in inputs])
    return {index: shapes[index] for index in wanted}


def _timing_shape(spec: _ConvSpec, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape to time at: for an explicit padding, a row or column less where needed so that it is
    neither SAME nor VALID there (at SAME- or VALID-like sizes, all of TensorFlow's forms are one)."""
    for rows, cols in ((0, 0), (0, 1), (1, 0), (1, 1)) if spec.padding == "EXPLICIT" else ():
        candidate = (shape[0], shape[1] - rows, shape[2] - cols, shape[3])
        if int(_padding_case(spec, tf.constant(candidate))) >= 2:
            return candidate
    return shape


def _time_forms(spec: _ConvSpec, dtype: tf.DType, shape: tuple[int, ...], rounds: int = 7) -> dict[str, float]:
    """Median ms of each candidate input gradient of one layer, over interleaved rounds."""
    x, kernel = tf.zeros(shape, dtype), tf.constant(spec.kernel, dtype)
    y = tf.nn.depthwise_conv2d(x, kernel, (1, spec.stride, spec.stride, 1), spec.padding_arg()) if spec.depthwise \
        else tf.nn.conv2d(x, kernel, spec.stride, spec.padding_arg())
    dy = tf.cast(tf.random.stateless_normal(tf.shape(y), seed=(1, 2)), dtype)
    candidates = {form: tf.function(_input_gradient(spec, dtype, form)) for form in _candidate_forms(spec)}
    for function in candidates.values():
        function(dy, tf.shape(x)).numpy()  # trace and warm up
    times: dict[str, list[float]] = {form: [] for form in candidates}
    for round_number in range(rounds):
        for form in list(candidates)[::1 if round_number % 2 else -1]:
            started = time.perf_counter()
            candidates[form](dy, tf.shape(x))
            candidates[form](dy, tf.shape(x)).numpy()
            times[form].append((time.perf_counter() - started) / 2 * 1000)
    return {form: statistics.median(values) for form, values in times.items()}


# --- the other layers -----------------------------------------------------------------------------


def _simple_layer(layer: Any, dtype: tf.DType = tf.float32) -> Callable[..., Tensor]:
    """The layers between convolutions: padding, pooling, joins, lone batch norms and activations."""
    config = layer.get_config()
    if config.get("data_format", "channels_last") != "channels_last":
        raise Unsupported(f"{layer.name}: channels_first")
    if isinstance(layer, keras.layers.BatchNormalization):
        scale, shift = (tf.constant(v, dtype=dtype) for v in _batch_norm_affine(layer))
        return lambda x: x * scale + shift
    kind = _activation_kind(layer)
    if kind is not None:
        return lambda x: _apply_activation(kind, x)
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
