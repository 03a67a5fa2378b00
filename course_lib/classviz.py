"""Class-channel visualisation: images that a classifier is sure show a given dog breed.

The finale of the source is MATLAB's ``deepDreamImage(net, layer, channels)``: pick channels of the
trained classifier's final layer (one per breed) and make one image per channel that drives that
channel up. This module does that, three ways, so a lesson can compare them:

- ``method="naive"``: plain gradient ascent on the pixels, at one size. The classifier is soon
  sure, yet the picture is coloured noise: the network reacts to high-frequency patterns that
  people do not see as anything.
- ``method="matlab"``: MATLAB's algorithm (its documentation cites it): a multi-resolution image
  pyramid, random jitter, and *Laplacian-pyramid gradient normalisation* from Mordvintsev's
  ``render_lapnorm`` (the DeepDream notebook in the TensorFlow repository), which splits the
  gradient into frequency bands and gives each band the same strength, so coarse structure grows
  as fast as fine detail.
- ``method="robust"``: the recipe of Lucid and the Distill article "Feature Visualization" (Olah,
  Mordvintsev, Schubert, 2017): the image is parameterised by its Fourier spectrum (scaled so low
  frequencies are cheap) in decorrelated colour, and every step sees it randomly padded, jittered,
  scaled and rotated, so only patterns that survive all of those (eyes, noses, fur) pay off.
  Optionally a diversity term makes several different images of one class.

For the class channels of a softmax classifier the function maximises the *logit* (pre-softmax
score), computed from the final Dense layer's weights even when softmax is folded into that layer:
maximising a probability can be won by pushing the other classes down instead of this one up.

Example:
    >>> from course_lib import classviz, models
    >>> classifier = models.dog_breed_classifier()
    >>> pictures = classviz.deep_dream_image(classifier, "dense", ["Chihuahua", "Doberman"])
    >>> pictures.shape
    (2, 160, 160, 3)
"""
from __future__ import annotations

import difflib
import functools
import math
import os
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np

from course_lib import config, images, models
from course_lib.models import Classifier
from course_lib.progress import Progress

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

#: The ways :func:`deep_dream_image` can make its images (see the module docstring).
METHODS = ("naive", "matlab", "robust")
#: MATLAB's 'OutputScaling' values: each image rescaled to [0, 1], or the raw optimised values.
OUTPUT_SCALINGS = ("linear", "none")

#: Iterations when ``num_iterations`` is not given: MATLAB's default 'NumIterations' (10, per
#: pyramid level) for naive and matlab; the robust method takes small Adam steps and needs more
#: (Lucid renders 512 by default; 256 is enough here, see bench/classviz_quality.py).
DEFAULT_ITERATIONS = {"naive": 10, "matlab": 10, "robust": 256}

#: Largest image side accepted: a 2048 px image already takes minutes per step on a laptop CPU.
MAX_IMAGE_SIZE = 2048

# --- MATLAB-style method (Mordvintsev's render_lapnorm, which MATLAB's documentation describes) ---
#: render_lapnorm's ``scale_n=4``: the gradient is split into 4 Laplacian bands plus the low-pass rest.
LAPLACIAN_LEVELS = 4
#: render_lapnorm's 5x5 binomial smoothing kernel, the outer product of [1, 4, 6, 4, 1] / 16.
_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0], np.float32)
#: render_lapnorm's ``step=1.0`` on 0..255 pixels, i.e. 2/255 in the model range [-1, 1].
MATLAB_STEP_SIZE = 2.0 / 255.0
#: render_lapnorm starts from ``np.random.uniform(size=...) + 100``: grey with one grey level of
#: noise. In the model range that is 2/255 of uniform noise around a mid grey.
NOISE_AMPLITUDE = 2.0 / 255.0
#: Random shift (roll) of the image before each gradient, up to this many pixels each way. Lucid's
#: jitter is 8-16 px at 224 px; MATLAB does not say, so we take Lucid's upper value.
MATLAB_JITTER_PIXELS = 16
#: The naive method's step on the gradient divided by its standard deviation: the TensorFlow
#: DeepDream tutorial's ``step_size = 0.01``.
NAIVE_STEP_SIZE = 0.01

