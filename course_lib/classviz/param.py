"""How the robust method stores an image: a scaled Fourier spectrum in decorrelated colour (Lucid).

Gradient ascent on raw pixels paints high-frequency noise: every pixel is a free parameter and
the network's gradient is dominated by fine detail. Storing the image as its Fourier spectrum,
each frequency scaled by ``1 / f**decay``, makes a step change coarse structure as easily as fine
detail; decorrelating the colour channels with ImageNet's colour covariance lets a step change
brightness and hue independently (Lucid's ``fft_image`` and ``to_valid_rgb``; Olah, Mordvintsev,
Schubert, "Feature Visualization", Distill 2017). :class:`PixelImage` stores the pixels instead,
for lesson 09's ablation of the recipe.
"""
from __future__ import annotations

import math
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

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
#: Lucid's ``naive`` pixel parameterisation starts from noise of standard deviation 0.01 too.
PIXEL_INIT_STD = 0.01


class FourierImage:
    """Images stored as the spectrum of (decorrelated) colour channels (Lucid's ``fft_image``).

    Each frequency is scaled by ``1 / f**decay``, so a gradient step changes coarse structure as
    easily as fine detail, and the colour channels are decorrelated with ImageNet's colour
    covariance (Lucid's ``to_valid_rgb``), so steps change brightness and hue independently
    (``decorrelate=False``: each stored channel is one of red, green, blue). A sigmoid keeps
    pixels in (0, 1).

    Example:
        >>> parameterization = FourierImage(2, 224, 224, np.random.default_rng(0))
        >>> parameterization().shape
        TensorShape([2, 224, 224, 3])
    """

    def __init__(self, count: int, height: int, width: int, rng: np.random.Generator,
                 initial: np.ndarray | None = None, decay_power: float = SPECTRUM_DECAY_POWER,
                 decorrelate: bool = True):
        frequency_y = np.fft.fftfreq(height)[:, None]
        frequency_x = np.fft.rfftfreq(width)[None, :]
        frequency = np.sqrt(frequency_x ** 2 + frequency_y ** 2)
        scale = 1.0 / np.maximum(frequency, 1.0 / max(height, width)) ** decay_power
        self.frequency_scale = tf.constant((scale * math.sqrt(height * width)).astype(np.complex64))
        self.size = tf.constant([height, width], tf.int32)
        self.colour = colour_matrix(decorrelate)
        # Drawn image by image, so the first k images do not depend on how many are made.
        values = rng.normal(size=(count, 2, 3, height, width // 2 + 1)).astype(np.float32) * SPECTRUM_INIT_STD
        values = np.transpose(values, (1, 0, 2, 3, 4))
        if initial is not None:
            values = self._spectrum_of(initial)
        self.spectrum = tf.Variable(values, name="spectrum")

    @property
    def variable(self) -> tf.Variable:
        """What the optimiser changes: the scaled spectrum (2, N, 3, H, W//2+1)."""
        return self.spectrum

    def constants(self) -> dict[str, tf.Tensor]:
        """The fixed arguments of :func:`spectrum_to_images` besides the spectrum."""
        return {"frequency_scale": self.frequency_scale, "size": self.size, "colour": self.colour}

    def __call__(self) -> tf.Tensor:
        """The images (N, H, W, 3), values in (0, 1)."""
        return spectrum_to_images(self.spectrum, **self.constants())

    def _spectrum_of(self, unit_images: np.ndarray) -> np.ndarray:
        """The parameters that reproduce images in (0, 1): the inverse of ``__call__``."""
        decorrelated = _uncorrelated_logits(unit_images, self.colour) * SPECTRUM_OUTPUT_DIVISOR
        spectrum = np.fft.rfft2(np.transpose(decorrelated, (0, 3, 1, 2))) / self.frequency_scale.numpy()
        return np.stack([spectrum.real, spectrum.imag]).astype(np.float32)


class PixelImage:
    """Images stored as their pixels (Lucid's ``naive`` parameterisation), optionally in
    decorrelated colour, through a sigmoid: the robust method without the Fourier spectrum.

    Every pixel is a free parameter, so nothing makes coarse structure cheaper than fine
    detail: lesson 09's ablation shows what that costs.
    """

    def __init__(self, count: int, height: int, width: int, rng: np.random.Generator,
                 initial: np.ndarray | None = None, decorrelate: bool = True):
        self.colour = colour_matrix(decorrelate)
        values = rng.normal(size=(count, height, width, 3)).astype(np.float32) * PIXEL_INIT_STD
        if initial is not None:
            values = _uncorrelated_logits(initial, self.colour).astype(np.float32)
        self.pixels = tf.Variable(values, name="pixels")

    @property
    def variable(self) -> tf.Variable:
        """What the optimiser changes: the pixels (N, H, W, 3) before colour and sigmoid."""
        return self.pixels

    def constants(self) -> dict[str, tf.Tensor]:
        """The fixed arguments of :func:`pixels_to_images` besides the pixels."""
        return {"colour": self.colour}

    def __call__(self) -> tf.Tensor:
        """The images (N, H, W, 3), values in (0, 1)."""
        return pixels_to_images(self.pixels, **self.constants())


def colour_matrix(decorrelate: bool) -> tf.Tensor:
    """ImageNet's colour correlation (stored channels -> RGB), or the identity when not decorrelating."""
    return tf.constant(COLOR_CORRELATION if decorrelate else np.eye(3, dtype=np.float32))


def _uncorrelated_logits(unit_images: np.ndarray, colour: tf.Tensor) -> np.ndarray:
    """Images in (0, 1) -> the stored channels that give them back through colour and sigmoid."""
    clipped = np.clip(unit_images, 0.02, 0.98)
    logits = np.log(clipped / (1 - clipped))
    return logits @ np.linalg.inv(colour.numpy()).T


def spectrum_to_images(spectrum: tf.Tensor, frequency_scale: tf.Tensor, size: tf.Tensor,
                       colour: tf.Tensor | None = None) -> tf.Tensor:
    """Scaled spectrum (2, N, 3, H, W//2+1) -> inverse FFT -> colours -> sigmoid: (N, H, W, 3)."""
    scaled = tf.complex(spectrum[0], spectrum[1]) * frequency_scale
    decorrelated = tf.signal.irfft2d(scaled, fft_length=size)
    decorrelated = tf.transpose(decorrelated, [0, 2, 3, 1]) / SPECTRUM_OUTPUT_DIVISOR
    return pixels_to_images(decorrelated, colour)


def pixels_to_images(pixels: tf.Tensor, colour: tf.Tensor | None = None) -> tf.Tensor:
    """Stored channels (N, H, W, 3) -> RGB with the colour matrix (default: decorrelated) -> sigmoid."""
    colour = tf.constant(COLOR_CORRELATION) if colour is None else colour
    return tf.sigmoid(tf.einsum("nhwc,dc->nhwd", pixels, colour))
