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

import enum
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


class GradientForm(enum.Enum):
    """The ways :func:`input_gradient` can compute a convolution's input gradient.

    ``FORWARD``: stride 1 only, a forward convolution with the flipped kernel. ``POLYPHASE``:
    strided, not depthwise, one stride-1 convolution per output phase (:func:`polyphase_gradient`).
    ``TENSORFLOW``: TensorFlow's backward kernel (any convolution). ``PADDED``: an explicit
    padding only, TensorFlow's VALID kernel on the padded shape, cropped.
    """

    FORWARD = "forward"
    POLYPHASE = "polyphase"
    TENSORFLOW = "tensorflow"
    PADDED = "padded"

    @classmethod
    def of(cls, value: GradientForm | str) -> GradientForm:
        """``value`` as a form; a clear error for anything else (a typo included)."""
        if isinstance(value, cls):
            return value
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(repr(form.value) for form in cls)
            raise ValueError(f"{value!r} is not an input-gradient form; use one of {names}.") from None


class PaddingCase(enum.IntEnum):
    """How an explicit padding runs at a given input size (:func:`padding_case`), as ``tf.switch_case`` indices.

    Why: TensorFlow 2.21 with oneDNN aborts the process (a failed CHECK in grappler) when it fuses
    an explicitly padded depthwise convolution with its bias, and a ``tf.pad`` before the
    convolution copies the whole input; oneDNN's backward kernels for SAME and VALID are also about
    1.7x faster than for an explicit padding. So where an explicit padding *is* SAME or VALID at
    this size, it runs as that. Re-measure before removing with a newer TensorFlow.
    """

    #: The padding is TensorFlow's SAME at this size.
    SAME = 0
    #: It is VALID (nothing before, and what is after is never reached by a window).
    VALID = 1
    #: None of the others: pad explicitly.
    EXPLICIT = 2
    #: VALID across the columns, and the rows padded only after: VALID, with the last output rows apart.
    VALID_AND_LAST_ROWS = 3
    #: VALID across the rows, and the columns padded only after: VALID, with the last output columns apart.
    VALID_AND_LAST_COLUMNS = 4


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
    """How an explicit padding can run for an input of this shape: a :class:`PaddingCase`, as a tensor
    (a ``tf.switch_case`` index). MobileNetV2's (0, 1) is SAME for an even side, VALID for an odd one.
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
    case = PaddingCase
    return tf.where(same[0] & same[1], int(case.SAME), tf.where(valid[0] & valid[1], int(case.VALID), tf.where(
        valid[1] & rows_after, int(case.VALID_AND_LAST_ROWS), tf.where(
            valid[0] & cols_after, int(case.VALID_AND_LAST_COLUMNS), int(case.EXPLICIT)))))


def apply_activation(kind: str, x: Tensor) -> Tensor:
    return tf.nn.relu(x) if kind == "relu" else tf.nn.relu6(x) if kind == "relu6" else x


def activation_gradient(kind: str, dy: Tensor, y: Tensor) -> Tensor:
    """The ReLU's derivative as a mask on the incoming gradient (ReluGrad, Relu6Grad read only the output)."""
    if kind == "relu":
        return tf.raw_ops.ReluGrad(gradients=dy, features=y)
    return tf.raw_ops.Relu6Grad(gradients=dy, features=y) if kind == "relu6" else dy


