"""Transformation robustness: the random pad, jitter, scale and rotation of every robust step (Lucid).

An image that only works pixel-perfectly is an adversarial pattern, not a picture. If every
step sees the image randomly padded, shifted, scaled and rotated, only patterns that survive
all of those pay off: eyes, noses, fur (Lucid's ``standard_transforms``).
"""
from __future__ import annotations

import math
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf  # noqa: E402

#: Lucid's ``standard_transforms`` at 224 px: pad 12 px (grey 0.5), jitter 8, scale 0.9-1.1,
#: rotate -10..10 degrees, jitter 4. Pixel amounts scale with the image size.
ROBUST_PAD_PIXELS = 12
ROBUST_JITTER_PIXELS = (8, 4)
ROBUST_SCALE_RANGE = (0.9, 1.1)
ROBUST_ROTATION_DEGREES = 10.0
ROBUST_REFERENCE_SIZE = 224


def random_transform_parameters(rng: np.random.Generator, size: int) -> dict[str, tf.Tensor]:
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