# --- Robust method (Lucid: lucid/optvis/param/spatial.py, param/color.py, transform.py) ---
#: Lucid's ``color_correlation_svd_sqrt``: the square root of ImageNet's colour covariance.
_COLOR_CORRELATION_SVD_SQRT = np.array(
    [[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]], np.float32
)
#: Lucid normalises the matrix by its largest column norm.
COLOR_CORRELATION = _COLOR_CORRELATION_SVD_SQRT / np.max(np.linalg.norm(_COLOR_CORRELATION_SVD_SQRT, axis=0))
#: Lucid's ``fft_image`` scales each frequency f by 1 / f**decay_power with decay_power 1. We use
#: 1.25: with 1.0, 11-17 % of the grey image's spectral power stayed above half Nyquist (fine
#: texture, measured with bench/classviz_quality.py on six breeds); with 1.25 it is 4-9 % and the
#: dogs' parts are larger and clearer.
SPECTRUM_DECAY_POWER = 1.25
#: Lucid's ``fft_image`` initialises the spectrum with standard deviation 0.01.
SPECTRUM_INIT_STD = 0.01
#: Lucid divides the inverse FFT by 4 before the sigmoid.
SPECTRUM_OUTPUT_DIVISOR = 4.0
#: Adam's learning rate. Lucid's default is 0.05; 0.03 gave less saturated colours here.
ROBUST_LEARNING_RATE = 0.03
#: Lucid's ``standard_transforms`` at 224 px: pad 12 px (grey 0.5), jitter 8, scale 0.9-1.1,
#: rotate -10..10 degrees, jitter 4. Pixel amounts scale with the image size.
ROBUST_PAD_PIXELS = 12
ROBUST_JITTER_PIXELS = (8, 4)
ROBUST_SCALE_RANGE = (0.9, 1.1)
ROBUST_ROTATION_DEGREES = 10.0
ROBUST_REFERENCE_SIZE = 224

ModelLike = Union[Classifier, keras.Model]
Channels = Union[int, str, Sequence[Union[int, str]]]


