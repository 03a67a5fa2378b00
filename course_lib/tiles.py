"""Random rolls and tiled gradients: the tutorial's way to dream on big photos in bounded memory.

The network never sees more than ``tile_size x tile_size`` pixels at once; before each step the
image is rolled by a random shift so that tile borders fall somewhere new every time and leave no
seams (:func:`random_roll`, :class:`TiledGradients`). :func:`course_lib.dream.run_deep_dream`
uses them when given a ``tile_size``.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from course_lib import ascent, validate  # noqa: E402
from course_lib.ascent import check_layer_weights, loss_function  # noqa: E402

#: ``TiledGradients.__call__(self, img, img_size, tile_size=512)``.
TILE_SIZE = 512


def random_roll(
    img: tf.Tensor, maxroll: int | tf.Tensor, generator: tf.random.Generator | None = None
) -> tuple[tf.Tensor, tf.Tensor]:
    """Shift the image by a random (dy, dx) in [-maxroll, maxroll), wrapping around the edges.

    Tiles are cut at fixed places; rolling the image first moves the cuts to a different place in
    the picture at every step, so no seam can build up at a tile border.

    Returns:
        ``(shift, rolled_image)``; roll back with ``tf.roll(x, -shift, axis=[0, 1])``.
    """
    shift = _random_shift(maxroll, generator)
    img_rolled = tf.roll(img, shift=shift, axis=[0, 1])
    return shift, img_rolled


def _random_shift(maxroll: int | tf.Tensor, generator: tf.random.Generator | None = None) -> tf.Tensor:
    """(dy, dx), each uniform in [-maxroll, maxroll), as in the tutorial's ``random_roll``."""
    maxroll = tf.cast(maxroll, tf.int32)
    if generator is None:
        return tf.random.uniform(shape=[2], minval=-maxroll, maxval=maxroll, dtype=tf.int32)
    return generator.uniform(shape=[2], minval=-maxroll, maxval=maxroll, dtype=tf.int32)


