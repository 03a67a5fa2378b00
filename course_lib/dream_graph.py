"""A faster graph for DeepDream's loss and input gradient, with the Keras model's numbers.

DeepDream never trains: it asks for the gradient of a loss with respect to the *image*, with every
weight fixed. This module rebuilds a Keras feature extractor (InceptionV3, MobileNetV2, the
embedded dog model) as plain TensorFlow functions that compute the same loss and gradient faster:

* **Batch normalisation folded into the convolution before it.** In inference mode a batch norm
  is a fixed affine map per channel, ``y = x * scale + shift``; multiplying the kernel by ``scale``
  and adding ``shift`` to the bias removes two passes (forward and back) per convolution.
* **Input gradients written as forward convolutions** (``tf.custom_gradient``). For a stride-1
  convolution, the gradient with respect to its input is a forward convolution of the incoming
  gradient with the kernel flipped in space and its in/out channels swapped (a 1x1 convolution's
  is a matrix product with the transposed kernel; a depthwise one's is a depthwise convolution
  with the flipped kernel). The ReLU's derivative (a mask) is applied inside the same function.
* **bfloat16 where the hardware makes it pay** (``precision="auto"``, see :func:`fast_precision`).

Measured on this course's 2-core Xeon (TensorFlow 2.21, oneDNN), CPU time per step (forward + input
gradient), 500x403 px, with ``bench/bench_dream.py`` and the ablations it offers. The dog model's
column was measured when it dreamed with block_5 + block_9; it now dreams with
``block_6_expand_relu`` + ``block_10_expand_relu`` (:mod:`course_lib.models`), one block deeper
each; those timings were not re-measured (rerun ``bench/bench_dream.py`` for today's numbers):

=====================================  ====================  ========================================
graph                                  InceptionV3 mixed3+5  dog model (measured with block_5+9)
=====================================  ====================  ========================================
Keras model, tf.GradientTape            ~300 ms               ~105 ms
batch norm folded                       ~283 ms               ~70 ms
forward-convolution gradients only      ~298 ms               ~104 ms
both                                    ~270 ms               ~72 ms
both, bfloat16                          ~110 ms               ~92 ms (slower: no fast depthwise kernel)
=====================================  ====================  ========================================

Forward-convolution gradients matter less here than one might expect: oneDNN's own input gradient
of a SAME-padded convolution is already as fast as the forward pass (1x1, 3x3, 1x7, depthwise 3x3
all within 5%); only VALID-padded ones (InceptionV3's stem) gain, 10.3 -> 6.0 ms for a 3x3 conv at
200x250x32. They are kept because they never cost anything measurable and help InceptionV3.

Strided convolutions keep TensorFlow's own gradient (their input gradient is not a plain forward
convolution). Layers this module does not know make :func:`loss_function` return ``None``, and the
caller falls back to the Keras model: never a wrong answer, at worst the slower path.

``tests/test_dream.py`` checks the loss and the input gradient against ``tf.GradientTape`` on the
original Keras model.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

Tensor = tf.Tensor

#: The two levers, switchable so the benchmark can measure each one (both on in normal use).
FOLD_BATCH_NORM = True
FORWARD_CONV_GRADIENTS = True


class Unsupported(Exception):
    """The model holds a layer (or a layer option) this module does not rebuild."""


#: Precisions :func:`loss_function` accepts.
PRECISIONS = ("auto", "float32", "bfloat16")


def loss_function(
    model: keras.Model, layer_weights: Sequence[float] | None = None, *, precision: str = "auto"
) -> tuple[Callable[[Tensor], Tensor], str] | None:
    """An ``image -> loss`` function equal to ``course_lib.dream.calc_loss(image, model, layer_weights)``.

    Args:
        model: a functional Keras feature extractor (image batch in, one or more activations out).
        layer_weights: optional weight per output (already validated by the caller).
        precision: ``"float32"`` (the Keras model's numbers), ``"bfloat16"`` (weights and
            activations in bfloat16, the loss in float32: about 2.5x faster on CPUs with AMX, with
            gradients within a few per cent of float32), or ``"auto"`` (see :func:`fast_precision`).

    Returns:
        ``(loss function of one image (height, width, 3), precision used)``, or ``None`` when the
        model holds a layer this module does not know (then use the Keras model itself).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    try:
        if precision == "auto":
            precision = fast_precision(model)
        graph = DreamGraph(model, dtype=tf.as_dtype(precision))
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
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return "amx_bf16" in line.split()
    except OSError:
        pass
    return False