class ConvUnit:
    """Conv (+ folded batch norm) (+ ReLU) as one function, its input gradient in a given form.

    ``gradient_form``: ``None`` for TensorFlow's automatic differentiation, else the
    :class:`GradientForm` its input gradient is computed in (an error if it does not apply, see
    :func:`input_gradient`). :attr:`gradient_form` says which form runs.
    """

    def __init__(self, spec: ConvSpec, dtype: tf.DType, gradient_form: GradientForm | str | None):
        self.spec, self.dtype = spec, dtype
        self.gradient_form = None if gradient_form is None else GradientForm.of(gradient_form)
        # oneDNN has no fast bfloat16 depthwise kernel (2x slower than float32): float32 between casts.
        self.compute_dtype = tf.float32 if spec.depthwise else dtype
        self.kernel = tf.constant(spec.kernel, dtype=self.compute_dtype)
        self.bias = tf.constant(spec.bias, dtype=self.compute_dtype)
        self.input_gradient = self.gradient_form and input_gradient(spec, self.compute_dtype, self.gradient_form)

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
        # An explicitly padded depthwise convolution runs as SAME or VALID where one of them is the
        # padding at this size: see PaddingCase for the TensorFlow 2.21 crash this avoids.
        (top, bottom), (left, right) = spec.pads

        def valid_and_tail(axis: int) -> Tensor:
            """VALID, and apart the last outputs, whose windows reach into the padding after ``axis``'s end."""
            start = ((tf.shape(x)[axis] - spec.kernel.shape[axis - 1]) // spec.stride + 1) * spec.stride
            tail = x[:, start:] if axis == 1 else x[:, :, start:]
            # max(): in the branches not taken, the tail may be too short for a window at trace time.
            after = tf.maximum(bottom if axis == 1 else right, spec.kernel.shape[axis - 1] - tf.shape(tail)[axis])
            tail = tf.pad(tail, [[0, 0], [0, after if axis == 1 else 0], [0, after if axis == 2 else 0], [0, 0]])
            return tf.concat([self.convolve(x, "VALID"), self.convolve(tail, "VALID")], axis)

        branches = {
            PaddingCase.SAME: lambda: self.convolve(x, "SAME"),
            PaddingCase.VALID: lambda: self.convolve(x, "VALID"),
            PaddingCase.EXPLICIT: lambda: self.convolve(tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]]), "VALID"),
            PaddingCase.VALID_AND_LAST_ROWS: lambda: valid_and_tail(1),
            PaddingCase.VALID_AND_LAST_COLUMNS: lambda: valid_and_tail(2),
        }
        return tf.switch_case(padding_case(spec, tf.shape(x)), [branches[case] for case in sorted(branches)])

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


def _full_padding(spec: ConvSpec) -> list[int]:
    """The padding of a stride-1 input gradient as a "full" correlation: ``k - 1 - p`` where the
    forward padded ``p`` ([top, bottom, left, right]); ``[-1]`` where no padding makes it (SAME with an even kernel)."""
    (top, bottom), (left, right) = spec.pads
    height, width = spec.kernel.shape[:2]
    if spec.padding == "SAME":
        return [0] if height % 2 and width % 2 else [-1]  # SAME again, for odd kernels
    return [height - 1 - top, height - 1 - bottom, width - 1 - left, width - 1 - right]


def why_not(spec: ConvSpec, form: GradientForm | str) -> str | None:
    """Why ``form`` does not apply to this convolution, or ``None`` when it does."""
    form = GradientForm.of(form)
    if form is GradientForm.FORWARD and spec.stride != 1:
        return f"the forward form is for stride 1, and this convolution has stride {spec.stride}"
    if form is GradientForm.FORWARD and min(_full_padding(spec)) < 0:
        return "no forward convolution's padding gives this convolution's input gradient (an even kernel, or padding wider than it)"
    if form is GradientForm.POLYPHASE and (spec.stride == 1 or spec.depthwise):
        return "the polyphase form is for strided convolutions that are not depthwise"
    if form is GradientForm.PADDED and spec.padding != "EXPLICIT":
        return f"the padded form is for an explicit padding, and this convolution's is {spec.padding}"
    return None


def applicable_forms(spec: ConvSpec) -> list[GradientForm]:
    """The forms :func:`input_gradient` can compute this convolution's input gradient in."""
    return [form for form in GradientForm if why_not(spec, form) is None]


def default_form(spec: ConvSpec) -> GradientForm:
    """The form used unless a choice says otherwise: forward where it applies (stride 1), else TensorFlow's kernel."""
    return GradientForm.FORWARD if why_not(spec, GradientForm.FORWARD) is None else GradientForm.TENSORFLOW