def tile_bounds(length: tf.Tensor | int, tile_size: tf.Tensor | int) -> tf.Tensor:
    """Where tiles start and end along one side: ``n + 1`` bounds for ``n = ceil(length / tile_size)`` tiles.

    The tiles partition the whole side (every pixel in exactly one tile, edge included) and are
    as equal as possible (lengths differ by at most 1), so none is a thin sliver: each is at least
    ``ceil(tile_size / 2)`` pixels long, or the whole side when that is shorter than ``tile_size``.
    (A side of ``tile_size + 1`` gives the shortest tiles: 513 px with 512 px tiles gives 256 + 257.)
    Computed from tensors, so it works with sizes known only at run time.

    Example:
        >>> tile_bounds(1000, 512).numpy()
        array([   0,  500, 1000], dtype=int32)
        >>> tile_bounds(513, 512).numpy()
        array([  0, 256, 513], dtype=int32)
    """
    length = tf.cast(length, tf.int32)
    tile_size = tf.cast(tile_size, tf.int32)
    count = tf.maximum((length + tile_size - 1) // tile_size, 1)
    return (tf.range(count + 1) * length) // count


class TiledGradients(tf.Module):
    """The tutorial's ``TiledGradients``: the dream gradient of a large image, one tile at a time.

    Memory grows with the tile, not the image: the network never sees more than
    ``tile_size x tile_size`` pixels at once. Before tiling, the image is rolled by a random shift
    (as :func:`random_roll` does) so tile borders fall somewhere new at every step and leave no
    seams. The roll is applied one band of tiles at a time, never to a full copy of the image, and
    the standard deviation is summed tile by tile: a 4000x3000 photo (6760x5070 px at octave 2)
    dreams in under 4 GiB (``bench/memory_tiled.py``).

    Fixed against the tutorial: the image size is read with ``tf.shape`` at run time (the bug
    tensorflow/docs PR 1995 fixed), and the tiles cover every pixel, edge tiles included (the
    tutorial skipped the last tile in each direction).

    Args:
        model: a feature extractor.
        tile_size: the largest tile side in pixels (the tutorial: 512).
        layer_weights: optional weight per output layer.
        optimize, precision, forms: as in :class:`course_lib.dream.DeepDream`.
        seed: seeds :attr:`generator`, which draws the random roll (default ``config.settings.seed``).
            :func:`course_lib.dream.run_deep_dream` re-seeds it at the start of every run.

    Attributes:
        generator: the ``tf.random.Generator`` of the random rolls. It keeps its state between
            calls, so reset it (``generator.reset_from_seed(seed)``) to repeat a dream exactly.
        gradient_forms: as in :class:`course_lib.dream.DeepDream`.

    Example:
        >>> get_tiled_gradients = TiledGradients(models.feature_extractor(bb), tile_size=512)
        >>> gradients = get_tiled_gradients(img)   # same shape as img, std 1
    """

    def __init__(
        self,
        model: keras.Model,
        tile_size: int = TILE_SIZE,
        layer_weights: Sequence[float] | None = None,
        *,
        optimize: bool = True,
        precision: str = "auto",
        forms: Any = None,
        seed: int | None = None,
    ):
        super().__init__(name="tiled_gradients")
        self.model = model
        self.tile_size = validate.whole_number("tile_size", tile_size, low=1, example=TILE_SIZE)
        self.output_count = len(model.outputs)
        self.layer_weights = check_layer_weights(layer_weights, self.output_count)
        self.trace_count = 0
        self.generator = tf.random.Generator.from_seed(validate.seed(seed))
        self._loss_fn, self.precision = loss_function(model, self.layer_weights, optimize, precision, forms)
        self.gradient_forms = dict(getattr(self._loss_fn, "gradient_forms", {}))

    @tf.function(input_signature=(tf.TensorSpec(shape=[None, None, 3], dtype=tf.float32),))
    def __call__(self, img: tf.Tensor) -> tf.Tensor:
        """The normalised gradient (std 1) of the summed tile losses, same shape as ``img``."""
        self.trace_count += 1
        # The tutorial rolls the whole image (random_roll) and cuts the rolled copy into tiles. Here
        # the same roll is applied one band of tile rows at a time, so no rolled copy of the whole
        # image is ever made (at 6760x5070 px it would be 400 MB): rolled[y] = img[(y - shift) mod H].
        shift = _random_shift(self.tile_size, self.generator)
        # Run-time sizes (tf.shape), never img.shape, which is [None, None, 3] while tracing.
        image_shape = tf.shape(img)
        y_bounds = tile_bounds(image_shape[0], self.tile_size)
        x_bounds = tile_bounds(image_shape[1], self.tile_size)
        tile_rows = tf.size(y_bounds) - 1
        tile_columns = tf.size(x_bounds) - 1
        rows = tf.TensorArray(tf.float32, size=tile_rows, infer_shape=False)
        # The standard deviation is gathered tile by tile (sum and sum of squares, in float64), so
        # no image-sized temporary is needed for it either.
        total = tf.constant(0.0, tf.float64)
        total_of_squares = tf.constant(0.0, tf.float64)
        for row in tf.range(tile_rows):
            band_rows = tf.math.floormod(tf.range(y_bounds[row], y_bounds[row + 1]) - shift[0], image_shape[0])
            band = tf.roll(tf.gather(img, band_rows, axis=0), shift=shift[1], axis=1)
            # Tiles of one band are joined side by side: transpose so TensorArray.concat joins along width.
            row_tiles = tf.TensorArray(tf.float32, size=tile_columns, infer_shape=False)
            for column in tf.range(tile_columns):
                img_tile = band[:, x_bounds[column]:x_bounds[column + 1]]
                with tf.GradientTape() as tape:
                    tape.watch(img_tile)
                    loss = self._loss_fn(img_tile)
                tile_gradients = tape.gradient(loss, img_tile)
                total += tf.reduce_sum(tf.cast(tile_gradients, tf.float64))
                total_of_squares += tf.reduce_sum(tf.square(tf.cast(tile_gradients, tf.float64)))
                row_tiles = row_tiles.write(column, tf.transpose(tile_gradients, [1, 0, 2]))
            band_gradients = tf.transpose(row_tiles.concat(), [1, 0, 2])
            # Undo the random shift: across the width now, band by band; down the height below.
            rows = rows.write(row, tf.roll(band_gradients, shift=-shift[1], axis=1))
        gradients = tf.reshape(rows.concat(), image_shape)
        gradients = tf.roll(gradients, shift=-shift[0], axis=0)
        # Normalize the gradients: the same tf.math.reduce_std(gradients) as the tutorial, from the sums.
        count = tf.cast(tf.size(gradients), tf.float64)
        variance = tf.maximum(total_of_squares / count - tf.square(total / count), 0.0)
        return ascent.normalize(gradients, tf.cast(tf.sqrt(variance), tf.float32))


#: :func:`course_lib.ascent.ascend` compiled for one image of any size, so that TensorFlow can reuse
#: buffers between its add and its clip (at 6760x5070 px every temporary copy of the image is 400 MB).
#: The tiled dream's step is ``ascend(img, tiled_gradients(img), step_size)``.
ascend = tf.function(ascent.ascend, input_signature=(
    tf.TensorSpec(shape=[None, None, 3], dtype=tf.float32),
    tf.TensorSpec(shape=[None, None, 3], dtype=tf.float32),
    tf.TensorSpec(shape=[], dtype=tf.float32),
))