def fast_precision(model: keras.Model) -> str:
    """The precision ``"auto"`` picks: ``"bfloat16"`` where it is measurably faster, else ``"float32"``.

    Measured with ``bench/bench_dream.py`` on a 2-core Xeon with AMX: InceptionV3 to mixed5 runs
    about 2.5x faster in bfloat16. MobileNetV2 (the dog model) runs *slower* in bfloat16 (its
    depthwise convolutions have no fast bfloat16 kernel), and CPUs without AMX emulate bfloat16
    slowly. So: bfloat16 only for networks without depthwise convolutions, on CPUs with AMX.
    """
    has_depthwise = any(isinstance(layer, keras.layers.DepthwiseConv2D) for layer in model.layers)
    return "bfloat16" if cpu_has_fast_bfloat16() and not has_depthwise else "float32"


class DreamGraph:
    """A Keras functional model rebuilt as TensorFlow functions, batch norm folded, fast input gradients.

    Calling it on an image batch returns the list of the model's outputs, in order.

    Raises:
        Unsupported: for a layer type or option it does not rebuild.
    """

    def __init__(self, model: keras.Model, dtype: tf.DType = tf.float32):
        self.dtype = dtype
        if not isinstance(model, keras.Model) or not hasattr(model, "outputs") or not model.outputs:
            raise Unsupported("not a functional model")
        if len(model.inputs) != 1:
            raise Unsupported("more than one input")
        self._input_key = id(model.inputs[0])
        self._output_keys = [id(tensor) for tensor in model.outputs]
        self._steps: list[tuple[Callable, list[int], int]] = []
        self._plan(model)

    def __call__(self, img_batch: Tensor) -> list[Tensor]:
        values = {self._input_key: img_batch}
        for function, input_keys, output_key in self._steps:
            values[output_key] = function(*[values[key] for key in input_keys])
        return [values[key] for key in self._output_keys]

    # --- planning: walk the Keras graph from the outputs back to the input ------------------------

    def _plan(self, model: keras.Model) -> None:
        producers: dict[int, tuple[Any, list[Any]]] = {}  # tensor id -> (layer, input tensors)
        consumers: dict[int, int] = {}
        order: list[Any] = []  # output tensors in topological order
        stack_seen: set[int] = set()

        def visit(tensor) -> None:
            key = id(tensor)
            if key in producers or key == self._input_key:
                return
            if key in stack_seen:
                raise Unsupported("cycle")
            stack_seen.add(key)
            layer, node_index, _ = tensor._keras_history
            node = layer._inbound_nodes[node_index]
            if len(node.output_tensors) != 1:
                raise Unsupported(f"layer {layer.name} has several outputs")
            inputs = list(node.input_tensors)
            for input_tensor in inputs:
                consumers[id(input_tensor)] = consumers.get(id(input_tensor), 0) + 1
                visit(input_tensor)
            producers[key] = (layer, inputs)
            order.append(tensor)

        for output in model.outputs:
            visit(output)
        outputs = set(self._output_keys)

        def single_use(tensor) -> bool:
            return consumers.get(id(tensor), 0) == 1 and id(tensor) not in outputs

        # Fuse conv -> batch norm -> activation chains: the later layers are absorbed into the conv.
        absorbed: set[int] = set()
        fused: dict[int, tuple[Any, Any, Any]] = {}  # id of the chain's last tensor -> (conv, bn, activation)
        for tensor in order:
            layer, inputs = producers[id(tensor)]
            if not isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
                continue
            chain_end, batch_norm, activation = tensor, None, None
            follower = self._single_consumer(tensor, order, producers) if single_use(tensor) else None
            if (FOLD_BATCH_NORM and follower is not None
                    and isinstance(producers[id(follower)][0], keras.layers.BatchNormalization)):
                batch_norm, chain_end = producers[id(follower)][0], follower
                absorbed.add(id(tensor))
                follower = self._single_consumer(follower, order, producers) if single_use(follower) else None
            if follower is not None and _activation_kind(producers[id(follower)][0]) is not None:
                activation = producers[id(follower)][0]
                absorbed.add(id(chain_end))
                chain_end = follower
            fused[id(chain_end)] = (layer, batch_norm, activation)
            if chain_end is not tensor:
                absorbed.add(id(tensor))

        conv_inputs: dict[int, int] = {}
        for tensor in order:
            layer, inputs = producers[id(tensor)]
            if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
                conv_inputs[id(tensor)] = id(inputs[0])
        for tensor in order:
            key = id(tensor)
            if key in fused:
                conv, batch_norm, activation = fused[key]
                conv_output = self._find_conv_output(tensor, producers, conv)
                self._steps.append((_conv_unit(conv, batch_norm, activation, self.dtype), [conv_inputs[conv_output]], key))
            elif key in absorbed:
                continue
            else:
                layer, inputs = producers[key]
                self._steps.append((_simple_layer(layer, self.dtype), [id(t) for t in inputs], key))

    @staticmethod
    def _single_consumer(tensor, order, producers):
        for candidate in order:
            if any(source is tensor for source in producers[id(candidate)][1]):
                return candidate
        return None

    @staticmethod
    def _find_conv_output(tensor, producers, conv) -> int:
        while True:
            layer, inputs = producers[id(tensor)]
            if layer is conv:
                return id(tensor)
            tensor = inputs[0]


