"""A convolution with its batch norm, padding and ReLU folded in, and its input gradient in several forms.

:mod:`course_lib.dream_graph` rebuilds a network from these units. A unit is one convolution
(``Conv2D`` or ``DepthwiseConv2D``) with what joins it: a padding layer before, a batch norm and a
ReLU after. The batch norm is folded into the kernel and bias (in inference it is a fixed affine
map per channel), the padding into the convolution, and the ReLU's derivative is applied to the
incoming gradient from the unit's output alone. The input gradient is computed in one of the
forms of :func:`input_gradient`: a stride-1 convolution's is a forward convolution with the
flipped kernel (for 1x1 kernels a matrix product, which TensorFlow's backward kernel does more
slowly); a strided one's is TensorFlow's own kernel or one of two alternatives, chosen per machine
by :mod:`course_lib.strided_gradients`.

``tests/test_dream_graph.py`` checks every form against TensorFlow's automatic differentiation.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

Tensor = tf.Tensor


class Unsupported(Exception):
    """The model holds a layer (or a layer option) this module does not rebuild."""


def activation_kind(layer: Any) -> str | None:
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
class Chain:
    """A convolution and what joins it: a padding layer before, a batch norm and an activation after."""

    conv: Any
    pad: Any = None
    batch_norm: Any = None
    activation: Any = None


def batch_norm_affine(batch_norm: Any) -> tuple[np.ndarray, np.ndarray]:
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
class ConvSpec:
    """A convolution chain with everything folded in: kernel, bias, stride, padding, activation."""

    depthwise: bool
    kernel: np.ndarray  # (kh, kw, in, out); depthwise (kh, kw, channels, 1)
    bias: np.ndarray
    stride: int
    padding: str  # "SAME", "VALID" or "EXPLICIT"
    pads: tuple[tuple[int, int], tuple[int, int]]  # ((top, bottom), (left, right)) when EXPLICIT
    activation: str  # "relu", "relu6" or "linear"

    @classmethod
    def of(cls, chain: Chain) -> ConvSpec:
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
            scale, shift = batch_norm_affine(chain.batch_norm)
            kernel, bias = kernel * (scale[:, None] if depthwise else scale), bias * scale + shift
        activation = config["activation"] if chain.activation is None else activation_kind(chain.activation)
        padding, pads = config["padding"].upper(), ((0, 0), (0, 0))
        if chain.pad is not None:
            padding, pads = "EXPLICIT", tuple(tuple(int(p) for p in side) for side in chain.pad.get_config()["padding"])
        return cls(depthwise, kernel, bias, int(config["strides"][0]), padding, pads, activation)

    def padding_arg(self) -> str | list[list[int]]:
        """The padding as ``tf.nn.conv2d`` takes it."""
        return self.padding if self.padding != "EXPLICIT" else [[0, 0], list(self.pads[0]), list(self.pads[1]), [0, 0]]


def padding_case(spec: ConvSpec, shape: Tensor) -> Tensor:
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


def apply_activation(kind: str, x: Tensor) -> Tensor:
    return tf.nn.relu(x) if kind == "relu" else tf.nn.relu6(x) if kind == "relu6" else x


def activation_gradient(kind: str, dy: Tensor, y: Tensor) -> Tensor:
    """The ReLU's derivative as a mask on the incoming gradient (ReluGrad, Relu6Grad read only the output)."""
    if kind == "relu":
        return tf.raw_ops.ReluGrad(gradients=dy, features=y)
    return tf.raw_ops.Relu6Grad(gradients=dy, features=y) if kind == "relu6" else dy


class ConvUnit:
    """Conv (+ folded batch norm) (+ ReLU) as one function, its input gradient in a given form.

    ``gradient_form``: ``None`` for TensorFlow's automatic differentiation, else a form of
    :func:`input_gradient`.
    """

    def __init__(self, spec: ConvSpec, dtype: tf.DType, gradient_form: str | None):
        self.spec, self.dtype, self.gradient_form = spec, dtype, gradient_form
        # oneDNN has no fast bfloat16 depthwise kernel (2x slower than float32): float32 between casts.
        self.compute_dtype = tf.float32 if spec.depthwise else dtype
        self.kernel = tf.constant(spec.kernel, dtype=self.compute_dtype)
        self.bias = tf.constant(spec.bias, dtype=self.compute_dtype)
        self.input_gradient = gradient_form and input_gradient(spec, self.compute_dtype, gradient_form)

    def convolve(self, x: Tensor, padding: str | list[list[int]]) -> Tensor:
        spec = self.spec
        if spec.depthwise:
            y = tf.nn.depthwise_conv2d(x, self.kernel, (1, spec.stride, spec.stride, 1), padding)
        else:
            y = tf.nn.conv2d(x, self.kernel, spec.stride, padding)
        return apply_activation(spec.activation, tf.nn.bias_add(y, self.bias))

    def forward(self, x: Tensor) -> Tensor:
        spec = self.spec
        if not (spec.depthwise and spec.padding == "EXPLICIT"):
            return self.convolve(x, spec.padding_arg())
        # TensorFlow 2.21 with oneDNN aborts the process (a failed CHECK in grappler) when it fuses
        # an explicitly padded depthwise convolution with its bias, and a Pad copies the whole
        # input: so SAME or VALID where one of them is the padding at this size (see padding_case).
        (top, bottom), (left, right) = spec.pads

        def valid_and_tail(axis: int) -> Tensor:
            """VALID, and apart the last outputs, whose windows reach into the padding after ``axis``'s end."""
            start = ((tf.shape(x)[axis] - spec.kernel.shape[axis - 1]) // spec.stride + 1) * spec.stride
            tail = x[:, start:] if axis == 1 else x[:, :, start:]
            # max(): in the branches not taken, the tail may be too short for a window at trace time.
            after = tf.maximum(bottom if axis == 1 else right, spec.kernel.shape[axis - 1] - tf.shape(tail)[axis])
            tail = tf.pad(tail, [[0, 0], [0, after if axis == 1 else 0], [0, after if axis == 2 else 0], [0, 0]])
            return tf.concat([self.convolve(x, "VALID"), self.convolve(tail, "VALID")], axis)

        return tf.switch_case(padding_case(spec, tf.shape(x)), [
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
                return self.input_gradient(activation_gradient(self.spec.activation, dy, y), tf.shape(x))

            return y, gradient

        return tf.cast(unit(x), self.dtype)


def input_gradient(spec: ConvSpec, dtype: tf.DType, form: str = "default") -> Callable[[Tensor, Tensor], Tensor]:
    """``(gradient at the output, input shape) -> gradient at the input``, computed in ``form``.

    Forms: ``"forward"`` (stride 1: a forward convolution with the flipped kernel), ``"polyphase"``
    (strided, not depthwise: see :func:`polyphase_gradient`), ``"tensorflow"`` (TensorFlow's
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
        return polyphase_gradient(spec, dtype)
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
        return tf.switch_case(tf.minimum(padding_case(spec, shape), 2), [
            lambda: run("SAME"), lambda: run("VALID"), padded if form == "padded" else lambda: run("EXPLICIT")])

    return tensorflow_gradient


def polyphase_gradient(spec: ConvSpec, dtype: tf.DType) -> Callable[[Tensor, Tensor], Tensor]:
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