def input_gradient(spec: ConvSpec, dtype: tf.DType, form: GradientForm | str | None = None
                   ) -> Callable[[Tensor, Tensor], Tensor]:
    """``(gradient at the output, input shape) -> gradient at the input``, computed in ``form``.

    Forms (:class:`GradientForm`): ``"forward"`` (stride 1: a forward convolution with the flipped
    kernel), ``"polyphase"`` (strided, not depthwise: see :func:`polyphase_gradient`),
    ``"tensorflow"`` (TensorFlow's backward kernel, given the folded kernel) and ``"padded"`` (an
    explicit padding: TensorFlow's VALID kernel on the padded shape, cropped, where the padding is
    neither SAME nor VALID at this size; where it is, that kernel, as ``"tensorflow"`` does).
    ``None`` is :func:`default_form`.

    Raises:
        ValueError: ``form`` is not a form, or does not apply to this convolution (never a
            silent fallback to another form).
    """
    form = default_form(spec) if form is None else GradientForm.of(form)
    reason = why_not(spec, form)
    if reason is not None:
        forms = ", ".join(repr(applicable.value) for applicable in applicable_forms(spec))
        raise ValueError(f"The {form.value!r} input gradient does not apply here: {reason}. Forms that apply: {forms}.")
    return GRADIENT_BUILDERS[form](spec, dtype)


def forward_gradient(spec: ConvSpec, dtype: tf.DType) -> Callable[[Tensor, Tensor], Tensor]:
    """A stride-1 convolution's input gradient: a forward convolution with the flipped kernel, channels swapped."""
    full = _full_padding(spec)
    padding = "SAME" if spec.padding == "SAME" else [[0, 0], full[:2], full[2:], [0, 0]]
    flipped = spec.kernel[::-1, ::-1] if spec.depthwise else spec.kernel[::-1, ::-1].transpose(0, 1, 3, 2)
    flipped_kernel = tf.constant(np.ascontiguousarray(flipped), dtype=dtype)
    if spec.depthwise:
        return lambda dy, shape: tf.nn.depthwise_conv2d(dy, flipped_kernel, (1, 1, 1, 1), padding)
    return lambda dy, shape: tf.nn.conv2d(dy, flipped_kernel, 1, padding)


def tensorflow_gradient(spec: ConvSpec, dtype: tf.DType, *, padded: bool = False
                        ) -> Callable[[Tensor, Tensor], Tensor]:
    """TensorFlow's backward kernel; an explicit padding runs as SAME or VALID where it is one of them
    (:class:`PaddingCase`), else as EXPLICIT, or with ``padded`` as VALID on the padded shape, cropped."""
    (top, bottom), (left, right) = spec.pads
    kernel = tf.constant(spec.kernel, dtype=dtype)
    backprop = tf.raw_ops.DepthwiseConv2dNativeBackpropInput if spec.depthwise else tf.raw_ops.Conv2DBackpropInput

    def gradient(dy: Tensor, shape: Tensor) -> Tensor:
        def run(padding: str, input_shape: Tensor = shape) -> Tensor:
            explicit = [0, 0, top, bottom, left, right, 0, 0] if padding == "EXPLICIT" else []
            return backprop(input_sizes=input_shape, filter=kernel, out_backprop=dy,
                            strides=[1, spec.stride, spec.stride, 1], padding=padding, explicit_paddings=explicit)

        def valid_on_padded_shape() -> Tensor:
            padded_shape = shape + tf.constant([0, top + bottom, left + right, 0], shape.dtype)
            return tf.slice(run("VALID", padded_shape), tf.constant([0, top, left, 0], shape.dtype), shape)

        if spec.padding != "EXPLICIT":
            return run(spec.padding)
        # The last two cases (VALID and the last rows or columns apart) run as EXPLICIT here.
        case = tf.minimum(padding_case(spec, shape), int(PaddingCase.EXPLICIT))
        return tf.switch_case(case, [lambda: run("SAME"), lambda: run("VALID"),
                                     valid_on_padded_shape if padded else lambda: run("EXPLICIT")])

    return gradient


def padded_gradient(spec: ConvSpec, dtype: tf.DType) -> Callable[[Tensor, Tensor], Tensor]:
    """An explicit padding's input gradient as TensorFlow's VALID kernel on the padded shape, cropped."""
    return tensorflow_gradient(spec, dtype, padded=True)


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


#: The function that builds each form's input gradient: the one place :func:`input_gradient` dispatches
#: (a test wraps these to see which form really ran).
GRADIENT_BUILDERS: dict[GradientForm, Callable[[ConvSpec, tf.DType], Callable[[Tensor, Tensor], Tensor]]] = {
    GradientForm.FORWARD: forward_gradient,
    GradientForm.POLYPHASE: polyphase_gradient,
    GradientForm.TENSORFLOW: tensorflow_gradient,
    GradientForm.PADDED: padded_gradient,
}