# --- layers ----------------------------------------------------------------------------------------


def _activation_kind(layer) -> str | None:
    """'relu' or 'relu6' for a plain ReLU layer, else None."""
    if isinstance(layer, keras.layers.Activation):
        name = getattr(layer.activation, "__name__", "")
        return "relu" if name == "relu" else None
    if isinstance(layer, keras.layers.ReLU):
        config = layer.get_config()
        if config.get("negative_slope", 0) or config.get("threshold", 0):
            return None
        max_value = config.get("max_value")
        if max_value is None:
            return "relu"
        if float(max_value) == 6.0:
            return "relu6"
    return None


def _apply_activation(kind: str | None, x: Tensor) -> Tensor:
    if kind == "relu":
        return tf.nn.relu(x)
    if kind == "relu6":
        return tf.nn.relu6(x)
    return x


def _activation_gradient(kind: str | None, dy: Tensor, y: Tensor) -> Tensor:
    # ReluGrad / Relu6Grad mask the incoming gradient where the output was 0 (or 6): the derivative.
    if kind == "relu":
        return tf.raw_ops.ReluGrad(gradients=dy, features=y)
    if kind == "relu6":
        return tf.raw_ops.Relu6Grad(gradients=dy, features=y)
    return dy


def _padding_amounts(kernel_size: int, padding: str) -> tuple[int, int]:
    """(before, after) zero padding of a stride-1 convolution, as TensorFlow pads it."""
    if padding == "valid":
        return 0, 0
    before = (kernel_size - 1) // 2
    return before, kernel_size - 1 - before


def _batch_norm_affine(batch_norm) -> tuple[np.ndarray, np.ndarray]:
    """Inference-mode batch norm as ``x * scale + shift`` per channel."""
    config = batch_norm.get_config()
    axis = config["axis"]
    if (axis if isinstance(axis, int) else axis[0]) not in (-1, 3):
        raise Unsupported("batch norm over an axis other than channels")
    weights = {w.path.split("/")[-1]: w.numpy() for w in batch_norm.weights}
    channels = weights["moving_mean"].shape[0]
    gamma = weights.get("gamma", np.ones(channels, np.float32)) if config["scale"] else np.ones(channels, np.float32)
    beta = weights.get("beta", np.zeros(channels, np.float32)) if config["center"] else np.zeros(channels, np.float32)
    scale = gamma / np.sqrt(weights["moving_variance"] + config["epsilon"])
    shift = beta - weights["moving_mean"] * scale
    return scale.astype(np.float32), shift.astype(np.float32)