# ---------------------------------------------------------------------------------------------
# What to maximise: the channels of a layer
# ---------------------------------------------------------------------------------------------


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
        space, as MATLAB's activation strength of a channel is.
        """
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
                strength = _gather(scores, indices)
                total = tf.reduce_sum(strength)
            return tf.roll(tape.gradient(total, shifted), -shift, axis=[1, 2]), strength

        return gradient

    @functools.cached_property
    def robust_gradient(self) -> Callable:
        """Compiled once per target: gradient of the robust loss with respect to the spectrum."""

        @tf.function(reduce_retracing=True)
        def gradient(spectrum, frequency_scale, size, indices, same_channel, diversity_weight, transform):
            with tf.GradientTape() as tape:
                tape.watch(spectrum)
                picture = robust_transform(spectrum_to_images(spectrum, frequency_scale, size), **transform)
                scores, features = self.activations(picture * 2.0 - 1.0)
                strength = _gather(scores, indices)
                count = tf.cast(tf.shape(strength)[0], tf.float32)
                similarity = _diversity_similarity(features, same_channel)
                loss = -tf.reduce_sum(strength) + diversity_weight * count * similarity
            return tape.gradient(loss, spectrum), strength

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


# ---------------------------------------------------------------------------------------------
# Laplacian-pyramid gradient normalisation (Mordvintsev's render_lapnorm)
# ---------------------------------------------------------------------------------------------


def _binomial_kernel() -> tf.Tensor:
    kernel = np.outer(_BINOMIAL, _BINOMIAL)
    kernel = kernel / kernel.sum()
    # One 5x5 kernel per colour channel, channels kept apart (render_lapnorm's k5x5 * eye(3)).
    return tf.constant(kernel[:, :, None, None] * np.eye(3, dtype=np.float32)[None, None], tf.float32)


def laplacian_split(image: tf.Tensor, levels: int = LAPLACIAN_LEVELS) -> list[tf.Tensor]:
    """Split images (N, H, W, 3) into ``levels`` band-pass images plus a low-pass rest.

    Returns:
        ``[low_pass, coarsest_band, ..., finest_band]`` (render_lapnorm's order): each band is
        what is lost by blurring and halving the size; :func:`laplacian_merge` puts them back
        together exactly.
    """
    kernel = _binomial_kernel()
    bands = []
    for _ in range(levels):
        low = tf.nn.conv2d(image, kernel, strides=2, padding="SAME")
        up = tf.nn.conv2d_transpose(low, kernel * 4.0, tf.shape(image), strides=2, padding="SAME")
        bands.append(image - up)
        image = low
    bands.append(image)
    return bands[::-1]


def laplacian_merge(bands: Sequence[tf.Tensor]) -> tf.Tensor:
    """The inverse of :func:`laplacian_split`: ``laplacian_merge(laplacian_split(x)) == x``."""
    kernel = _binomial_kernel()
    image = bands[0]
    for band in bands[1:]:
        image = tf.nn.conv2d_transpose(image, kernel * 4.0, tf.shape(band), strides=2, padding="SAME") + band
    return image


def normalize_bands(bands: Sequence[tf.Tensor], epsilon: float = 1e-10) -> list[tf.Tensor]:
    """Divide each band of each image by its root mean square (render_lapnorm's ``normalize_std``)."""
    return [band / tf.maximum(tf.sqrt(tf.reduce_mean(tf.square(band), axis=[1, 2, 3], keepdims=True)), epsilon)
            for band in bands]  # fmt: skip


def laplacian_normalize(gradient: tf.Tensor, levels: int = LAPLACIAN_LEVELS) -> tf.Tensor:
    """Give every frequency band of the gradient unit RMS, then add the bands back together.

    Raw gradients of a classifier are dominated by fine, pixel-level detail; a step along them
    paints noise. After this normalisation coarse bands change the image as much as fine ones,
    so large shapes can form (render_lapnorm; MATLAB's deepDreamImage does the same).
    """
    return laplacian_merge(normalize_bands(laplacian_split(gradient, levels)))


# ---------------------------------------------------------------------------------------------
# The public function
# ---------------------------------------------------------------------------------------------


def deep_dream_image(
    model: ModelLike,
    layer: str | None,
    channels: Channels,
    *,
    pyramid_levels: int = 3,
    pyramid_scale: float = 1.4,
    num_iterations: int | None = None,
    initial_image: Any = None,
    output_scaling: str = "linear",
    verbose: bool = True,
    seed: int | None = None,
    method: str = "matlab",
    image_size: int | None = None,
    diversity: float = 0.0,
    show_progress: bool = True,
) -> np.ndarray:
    """Images that strongly activate channels of a layer: MATLAB's ``deepDreamImage``.

    Args:
        model: a :class:`~course_lib.models.Classifier` (class names work as channels) or a Keras
            model taking images in [-1, 1].
        layer: the layer name (MATLAB's ``layer``), e.g. ``"dense"`` for the embedded classifier,
            ``"new_fc"`` for lesson 07's; ``None``: the last Dense layer (the class scores).
        channels: one channel or a list: indices (0-based) or class names. One image per entry;
            repeat a class to get several images of it (with ``diversity`` > 0 they differ).
        pyramid_levels: MATLAB's 'PyramidLevels' (default 3): sizes the image grows through.
            The naive method takes ``pyramid_levels * num_iterations`` steps at full size (as
            many as MATLAB's); the robust method has no pyramid and ignores both settings.
        pyramid_scale: MATLAB's 'PyramidScale' (default 1.4, > 1): size ratio between levels.
        num_iterations: MATLAB's 'NumIterations', per pyramid level; default 10 for naive and
            matlab, 256 Adam steps for robust (:data:`DEFAULT_ITERATIONS`).
        initial_image: MATLAB's 'InitialImage': ``None`` for noise, or a photo (anything
            :func:`course_lib.images.load` accepts), resized so its longer side is ``image_size``.
        output_scaling: MATLAB's 'OutputScaling': ``"linear"`` rescales each image to [0, 1];
            ``"none"`` returns the optimised values in the model range (about [-1, 1]).
        verbose: MATLAB's 'Verbose': print the table of iteration, activation strength, pyramid level.
        seed: random seed for noise and jitter (default ``config.settings.seed``, read at call time).
        method: ``"matlab"`` (default), ``"naive"`` or ``"robust"`` (see the module docstring).
        image_size: side of the square output (default: the classifier's input size, else 224).
        diversity: robust only: weight of a term that pushes images of the same channel apart.
        show_progress: show a progress bar when ``verbose`` is off.

    Returns:
        float32 array (N, H, W, 3), one image per channel: in [0, 1] for ``"linear"``, in the
        model range for ``"none"``.

    Raises:
        ValueError: a bad layer, channel, size or parameter, saying what is allowed.

    Example:
        >>> classifier = models.dog_breed_classifier()
        >>> tile = deep_dream_image(classifier, "dense", ["Chihuahua", "Doberman"], method="robust")
        >>> images.show_grid(tile, ["Chihuahua", "Doberman"])
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}.")
    if output_scaling not in OUTPUT_SCALINGS:
        raise ValueError(f"output_scaling must be 'linear' (each image to [0, 1]) or 'none', got {output_scaling!r}.")
    pyramid_levels = _whole_number("pyramid_levels", pyramid_levels, low=1)
    pyramid_scale = _real_number("pyramid_scale", pyramid_scale)
    if pyramid_scale <= 1.0:
        raise ValueError(f"pyramid_scale must be greater than 1 (MATLAB's default is 1.4), got {pyramid_scale!r}.")
    num_iterations = DEFAULT_ITERATIONS[method] if num_iterations is None else _whole_number(
        "num_iterations", num_iterations, low=1)
    diversity = _real_number("diversity", diversity)
    if diversity < 0:
        raise ValueError(f"diversity must be 0 (off) or positive, got {diversity!r}.")
    if diversity and method != "robust":
        raise ValueError("diversity only works with method='robust'; set diversity=0 or method='robust'.")
    if seed is not None:
        seed = _whole_number("seed", seed, low=0)
    target = channel_target(model, layer)
    indices = resolve_channels(target, channels)
    if image_size is None:
        image_size = target.input_size or ROBUST_REFERENCE_SIZE
    min_size = models.min_input_size(target.extractor)  # the smallest side the network accepts
    image_size = _whole_number("image_size", image_size, low=min_size, high=MAX_IMAGE_SIZE)
    rng = np.random.default_rng(config.settings.seed if seed is None else seed)
    start = _initial_images(initial_image, len(indices), image_size, rng, min_size)

    table = _Table(verbose, method != "robust")
    progress = Progress(num_iterations * (1 if method == "robust" else pyramid_levels), f"{method} class images",
                        enabled=show_progress and not verbose)  # fmt: skip
    report = _reporter(table, progress)
    if method == "matlab":
        result = _matlab(target, indices, start, pyramid_levels, pyramid_scale, num_iterations, rng, report)
    elif method == "naive":
        result = _naive(target, indices, start, num_iterations * pyramid_levels, report)
    else:
        photo = None if initial_image is None else (start + 1.0) / 2.0
        result = _robust(target, indices, start.shape[1:3], photo, num_iterations, diversity, rng, report)
    table.close()
    progress.close("done")
    if not np.isfinite(result).all():
        raise ValueError("The optimisation diverged (NaN values); try fewer iterations or another seed.")
    if output_scaling == "linear":
        low = result.min(axis=(1, 2, 3), keepdims=True)
        high = result.max(axis=(1, 2, 3), keepdims=True)
        result = (result - low) / np.maximum(high - low, 1e-12)
    return result.astype(np.float32)


def _whole_number(name: str, value: Any, *, low: int, high: int | None = None) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}.")
    if value < low or (high is not None and value > high):
        allowed = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be {allowed}, got {value!r}.")
    return int(value)


def _real_number(name: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}.")
    if not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number, got {value!r}.")
    return float(value)


def _initial_images(
    initial_image: Any, count: int, image_size: int, rng: np.random.Generator, min_size: int
) -> np.ndarray:
    """(count, H, W, 3) float32 in the model range: grey with faint noise, or the photo."""
    if initial_image is None:
        noise = rng.uniform(-NOISE_AMPLITUDE, NOISE_AMPLITUDE, size=(count, image_size, image_size, 3))
        return noise.astype(np.float32)
    photo = images.load(initial_image, min_size=min_size)
    photo = np.asarray(tf.image.resize(photo, _fit(photo.shape[:2], image_size, min_size), antialias=True))
    photo = np.clip(np.rint(photo), 0, 255).astype(np.uint8)
    return np.repeat(images.to_model_range(photo)[None], count, axis=0)


def _fit(shape: Sequence[int], image_size: int, min_size: int) -> tuple[int, int]:
    height, width = shape
    factor = image_size / max(height, width)
    return max(min_size, round(height * factor)), max(min_size, round(width * factor))


class _Table:
    """MATLAB's verbose table: iteration, activation strength, pyramid level."""

    def __init__(self, enabled: bool, every_row: bool):
        self.enabled, self.every_row = enabled, every_row
        if enabled:
            print("|==============================================|")
            print("|  Iteration  |  Activation  |  Pyramid Level  |")
            print("|             |   Strength   |                 |")
            print("|==============================================|")

    def row(self, iteration: int, total: int, strength: float, level: int) -> None:
        if not self.enabled:
            return
        # The robust method takes hundreds of small steps: print about 16 rows, not all of them.
        if self.every_row or iteration % max(1, total // 16) == 0 or iteration == total:
            print(f"|{iteration:12d} |{strength:13.2f} |{level:16d} |")

    def close(self) -> None:
        if self.enabled:
            print("|==============================================|")


def _reporter(table: _Table, progress: Progress) -> Callable[[int, int, float, int], None]:
    done = [0]

    def report(iteration: int, total: int, strength: float, level: int) -> None:
        done[0] += 1
        table.row(iteration, total, strength, level)
        progress.update(done[0], f"level {level}, activation {strength:.2f}")

    return report


def _gather(scores: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
    """Each image's own channel: scores[i, indices[i]]."""
    return tf.gather(scores, indices, axis=1, batch_dims=1)


# ---------------------------------------------------------------------------------------------
# naive and MATLAB-style: gradient ascent on the pixels
# ---------------------------------------------------------------------------------------------


#: :func:`laplacian_normalize`, compiled once for any image size.
_compiled_laplacian_normalize = tf.function(
    laplacian_normalize, input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)]
)


def _matlab(target, indices, start, levels, scale, iterations, rng, report) -> np.ndarray:
    height, width = start.shape[1:3]
    sizes = [(round(height / scale ** (levels - 1 - level)), round(width / scale ** (levels - 1 - level)))
             for level in range(levels)]  # fmt: skip
    min_size = models.min_input_size(target.extractor)
    if min(sizes[0]) < min_size:
        raise ValueError(
            f"The smallest pyramid level would be {sizes[0][1]}x{sizes[0][0]} px, below the network's {min_size} px: "
            f"use fewer pyramid_levels (e.g. {max(1, levels - 1)}), a smaller pyramid_scale or a larger image_size."
        )
    gradient = target.pixel_gradient
    channel_ids = tf.constant(indices, tf.int32)
    image = tf.image.resize(start, sizes[0], antialias=True)
    for level, size in enumerate(sizes, start=1):
        image = tf.image.resize(image, size, method="bicubic")
        for iteration in range(1, iterations + 1):
            shift = rng.integers(-MATLAB_JITTER_PIXELS, MATLAB_JITTER_PIXELS + 1, size=2).astype(np.int32)
            grad, strength = gradient(image, channel_ids, tf.constant(shift))
            image = image + MATLAB_STEP_SIZE * _compiled_laplacian_normalize(grad)
            report(iteration, iterations, float(tf.reduce_mean(strength)), level)
    return image.numpy()


def _naive(target, indices, start, steps, report) -> np.ndarray:
    gradient = target.pixel_gradient
    channel_ids = tf.constant(indices, tf.int32)
    no_shift = tf.zeros([2], tf.int32)
    image = tf.constant(start)
    for step in range(1, steps + 1):
        grad, strength = gradient(image, channel_ids, no_shift)
        grad = grad / (tf.math.reduce_std(grad, axis=[1, 2, 3], keepdims=True) + 1e-8)
        image = tf.clip_by_value(image + NAIVE_STEP_SIZE * grad, -1.0, 1.0)
        report(step, steps, float(tf.reduce_mean(strength)), 1)
    return image.numpy()


# ---------------------------------------------------------------------------------------------
# robust: decorrelated Fourier image, transformation robustness, optional diversity (Lucid)
# ---------------------------------------------------------------------------------------------


class FourierImage:
    """Images stored as the spectrum of decorrelated colour channels (Lucid's ``fft_image``).

    Each frequency is scaled by ``1 / f**decay``, so a gradient step changes coarse structure as
    easily as fine detail, and the colour channels are decorrelated with ImageNet's colour
    covariance (Lucid's ``to_valid_rgb``), so steps change brightness and hue independently.
    A sigmoid keeps pixels in (0, 1).

    Example:
        >>> parameterization = FourierImage(2, 224, 224, np.random.default_rng(0))
        >>> parameterization().shape
        TensorShape([2, 224, 224, 3])
    """

    def __init__(self, count: int, height: int, width: int, rng: np.random.Generator,
                 initial: np.ndarray | None = None, decay_power: float = SPECTRUM_DECAY_POWER):
        frequency_y = np.fft.fftfreq(height)[:, None]
        frequency_x = np.fft.rfftfreq(width)[None, :]
        frequency = np.sqrt(frequency_x ** 2 + frequency_y ** 2)
        scale = 1.0 / np.maximum(frequency, 1.0 / max(height, width)) ** decay_power
        self.frequency_scale = tf.constant((scale * math.sqrt(height * width)).astype(np.complex64))
        self.size = tf.constant([height, width], tf.int32)
        shape = (2, count, 3, height, width // 2 + 1)
        values = rng.normal(size=shape).astype(np.float32) * SPECTRUM_INIT_STD
        if initial is not None:
            values = self._spectrum_of(initial)
        self.spectrum = tf.Variable(values, name="spectrum")

    def __call__(self) -> tf.Tensor:
        """The images (N, H, W, 3), values in (0, 1)."""
        return spectrum_to_images(self.spectrum, self.frequency_scale, self.size)

    def _spectrum_of(self, unit_images: np.ndarray) -> np.ndarray:
        """The parameters that reproduce images in (0, 1): the inverse of ``__call__``."""
        clipped = np.clip(unit_images, 0.02, 0.98)
        logits = np.log(clipped / (1 - clipped))
        decorrelated = logits @ np.linalg.inv(COLOR_CORRELATION).T * SPECTRUM_OUTPUT_DIVISOR
        spectrum = np.fft.rfft2(np.transpose(decorrelated, (0, 3, 1, 2))) / self.frequency_scale.numpy()
        return np.stack([spectrum.real, spectrum.imag]).astype(np.float32)


def spectrum_to_images(spectrum: tf.Tensor, frequency_scale: tf.Tensor, size: tf.Tensor) -> tf.Tensor:
    """Scaled spectrum (2, N, 3, H, W//2+1) -> inverse FFT -> correlated colours -> sigmoid: (N, H, W, 3)."""
    scaled = tf.complex(spectrum[0], spectrum[1]) * frequency_scale
    decorrelated = tf.signal.irfft2d(scaled, fft_length=size)
    decorrelated = tf.transpose(decorrelated, [0, 2, 3, 1]) / SPECTRUM_OUTPUT_DIVISOR
    return tf.sigmoid(tf.einsum("nhwc,dc->nhwd", decorrelated, tf.constant(COLOR_CORRELATION)))


def _robust_transform_parameters(rng: np.random.Generator, size: int) -> dict[str, tf.Tensor]:
    """One random draw of Lucid's standard transforms, pixel amounts scaled to the image size."""
    factor = size / ROBUST_REFERENCE_SIZE
    first_jitter, second_jitter = (max(1, round(pixels * factor)) for pixels in ROBUST_JITTER_PIXELS)
    parameters = {
        "pad": np.int32(max(1, round(ROBUST_PAD_PIXELS * factor))),
        "offset1": rng.integers(0, first_jitter + 1, size=2).astype(np.int32),
        "crop1": np.int32(first_jitter),
        "scale": np.float32(rng.uniform(*ROBUST_SCALE_RANGE)),
        "angle": np.float32(math.radians(rng.uniform(-ROBUST_ROTATION_DEGREES, ROBUST_ROTATION_DEGREES))),
        "offset2": rng.integers(0, second_jitter + 1, size=2).astype(np.int32),
        "crop2": np.int32(second_jitter),
    }
    return {name: tf.constant(value) for name, value in parameters.items()}


def robust_transform(
    image: tf.Tensor,
    pad: tf.Tensor,
    offset1: tf.Tensor,
    crop1: tf.Tensor,
    scale: tf.Tensor,
    angle: tf.Tensor,
    offset2: tf.Tensor,
    crop2: tf.Tensor,
) -> tf.Tensor:
    """Pad with grey, jitter, scale, rotate, jitter (Lucid's ``standard_transforms``), images in (0, 1)."""
    image = tf.pad(image, [[0, 0], [pad, pad], [pad, pad], [0, 0]], constant_values=0.5)
    height, width = tf.shape(image)[1] - crop1, tf.shape(image)[2] - crop1
    image = image[:, offset1[0]:offset1[0] + height, offset1[1]:offset1[1] + width]
    new_height = tf.cast(tf.round(tf.cast(height, tf.float32) * scale), tf.int32)
    new_width = tf.cast(tf.round(tf.cast(width, tf.float32) * scale), tf.int32)
    image = tf.image.resize(image, [new_height, new_width], antialias=True)
    cos, sin = tf.cos(angle), tf.sin(angle)
    center_y = (tf.cast(new_height, tf.float32) - 1) / 2
    center_x = (tf.cast(new_width, tf.float32) - 1) / 2
    # Output pixel (x, y) samples the input at the point rotated about the centre.
    matrix = tf.stack([cos, -sin, center_x - cos * center_x + sin * center_y,
                       sin, cos, center_y - sin * center_x - cos * center_y, 0.0, 0.0])  # fmt: skip
    image = tf.raw_ops.ImageProjectiveTransformV3(
        images=image, transforms=tf.tile(matrix[None], [tf.shape(image)[0], 1]),
        output_shape=tf.stack([new_height, new_width]), interpolation="BILINEAR", fill_mode="REFLECT",
        fill_value=0.0,
    )  # fmt: skip
    return image[:, offset2[0]:offset2[0] + new_height - crop2, offset2[1]:offset2[1] + new_width - crop2]


def _diversity_similarity(features: tf.Tensor, same_channel: tf.Tensor) -> tf.Tensor:
    """Mean cosine similarity between the features of images of the same channel (Lucid's diversity).

    ``same_channel[i, j]`` is 1 where images i != j visualise the same channel, else 0.
    """
    if len(features.shape) == 4:  # a feature map: compare Gram matrices (style), as Lucid does
        flat = tf.reshape(features, [tf.shape(features)[0], -1, tf.shape(features)[-1]])
        gram = tf.matmul(flat, flat, transpose_a=True) / tf.cast(tf.shape(flat)[1], tf.float32)
        features = tf.reshape(gram, [tf.shape(gram)[0], -1])
    unit = tf.math.l2_normalize(features, axis=1)
    similarity = tf.matmul(unit, unit, transpose_b=True)
    return tf.reduce_sum(similarity * same_channel) / tf.maximum(tf.reduce_sum(same_channel), 1.0)


def _robust(target, indices, size, photo, iterations, diversity, rng, report) -> np.ndarray:
    height, width = size
    parameterization = FourierImage(len(indices), height, width, rng, photo)
    optimizer = keras.optimizers.Adam(ROBUST_LEARNING_RATE)
    same_channel = np.equal.outer(indices, indices) & ~np.eye(len(indices), dtype=bool)
    arguments = dict(
        frequency_scale=parameterization.frequency_scale, size=parameterization.size,
        indices=tf.constant(indices, tf.int32), same_channel=tf.constant(same_channel, tf.float32),
        diversity_weight=tf.constant(diversity, tf.float32),
    )  # fmt: skip
    for iteration in range(1, iterations + 1):
        transform = _robust_transform_parameters(rng, min(height, width))
        gradient, strength = target.robust_gradient(parameterization.spectrum, transform=transform, **arguments)
        optimizer.apply_gradients([(gradient, parameterization.spectrum)])
        report(iteration, iterations, float(tf.reduce_mean(strength)), 1)
    return parameterization().numpy() * 2.0 - 1.0


# ---------------------------------------------------------------------------------------------
# Is it a picture? Two numbers that tell noise from structure (lesson 09, bench/classviz_quality.py)
# ---------------------------------------------------------------------------------------------

#: ITU-R BT.601 luma weights, the usual RGB -> grey conversion.
_LUMA = np.array([0.299, 0.587, 0.114])


def high_frequency_share(image: np.ndarray) -> float:
    """Share of the grey image's spectral power (mean removed) above half the Nyquist frequency.

    Half Nyquist is 0.25 cycles per pixel (radial). Photos of dogs put 0.5-8 % of their power
    there; coloured noise from naive activation maximisation about 20 %.

    Args:
        image: (H, W, 3) floats in [0, 1].
    """
    grey = np.asarray(image, np.float64) @ _LUMA
    grey = grey - grey.mean()
    power = np.abs(np.fft.fft2(grey)) ** 2
    frequency = np.hypot(np.fft.fftfreq(grey.shape[0])[:, None], np.fft.fftfreq(grey.shape[1])[None, :])
    return float(power[frequency > 0.25].sum() / max(power.sum(), 1e-20))


def rms_contrast(image: np.ndarray) -> float:
    """Standard deviation of the grey image, (H, W, 3) floats in [0, 1]: a washed-out blur is near 0."""
    return float((np.asarray(image, np.float64) @ _LUMA).std())
