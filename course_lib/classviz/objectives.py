"""What class visualisation maximises: the channels of one layer of a classifier.

A :class:`ChannelTarget` holds a layer of a model, ready to give each channel's activation
strength for a batch of images and its gradient with respect to the pixels. For a classifier's
class layer the strength is the *logit* (pre-softmax score), computed from the final Dense
layer's weights even when softmax is folded into that layer: maximising a probability can be won
by pushing the other classes down instead of this one up.

Channels are named by index or, on a classifier's class layer, by class name
(:func:`resolve_channels`, with a did-you-mean).
"""
from __future__ import annotations

import difflib
import functools
import os
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from course_lib.models import Classifier

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

ModelLike = Union[Classifier, keras.Model]
Channels = Union[int, str, Sequence[Union[int, str]]]


@dataclass(frozen=True)
class ChannelTarget:
    """The channels of one layer of a model, ready to be maximised.

    Attributes:
        extractor: Keras model from an image in [-1, 1] to ``features``: the input of a Dense or
            Softmax layer (so logits can be computed from it), or a layer's own output.
        kernel, bias: the Dense layer's weights when ``features`` are its input, else ``None``.
        layer_name: the layer, as the user named it.
        channel_count: how many channels the layer has.
        class_names: names of the channels when the layer is a classifier's class layer, else ``None``.
        input_size: the size the model prefers (a classifier's training size), else ``None``.
    """

    extractor: keras.Model
    kernel: Any
    bias: Any
    layer_name: str
    channel_count: int
    class_names: tuple[str, ...] | None
    input_size: int | None

    def activations(self, image: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(activations (N, channels), features) for images in [-1, 1].

        Dense layers give their pre-activation output ``features @ kernel + bias`` (logits, even
        if softmax is folded in); a Softmax layer gives its input; feature maps are averaged over
        space, as MATLAB's activation strength of a channel is. A network with a fixed input size
        (InceptionV3 with its ImageNet top takes 299x299 only) sees every image resized to it, so
        pyramid levels and transformed images of any size work with it too.
        """
        fixed = self.extractor.input_shape[1:3]
        if None not in fixed:
            image = tf.image.resize(image, fixed)
        features = self.extractor(image, training=False)
        if self.kernel is not None:
            scores = tf.matmul(features, self.kernel) + self.bias
        elif len(features.shape) == 4:
            scores = tf.reduce_mean(features, axis=[1, 2])
        else:
            scores = features
        return scores, features

    @functools.cached_property
    def pixel_gradient(self) -> Callable:
        """Compiled once per target: (images, channel per image, shift) -> (gradient, strength)."""

        @tf.function(input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.float32),
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([2], tf.int32),
        ])  # fmt: skip
        def gradient(image, indices, shift):
            shifted = tf.roll(image, shift, axis=[1, 2])  # jitter: the gradient is taken on a shifted copy
            with tf.GradientTape() as tape:
                tape.watch(shifted)
                scores, _ = self.activations(shifted)
                strength = gather_channels(scores, indices)
                total = tf.reduce_sum(strength)
            return tf.roll(tape.gradient(total, shifted), -shift, axis=[1, 2]), strength

        return gradient


#: Targets already built, per Keras model and layer, so their compiled functions are reused.
_TARGETS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def channel_target(model: ModelLike, layer: str | None = None) -> ChannelTarget:
    """Find ``layer`` in ``model`` and prepare to compute its channels' activations.

    Args:
        model: a :class:`~course_lib.models.Classifier` (the embedded ``dog_breed_classifier()``
            or lesson 07's) or a Keras model taking images in [-1, 1].
        layer: a layer name: top-level (``"dense"``, ``"new_fc"``, ``"prob"``) or inside a nested
            backbone applied to the input (``"block_13_expand_relu"``); ``None`` picks the last
            Dense layer, the class scores.

    Raises:
        ValueError: an unknown layer, listing the valid ones and the closest match.
    """
    keras_model, class_names, input_size = _unwrap(model)
    if layer is None:
        layer = class_layer(keras_model)
    if not isinstance(layer, str):
        raise ValueError(f"layer must be a layer name (a string) such as {class_layer(keras_model)!r}, got {layer!r}.")
    cached = _TARGETS.setdefault(keras_model, {})
    if (layer, class_names, input_size) not in cached:
        cached[(layer, class_names, input_size)] = _build_target(keras_model, layer, class_names, input_size)
    return cached[(layer, class_names, input_size)]


def _build_target(keras_model: keras.Model, layer: str, class_names, input_size) -> ChannelTarget:
    found, owner = _find_layer(keras_model, layer)
    if owner is keras_model:
        if isinstance(found, keras.layers.Dense):
            extractor = keras.Model(keras_model.input, found.input, name=f"{layer}_input")
            kernel, bias = found.kernel, found.bias if found.use_bias else tf.zeros([found.units])
            count = int(found.units)
        elif _is_softmax(found):
            extractor = keras.Model(keras_model.input, found.input, name=f"{layer}_input")
            kernel = bias = None
            count = int(found.input.shape[-1])
        else:
            extractor = keras.Model(keras_model.input, found.output, name=f"{layer}_output")
            kernel = bias = None
            count = int(found.output.shape[-1])
    else:
        extractor = keras.Model(owner.input, found.output, name=f"{layer}_output")
        kernel = bias = None
        count = int(found.output.shape[-1])
    names = class_names if class_names is not None and count == len(class_names) else None
    return ChannelTarget(extractor, kernel, bias, layer, count, names, input_size)


def channel_activations(model: ModelLike, layer: str | None, image: Any) -> np.ndarray:
    """The activation strength of every channel of ``layer`` for images in [-1, 1].

    For a classifier's class layer these are the logits (pre-softmax scores).

    Args:
        model: a Classifier or Keras model.
        layer: the layer name (``None``: the class scores).
        image: one image (H, W, 3) or a batch (N, H, W, 3), float in [-1, 1].

    Returns:
        Array (N, channels).

    Example:
        >>> logits = channel_activations(models.dog_breed_classifier(), "dense", batch)
    """
    target = channel_target(model, layer)
    batch = np.asarray(image, np.float32)
    if batch.ndim == 3:
        batch = batch[None]
    scores, _ = target.activations(tf.constant(batch))
    return scores.numpy()


def class_layer(model: ModelLike) -> str:
    """Name of the layer holding the class scores: the last Dense layer (``dense``, ``new_fc``)."""
    keras_model = _unwrap(model)[0]
    dense = [layer.name for layer in keras_model.layers if isinstance(layer, keras.layers.Dense)]
    if not dense:
        raise ValueError(f"Model {keras_model.name!r} has no Dense layer; name the layer to visualise.")
    return dense[-1]


def resolve_channels(target: ChannelTarget, channels: Channels) -> list[int]:
    """Channel indices from indices and/or class names; anything wrong gets a clear error."""
    items = [channels] if isinstance(channels, (str, int, np.integer)) else channels
    try:
        items = list(items)
    except TypeError:
        raise ValueError(f"channels must be an index, a class name or a list of them, got {channels!r}.") from None
    if not items:
        raise ValueError("channels is empty; give at least one channel index or class name, e.g. [0] or ['Doberman'].")
    indices = []
    for item in items:
        if isinstance(item, str):
            if target.class_names is None:
                raise ValueError(
                    f"Channel {item!r} is a name, but layer {target.layer_name!r} has no class names "
                    "(only a classifier's class layer has). Give channel indices 0.."
                    f"{target.channel_count - 1}, or pass a models.Classifier and its class layer."
                )
            # The same lookup (and helpful error) as models.Classifier.class_index.
            indices.append(Classifier(target.extractor, target.class_names, target.input_size or 0).class_index(item))
        elif isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_)):
            if not 0 <= int(item) < target.channel_count:
                raise ValueError(
                    f"Channel {int(item)} is out of range: layer {target.layer_name!r} has "
                    f"{target.channel_count} channels, numbered 0..{target.channel_count - 1}."
                )
            indices.append(int(item))
        else:
            raise ValueError(f"Channel {item!r} is neither an index nor a class name.")
    return indices


def _unwrap(model: ModelLike) -> tuple[keras.Model, tuple[str, ...] | None, int | None]:
    if isinstance(model, Classifier):
        return model.model, tuple(model.class_names), int(model.input_size)
    if isinstance(model, keras.Model):
        return model, None, None
    raise ValueError(
        f"model must be a models.Classifier (e.g. models.dog_breed_classifier()) or a Keras model, "
        f"got {type(model).__name__}."
    )


def _is_softmax(layer: keras.Layer) -> bool:
    if isinstance(layer, keras.layers.Softmax):
        return True
    return isinstance(layer, keras.layers.Activation) and getattr(layer.activation, "__name__", "") == "softmax"


def _find_layer(keras_model: keras.Model, name: str) -> tuple[keras.Layer, keras.Model]:
    """(layer, model that owns it): a top-level layer, or one inside a backbone fed by the input."""
    top = [layer.name for layer in keras_model.layers]
    if name in top:
        return keras_model.get_layer(name), keras_model
    nested = [layer for layer in keras_model.layers if isinstance(layer, keras.Model)]
    for inner in nested:
        inner_names = [layer.name for layer in inner.layers]
        if name in inner_names:
            first = [layer for layer in keras_model.layers if not isinstance(layer, keras.layers.InputLayer)]
            if not first or first[0] is not inner:
                raise ValueError(
                    f"Layer {name!r} is inside {inner.name!r}, which is not applied directly to the model's "
                    "input; visualise a top-level layer instead: " + ", ".join(top) + "."
                )
            return inner.get_layer(name), inner
    everything = top + [n for inner in nested for n in (layer.name for layer in inner.layers)]
    close = difflib.get_close_matches(name, everything, n=1, cutoff=0.5)
    inside = "".join(
        f" (and the {len(inner.layers)} layers inside {inner.name!r}, e.g. {inner.layers[-1].name!r})" for inner in nested
    )
    raise ValueError(
        f"Layer {name!r} not found in model {keras_model.name!r}. Valid layers: {', '.join(top)}{inside}."
        + (f" Did you mean {close[0]!r}?" if close else "")
    )


def gather_channels(scores: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
    """Each image's own channel: scores[i, indices[i]]."""
    return tf.gather(scores, indices, axis=1, batch_dims=1)