def _conv_unit(conv, batch_norm, activation, dtype: tf.DType = tf.float32) -> Callable[[Tensor], Tensor]:
    """Conv (+ folded batch norm) (+ ReLU) as one function with a forward-convolution input gradient."""
    depthwise = isinstance(conv, keras.layers.DepthwiseConv2D)
    if depthwise and dtype != tf.float32:
        # oneDNN has no fast bfloat16 depthwise kernel here (it is 2x slower than float32), so a
        # depthwise unit computes in float32 between two casts.
        unit32 = _conv_unit(conv, batch_norm, activation, tf.float32)
        return lambda x: tf.cast(unit32(tf.cast(x, tf.float32)), dtype)
    config = conv.get_config()
    if config.get("data_format", "channels_last") != "channels_last" or tuple(config["dilation_rate"]) != (1, 1):
        raise Unsupported(f"{conv.name}: only channels_last, undilated convolutions")
    if config.get("groups", 1) != 1 or config["activation"] != "linear":
        raise Unsupported(f"{conv.name}: grouped convolution or a built-in activation")
    kernel = conv.kernel.numpy().astype(np.float32)
    out_channels = kernel.shape[2] * kernel.shape[3] if depthwise else kernel.shape[3]
    bias = conv.bias.numpy().astype(np.float32) if config["use_bias"] else np.zeros(out_channels, np.float32)
    if batch_norm is not None:
        scale, shift = _batch_norm_affine(batch_norm)
        kernel = kernel * (scale.reshape(kernel.shape[2], kernel.shape[3]) if depthwise else scale)
        bias = bias * scale + shift
    kind = _activation_kind(activation) if activation is not None else None
    strides = tuple(config["strides"])
    padding = config["padding"]
    kernel_tensor = tf.constant(kernel, dtype=dtype)
    bias_tensor = tf.constant(bias, dtype=dtype)
    padding_name = padding.upper()

    def forward(x: Tensor) -> Tensor:
        if depthwise:
            y = tf.nn.depthwise_conv2d(x, kernel_tensor, (1, *strides, 1), padding_name)
        else:
            y = tf.nn.conv2d(x, kernel_tensor, strides, padding_name)
        return _apply_activation(kind, tf.nn.bias_add(y, bias_tensor))

    if not FORWARD_CONV_GRADIENTS or strides != (1, 1) or (depthwise and kernel.shape[3] != 1):
        return forward  # TensorFlow's own gradient (a strided input gradient is no forward conv)

    height, width = kernel.shape[:2]
    top, bottom = _padding_amounts(height, padding)
    left, right = _padding_amounts(width, padding)
    # The input gradient of a stride-1 convolution is a "full" correlation with the flipped kernel:
    # padding (k - 1 - p) where the forward pass padded p.
    gradient_padding = [[0, 0], [height - 1 - top, height - 1 - bottom], [width - 1 - left, width - 1 - right], [0, 0]]
    if gradient_padding == [[0, 0], [top, bottom], [left, right], [0, 0]]:
        gradient_padding = padding_name  # 'SAME' for odd kernels: TensorFlow's fastest padding path
    flipped = kernel[::-1, ::-1]
    if depthwise:
        gradient_kernel = tf.constant(np.ascontiguousarray(flipped), dtype=dtype)
    else:
        gradient_kernel = tf.constant(np.ascontiguousarray(flipped.transpose(0, 1, 3, 2)), dtype=dtype)

    def backward(dx_out: Tensor) -> Tensor:
        if depthwise:
            return tf.nn.depthwise_conv2d(dx_out, gradient_kernel, (1, 1, 1, 1), gradient_padding)
        return tf.nn.conv2d(dx_out, gradient_kernel, 1, gradient_padding)

    @tf.custom_gradient
    def unit(x: Tensor):
        y = forward(x)

        def gradient(dy: Tensor) -> Tensor:
            return backward(_activation_gradient(kind, dy, y))

        return y, gradient

    return unit


def _simple_layer(layer, dtype: tf.DType = tf.float32) -> Callable[..., Tensor]:
    """The layers between convolutions: padding, pooling, joins, lone batch norms and activations."""
    config = layer.get_config()
    if isinstance(layer, keras.layers.BatchNormalization):
        scale, shift = (tf.constant(v, dtype=dtype) for v in _batch_norm_affine(layer))
        return lambda x: x * scale + shift
    kind = _activation_kind(layer)
    if kind is not None:
        return lambda x: _apply_activation(kind, x)
    if isinstance(layer, keras.layers.ZeroPadding2D):
        (top, bottom), (left, right) = config["padding"]
        paddings = [[0, 0], [top, bottom], [left, right], [0, 0]]
        return lambda x: tf.pad(x, paddings)
    if isinstance(layer, (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)):
        pool = tf.nn.max_pool2d if isinstance(layer, keras.layers.MaxPooling2D) else tf.nn.avg_pool2d
        size, strides, padding = tuple(config["pool_size"]), tuple(config["strides"]), config["padding"].upper()
        return lambda x: pool(x, size, strides, padding)
    if isinstance(layer, keras.layers.Concatenate):
        if config["axis"] not in (-1, 3):
            raise Unsupported(f"{layer.name}: concatenation along axis {config['axis']}")
        return lambda *xs: tf.concat(list(xs), axis=-1)
    if isinstance(layer, keras.layers.Add):
        return lambda *xs: tf.add_n(list(xs))
    if isinstance(layer, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)):
        return _conv_unit(layer, None, None, dtype)
    raise Unsupported(f"layer {layer.name} ({type(layer).__name__})")
