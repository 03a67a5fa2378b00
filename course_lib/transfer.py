"""Transfer learning, the MATLAB half of the source: a pretrained network learns new dog breeds.

The source (MATLAB) takes GoogLeNet, replaces its last fully connected layer by ``new_fc`` with
one unit per class and a learning rate 10x the rest, trains it on a 70/30 split of a folder of
breed sub-folders with random reflection, translation and scaling, watches a live training plot,
always saves the result, and reads a confusion chart. This module does each of those steps:

- :func:`image_folder`, :func:`split_each_label`, :func:`count_table`: the data and its split.
- :func:`augmenter`: the source's ``imageDataAugmenter`` as Keras preprocessing layers.
- :func:`build_classifier`: a copy of a pretrained backbone + pooling + ``new_fc`` + softmax.
- :class:`Trainer`, :func:`train_classifier`: head first with the base frozen, then optionally the
  top of the base; ``new_fc`` really learns 10x faster (two optimizers); early stopping.
- :func:`save_classifier`, :func:`load_classifier`: one atomic ``.keras`` file that keeps the class names.
- :func:`evaluate`: predictions, confusion matrix, per-class accuracy, misclassified photos.

The classifier is a :class:`course_lib.models.Classifier` (model, class names, input size), the
same contract as the embedded ``models.dog_breed_classifier()``, so lesson 09 takes either.

**``new_fc`` outputs logits.** Unlike the embedded model's ``dense`` layer (softmax folded in),
``new_fc`` here is a plain linear layer followed by a separate ``Softmax`` layer named ``prob``,
exactly like MATLAB's ``new_fc`` -> ``prob`` -> ``new_classoutput``. The source's ``deepDreamImage``
maximises channels of layer 142, which is ``new_fc``: the class *scores* before the softmax.
"""
from __future__ import annotations

import json
import os
import time
import warnings
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from course_lib import config, files, images
from course_lib.models import DOG_MODEL_INPUT_SIZE, Backbone, Classifier, backbone as load_backbone
from course_lib.progress import Progress

if TYPE_CHECKING:  # only for the hint: Matplotlib is imported by images.show_grid when a figure is drawn
    import matplotlib.figure

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

#: File endings read as photos; other files in a class folder (notes, CSVs) are ignored.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")

#: The source's ``splitEachLabel(imds, 0.7, 'randomized')``: 70 % of each class to train on.
TRAIN_FRACTION = 0.7

#: The source's ``fullyConnectedLayer(..., 'WeightLearnRateFactor',10, 'BiasLearnRateFactor',10)``.
HEAD_LEARN_RATE_FACTOR = 10.0

#: The source's ``trainingOptions('sgdm', 'InitialLearnRate',3e-4, ...)``.
LEARNING_RATE = 3e-4
#: MATLAB's default ``Momentum`` for 'sgdm' (the source keeps the default).
MOMENTUM = 0.9

#: The source's ``pixelRange = [-30 30]`` for 'RandXTranslation'/'RandYTranslation', on GoogLeNet's
#: 224 px input; Keras' RandomTranslation wants a fraction of the side, so 30/224 at any input size.
TRANSLATION_PIXELS = 30
SOURCE_INPUT_SIZE = 224
#: The source's ``scaleRange = [0.9 1.1]`` for 'RandXScale'/'RandYScale'.
SCALE_RANGE = (0.9, 1.1)

#: Name of the new final layer (the source's ``'Name','new_fc'``); it outputs logits.
HEAD_LAYER = "new_fc"
#: Name of the softmax after it (MATLAB's ``prob``).
SOFTMAX_LAYER = "prob"

#: The extra entry :func:`save_classifier` adds to the ``.keras`` zip: class names and how it was trained.
METADATA_ENTRY = "course_classifier.json"
#: File name of the course's trained classifier in ``settings.models_dir``.
DEFAULT_MODEL_FILE = "pets_classifier.keras"


# ---------------------------------------------------------------------------------------------
# Data: a folder of class sub-folders, and its 70/30 split
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabeledImages:
    """Photo files with their class, like MATLAB's ``imageDatastore(..., 'LabelSource','foldernames')``.

    Attributes:
        root: the folder holding one sub-folder per class.
        class_names: the class (sub-folder) names, sorted.
        files: one path per photo.
        labels: for each file, its index in ``class_names``.
    """

    root: Path
    class_names: tuple[str, ...]
    files: tuple[Path, ...]
    labels: np.ndarray = field(repr=False)

    def __len__(self) -> int:
        return len(self.files)

    def counts(self) -> dict[str, int]:
        """Number of photos per class, in class order (classes with none included, as 0)."""
        per_class = np.bincount(self.labels, minlength=len(self.class_names))
        return {name: int(count) for name, count in zip(self.class_names, per_class)}

    def subset(self, indices: Sequence[int] | np.ndarray) -> "LabeledImages":
        """The photos at ``indices`` (same classes, same root)."""
        indices = np.asarray(indices, dtype=int)
        return LabeledImages(self.root, self.class_names, tuple(self.files[i] for i in indices), self.labels[indices])

    def relative_names(self) -> list[str]:
        """``class/file.jpg`` for each photo: names that stay valid if the folder moves."""
        return [f"{self.class_names[label]}/{path.name}" for path, label in zip(self.files, self.labels)]


def image_folder(folder: str | os.PathLike, *, max_per_class: int | None = None) -> LabeledImages:
    """List the photos of a folder of class sub-folders; the sub-folder names are the classes.

    Args:
        folder: e.g. ``data.pets_dataset()``: ``folder/beagle/*.jpg``, ``folder/cat/*.jpg``, ...
            Files at the top level (README, CSV) and hidden entries are ignored.
        max_per_class: keep only the first N photos of each class (sorted by name), to make a
            lesson fit a laptop or CI; ``None`` keeps all.

    Returns:
        :class:`LabeledImages` with the classes sorted by name.

    Raises:
        FileNotFoundError: the folder does not exist.
        ValueError: it has fewer than two class sub-folders, or a class sub-folder has no photos.

    Example:
        >>> pets = image_folder(data.pets_dataset())
        >>> pets.counts()["beagle"]
        100
    """
    root = Path(folder).expanduser()
    if not root.exists():
        raise FileNotFoundError(f"Data folder {root} does not exist. Point it at a folder with one sub-folder of photos per class.")
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is a file, not a folder of class sub-folders.")
    if max_per_class is not None and (not isinstance(max_per_class, (int, np.integer)) or max_per_class < 1):
        raise ValueError(f"max_per_class must be a whole number of at least 1 (or None for all), got {max_per_class!r}.")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(class_dirs) < 2:
        raise ValueError(
            f"{root} has {len(class_dirs)} class sub-folder(s); a classifier needs at least two. "
            "Put the photos of each class in their own sub-folder, e.g. beagle/ and cat/."
        )
    all_files: list[Path] = []
    labels: list[int] = []
    for index, class_dir in enumerate(class_dirs):
        photos = sorted(
            p for p in class_dir.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
        )  # fmt: skip
        if not photos:
            raise ValueError(
                f"Class folder {class_dir} has no images (looked for {', '.join(IMAGE_EXTENSIONS)}). "
                "Add photos or remove the folder."
            )
        photos = photos[:max_per_class] if max_per_class else photos
        all_files += photos
        labels += [index] * len(photos)
    return LabeledImages(root, tuple(p.name for p in class_dirs), tuple(all_files), np.asarray(labels, dtype=int))


def split_each_label(
    dataset: LabeledImages, train_fraction: float = TRAIN_FRACTION, *, seed: int | None = None
) -> tuple[LabeledImages, LabeledImages]:
    """Split every class at random into a training and a validation part (``splitEachLabel``).

    Each class is split on its own (stratified), so both parts keep the class balance; the same
    seed always gives the same split, so lesson 08 can rebuild lesson 07's validation photos.

    Args:
        dataset: from :func:`image_folder`.
        train_fraction: share of each class for training (the source's 0.7); the rest validates.
            Each class keeps at least one photo on each side.
        seed: random seed (default ``settings.seed``).

    Returns:
        ``(train, validation)``, each in class order.

    Example:
        >>> train, valid = split_each_label(pets, 0.7, seed=1234)
        >>> train.counts()["cat"], valid.counts()["cat"]
        (70, 30)
    """
    if not 0.0 < float(train_fraction) < 1.0 or not np.isfinite(train_fraction):
        raise ValueError(f"train_fraction must be between 0 and 1 (the source uses 0.7), got {train_fraction!r}.")
    rng = np.random.default_rng(config.settings.seed if seed is None else seed)
    train_indices: list[int] = []
    valid_indices: list[int] = []
    for label, name in enumerate(dataset.class_names):
        members = np.flatnonzero(dataset.labels == label)
        if len(members) < 2:
            raise ValueError(
                f"Class {name!r} has {len(members)} photo(s); splitting needs at least 2 per class "
                "(one to train on, one to validate)."
            )
        shuffled = rng.permutation(members)
        n_train = min(max(int(round(train_fraction * len(members))), 1), len(members) - 1)
        train_indices += sorted(shuffled[:n_train].tolist())
        valid_indices += sorted(shuffled[n_train:].tolist())
    return dataset.subset(train_indices), dataset.subset(valid_indices)


def count_table(**parts: LabeledImages) -> str:
    """A small text table of photos per class for each named part, e.g. ``count_table(train=t, validation=v)``."""
    if not parts:
        raise ValueError("Give at least one part, e.g. count_table(train=train_set).")
    names = list(parts)
    class_names = next(iter(parts.values())).class_names
    width = max(len("class"), *(len(c) for c in class_names))
    lines = [f"{'class':<{width}}  " + "  ".join(f"{n:>10}" for n in names)]
    counts = [part.counts() for part in parts.values()]
    for class_name in class_names:
        lines.append(f"{class_name:<{width}}  " + "  ".join(f"{c.get(class_name, 0):>10}" for c in counts))
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{len(part):>10}" for part in parts.values()))
    return "\n".join(lines)


def read_images(dataset: LabeledImages, input_size: int) -> tuple[np.ndarray, LabeledImages]:
    """Decode every photo once and resize it to ``input_size`` x ``input_size`` (uint8).

    Like MATLAB's ``augmentedImageDatastore(inputSize, ...)`` the photo is resized to the square
    input (not cropped). Decoding everything up front means a broken file can never crash
    training half-way through an epoch: unreadable files are skipped with a warning naming them.

    Args:
        dataset: the photos to read.
        input_size: side of the square the network is trained at (e.g. 160).

    Returns:
        ``(pixels, readable)``: an array (N, input_size, input_size, 3) uint8, and the
        :class:`LabeledImages` of the N photos that could be read (same order).

    Raises:
        ValueError: if no photo at all could be read, or a class lost all its photos.
    """
    input_size = _check_input_size(input_size)
    pixels = np.zeros((len(dataset), input_size, input_size, 3), dtype=np.uint8)
    good: list[int] = []
    broken: list[str] = []
    for index, path in enumerate(dataset.files):
        try:
            pixels[len(good)] = _resize_square(images.load(path), input_size)
        except (images.ImageError, OSError, ValueError) as error:
            broken.append(f"{path} ({str(error).splitlines()[0] if str(error) else type(error).__name__})")
            continue
        good.append(index)
    if broken:
        warnings.warn(
            f"Skipped {len(broken)} unreadable image(s): " + "; ".join(broken), stacklevel=2
        )
    if not good:
        raise ValueError(f"None of the {len(dataset)} images in {dataset.root} could be read; see the warning above.")
    readable = dataset.subset(good)
    empty = [name for name, count in readable.counts().items() if count == 0 and dataset.counts()[name] > 0]
    if empty:
        raise ValueError(f"Every image of class(es) {', '.join(empty)} in {dataset.root} is unreadable.")
    return pixels[: len(good)], readable


def _resize_square(image: np.ndarray, size: int) -> np.ndarray:
    import PIL.Image

    if image.shape[:2] == (size, size):
        return image
    return np.asarray(PIL.Image.fromarray(image).resize((size, size), PIL.Image.BILINEAR))


def _check_input_size(input_size: int) -> int:
    if not isinstance(input_size, (int, np.integer)) or isinstance(input_size, bool) or not 32 <= input_size <= 1024:
        raise ValueError(
            f"input_size must be a whole number of pixels between 32 and 1024, got {input_size!r} "
            f"(the embedded model was trained at {DOG_MODEL_INPUT_SIZE})."
        )
    return int(input_size)


# ---------------------------------------------------------------------------------------------
# Augmentation: the source's imageDataAugmenter
# ---------------------------------------------------------------------------------------------


def augmenter(*, seed: int | None = None) -> keras.Sequential:
    """Random reflection, translation and scaling, as the source's ``imageDataAugmenter``.

    The source asks for ``'RandXReflection'`` (left-right flips), translations of up to 30 px in
    x and y on a 224 px input, and independent x and y scales between 0.9 and 1.1. Keras' layers
    take fractions of the image side, so the same augmentation works at any input size.
    Empty borders are filled with black, like MATLAB's default ``FillValue`` of 0.

    Args:
        seed: seed of the random layers (default ``settings.seed``).

    Returns:
        A ``keras.Sequential`` for batches of images in [0, 255]; call it with ``training=True``.

    Example:
        >>> augment = augmenter(seed=1)
        >>> copies = augment(np.repeat(photo[None], 8, axis=0).astype("float32"), training=True)
    """
    seed = config.settings.seed if seed is None else int(seed)
    shift = TRANSLATION_PIXELS / SOURCE_INPUT_SIZE
    # Keras' zoom factor z shows (1 + z) of the image, so the content is scaled by 1 / (1 + z):
    # a content scale of 0.9..1.1 needs z from 1/1.1 - 1 to 1/0.9 - 1.
    zoom = (1.0 / SCALE_RANGE[1] - 1.0, 1.0 / SCALE_RANGE[0] - 1.0)
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomTranslation(shift, shift, fill_mode="constant", seed=seed + 1),
            keras.layers.RandomZoom(zoom, zoom, fill_mode="constant", seed=seed + 2),
        ],
        name="augmenter",
    )


# ---------------------------------------------------------------------------------------------
# The classifier: a copy of the backbone + a new head
# ---------------------------------------------------------------------------------------------


def build_classifier(
    backbone: Backbone | str,
    class_names: Sequence[str],
    *,
    input_size: int = DOG_MODEL_INPUT_SIZE,
    dropout_rate: float = 0.2,
) -> Classifier:
    """A pretrained backbone with a new final layer ``new_fc`` for ``class_names``.

    The source replaces GoogLeNet's last fully connected layer; here the backbone has no head, so
    the new head is global average pooling, dropout, ``new_fc`` (linear: it outputs logits, one
    per class) and a softmax layer ``prob``. The backbone is *copied* (``clone_model`` + weights)
    so that training never changes the shared backbone other lessons dream with; its layers start
    frozen (``trainable = False``) and :class:`Trainer` unfreezes the top ones for fine-tuning.
    The backbone runs in inference mode (``training=False``) so its batch-norm statistics stay
    the pretrained ones even while its weights are fine-tuned, as Keras' transfer-learning guide advises.

    Args:
        backbone: a :class:`~course_lib.models.Backbone` or its name (``"dog_breeds"``, ``"auto"``...).
        class_names: one name per class, in output order (e.g. ``dataset.class_names``).
        input_size: the square side the classifier is trained at (the embedded model's 160 px).
        dropout_rate: share of pooled features dropped while training (0 turns it off).

    Returns:
        A :class:`~course_lib.models.Classifier` whose model maps images in [-1, 1] (any size)
        to class probabilities.

    Example:
        >>> classifier = build_classifier(models.backbone("dog_breeds"), pets.class_names)
        >>> classifier.model.get_layer("new_fc").units
        9
    """
    chosen = load_backbone(backbone, verbose=False) if isinstance(backbone, str) else backbone
    if not isinstance(chosen, Backbone):
        raise ValueError(f"backbone must be a models.Backbone or a backbone name, got {type(backbone).__name__}.")
    names = tuple(str(name) for name in class_names)
    if len(names) < 2 or len(set(names)) != len(names) or not all(names):
        raise ValueError(f"class_names must be at least two different, non-empty names, got {list(names)!r}.")
    input_size = _check_input_size(input_size)
    if input_size < chosen.min_size:
        raise ValueError(f"input_size {input_size} is too small for {chosen.name}; use at least {chosen.min_size}.")
    if not 0.0 <= float(dropout_rate) < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate!r}.")

    base = keras.models.clone_model(chosen.model)
    base.set_weights(chosen.model.get_weights())
    base.trainable = False
    inputs = keras.Input(shape=(None, None, 3), name="image")
    features = base(inputs, training=False)
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
    dropped = keras.layers.Dropout(float(dropout_rate), name="dropout")(pooled)
    # Zero weights: the new layer starts out knowing nothing (every class 1/N, loss ln N) instead of
    # with random scores on 1000+ large features, so the first epochs go to learning, not unlearning.
    logits = keras.layers.Dense(len(names), kernel_initializer="zeros", name=HEAD_LAYER)(dropped)
    probabilities = keras.layers.Softmax(name=SOFTMAX_LAYER)(logits)
    model = keras.Model(inputs, probabilities, name=f"{chosen.name}_transfer")
    return Classifier(model, names, input_size)


def base_model(classifier: Classifier) -> keras.Model:
    """The (copied) backbone inside a classifier built by :func:`build_classifier`."""
    nested = [layer for layer in classifier.model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError("This classifier was not built by transfer.build_classifier (no single backbone inside it).")
    return nested[0]


def unfreeze_top(classifier: Classifier, layers: int) -> int:
    """Make the top ``layers`` layers of the backbone trainable (batch-norm layers stay frozen).

    Returns:
        How many weight tensors of the backbone are now trainable.
    """
    if not isinstance(layers, (int, np.integer)) or layers < 0:
        raise ValueError(f"layers must be a whole number >= 0, got {layers!r}.")
    base = base_model(classifier)
    base.trainable = True
    cut = len(base.layers) - int(layers)
    for position, layer in enumerate(base.layers):
        layer.trainable = position >= cut and not isinstance(layer, keras.layers.BatchNormalization)
    if layers == 0:
        base.trainable = False
    return len(base.trainable_weights)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------


class Trainer:
    """Training steps in which ``new_fc`` learns ``head_learn_rate_factor`` times faster than the base.

    MATLAB multiplies the global learning rate by a layer's ``WeightLearnRateFactor``. Keras has
    one learning rate per optimizer, so the trainer keeps two SGD-with-momentum optimizers: one
    at ``learning_rate`` for the backbone's trainable weights, one at ``learning_rate * factor``
    for the weights and bias of ``new_fc``. Each step computes one gradient and lets each
    optimizer update its own variables, so every variable has its own learning rate.

    Two step kinds:

    - :meth:`train_head_batch`: base frozen. The base only computes features of the (augmented)
      batch once, :meth:`features`, and the step trains the head on them; far cheaper than a
      full backward pass.
    - :meth:`train_batch`: the full model (after :func:`unfreeze_top`): one gradient for the head
      and every trainable base weight.

    Args:
        classifier: from :func:`build_classifier`.
        learning_rate: the base learning rate (the source's 3e-4).
        momentum: SGD momentum (MATLAB's 'sgdm' default 0.9).
        head_learn_rate_factor: how much faster ``new_fc`` learns (the source's 10).
        augment: a Keras layer applied to training batches in [0, 255], e.g. :func:`augmenter`;
            ``None`` trains without augmentation.
    """

    def __init__(
        self,
        classifier: Classifier,
        *,
        learning_rate: float = LEARNING_RATE,
        momentum: float = MOMENTUM,
        head_learn_rate_factor: float = HEAD_LEARN_RATE_FACTOR,
        augment: keras.Layer | None = None,
    ):
        for name, value, low in (("learning_rate", learning_rate, 0.0), ("head_learn_rate_factor", head_learn_rate_factor, 0.0)):
            if not np.isfinite(value) or value <= low:
                raise ValueError(f"{name} must be a positive number, got {value!r}.")
        if not np.isfinite(momentum) or not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1) (MATLAB's default is 0.9), got {momentum!r}.")
        self.classifier = classifier
        self.learning_rate = float(learning_rate)
        self.head_learning_rate = float(learning_rate) * float(head_learn_rate_factor)
        self.augment = augment
        model = classifier.model
        self._base = base_model(classifier)
        self._head = model.get_layer(HEAD_LAYER)
        self._dropout = model.get_layer("dropout")
        self._pool = model.get_layer("avg_pool")
        self._logits_model = keras.Model(model.input, self._head.output)
        self.base_optimizer = keras.optimizers.SGD(self.learning_rate, momentum=momentum)
        self.head_optimizer = keras.optimizers.SGD(self.head_learning_rate, momentum=momentum)
        self._loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        self._steps: dict = {}

    @property
    def head_variables(self) -> list:
        """The weights and bias of ``new_fc``."""
        return list(self._head.trainable_variables)

    @property
    def base_variables(self) -> list:
        """The backbone's currently trainable weights (none while it is frozen)."""
        return list(self._base.trainable_variables)

    def _to_model_range(self, batch, training: bool):
        batch = tf.cast(batch, tf.float32)
        if training and self.augment is not None:
            batch = self.augment(batch, training=True)
        return batch / 127.5 - 1.0  # images.to_model_range, in-graph

    def features(self, batch: np.ndarray, *, training: bool = False) -> np.ndarray:
        """Pooled backbone features of a uint8 batch (augmented when ``training``)."""
        key = ("features", training)
        if key not in self._steps:
            @tf.function(reduce_retracing=True)
            def compute(images_batch):
                return self._pool(self._base(self._to_model_range(images_batch, training), training=False))
            self._steps[key] = compute
        return self._steps[key](tf.convert_to_tensor(batch))

    def train_head_batch(self, features: np.ndarray | tf.Tensor, labels: np.ndarray) -> tuple[float, float]:
        """One step on the head alone, from pooled features. Returns (loss, accuracy) of the batch."""
        if "head" not in self._steps:
            variables = self.head_variables

            @tf.function(reduce_retracing=True)
            def step(features_batch, label_batch):
                with tf.GradientTape() as tape:
                    logits = self._head(self._dropout(features_batch, training=True))
                    loss = self._loss(label_batch, logits)
                gradients = tape.gradient(loss, variables)
                self.head_optimizer.apply(gradients, variables)
                return loss, logits
            self._steps["head"] = step
        loss, logits = self._steps["head"](tf.convert_to_tensor(features), tf.convert_to_tensor(labels))
        return float(loss), _accuracy(logits, labels)

    def train_batch(self, batch: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        """One step on the whole model: ``new_fc`` at 10x, the trainable base at 1x."""
        head_variables, base_variables = self.head_variables, self.base_variables
        key = ("full", tuple(v.path for v in base_variables))
        if key not in self._steps:
            @tf.function(reduce_retracing=True)
            def step(images_batch, label_batch):
                with tf.GradientTape() as tape:
                    logits = self._logits_model(self._to_model_range(images_batch, True), training=True)
                    loss = self._loss(label_batch, logits)
                gradients = tape.gradient(loss, head_variables + base_variables)
                self.head_optimizer.apply(gradients[: len(head_variables)], head_variables)
                if base_variables:
                    self.base_optimizer.apply(gradients[len(head_variables):], base_variables)
                return loss, logits
            self._steps[key] = step
        loss, logits = self._steps[key](tf.convert_to_tensor(batch), tf.convert_to_tensor(labels))
        return float(loss), _accuracy(logits, labels)

    def head_logits(self, features: np.ndarray | tf.Tensor) -> np.ndarray:
        """Logits of the head from pooled features (no dropout): validation while the base is frozen."""
        return self._head(tf.convert_to_tensor(features)).numpy()

    def logits(self, batch: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Logits of the whole model for uint8 images (no augmentation, no dropout)."""
        if "logits" not in self._steps:
            self._steps["logits"] = tf.function(
                lambda x: self._logits_model(self._to_model_range(x, False), training=False), reduce_retracing=True
            )
        return np.concatenate(
            [self._steps["logits"](tf.convert_to_tensor(batch[i:i + batch_size])).numpy()
             for i in range(0, len(batch), batch_size)]
        )  # fmt: skip


def _accuracy(logits, labels) -> float:
    return float(np.mean(np.argmax(np.asarray(logits), axis=-1) == np.asarray(labels)))


def _cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_probabilities[np.arange(len(labels)), labels].mean())


@dataclass
class TrainingHistory:
    """What happened while training: one record per epoch, and the timing.

    Attributes:
        epochs: per epoch, a dict with ``epoch``, ``phase`` (``"head"`` or ``"fine-tune"``),
            ``loss``, ``accuracy`` (on augmented training batches), ``val_loss``, ``val_accuracy``.
        best_epoch: the epoch whose weights were kept (lowest validation loss).
        stopped_early: True if early stopping ended a phase before its last epoch.
        seconds: wall-clock time of training (reading photos included).
        cpu_seconds: CPU time of the process while training (both cores count).
        train_count, valid_count: photos trained on and validated on (after skipping broken ones).
    """

    epochs: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    train_count: int = 0
    valid_count: int = 0

    def best(self) -> dict:
        """The record of the kept epoch."""
        return next(record for record in self.epochs if record["epoch"] == self.best_epoch)

    def summary(self) -> str:
        best = self.best()
        return (
            f"kept epoch {best['epoch']} ({best['phase']}): validation accuracy {best['val_accuracy']:.1%}, "
            f"validation loss {best['val_loss']:.3f}; {len(self.epochs)} epochs in {self.seconds:.0f} s "
            f"(CPU time {self.cpu_seconds:.0f} s)"
        )


def train_classifier(
    classifier: Classifier,
    train_set: LabeledImages,
    valid_set: LabeledImages,
    *,
    epochs: int = 20,
    fine_tune_epochs: int = 0,
    fine_tune_layers: int = 30,
    learning_rate: float = LEARNING_RATE,
    momentum: float = MOMENTUM,
    head_learn_rate_factor: float = HEAD_LEARN_RATE_FACTOR,
    batch_size: int = 32,
    patience: int = 4,
    augment: keras.Layer | None | str = "default",
    seed: int | None = None,
    callbacks: Iterable[keras.callbacks.Callback] = (),
    verbose: bool = True,
) -> TrainingHistory:
    """Train ``classifier`` in place: the head with the base frozen, then optionally the top of the base.

    Each phase stops early when the validation loss has not improved for ``patience`` epochs,
    and the weights of the epoch with the lowest validation loss are kept: on a CPU that saves
    most of the source's 128 epochs, which would mostly over-fit a few hundred photos.

    Args:
        classifier: from :func:`build_classifier` (its weights are changed).
        train_set, valid_set: from :func:`split_each_label`; photos are read once at the
            classifier's input size (broken ones skipped with a warning).
        epochs: most epochs for the head (base frozen).
        fine_tune_epochs: most epochs with the top ``fine_tune_layers`` layers of the base
            trainable as well (0 skips fine-tuning).
        learning_rate, momentum, head_learn_rate_factor: see :class:`Trainer`.
        batch_size: photos per step.
        patience: epochs without a better validation loss before a phase stops.
        augment: ``"default"`` (:func:`augmenter`), any Keras layer, or ``None``.
        seed: seeds the shuffling, augmentation and dropout (default ``settings.seed``).
        callbacks: Keras callbacks; their ``on_epoch_end(epoch, logs)`` gets ``loss``,
            ``accuracy``, ``val_loss``, ``val_accuracy`` and ``phase`` (e.g.
            :class:`course_lib.plots.TrainingProgressPlot`).
        verbose: show a progress line.

    Returns:
        A :class:`TrainingHistory`.
    """
    for name, value, low in (("epochs", epochs, 1), ("fine_tune_epochs", fine_tune_epochs, 0),
                             ("batch_size", batch_size, 1), ("patience", patience, 1)):  # fmt: skip
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"{name} must be a whole number >= {low}, got {value!r}.")
    if tuple(train_set.class_names) != tuple(classifier.class_names):
        raise ValueError(
            f"The classifier's classes {list(classifier.class_names)} differ from the data's "
            f"{list(train_set.class_names)}; build it with build_classifier(backbone, train_set.class_names)."
        )
    seed = config.settings.seed if seed is None else int(seed)
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    started, cpu_started = time.perf_counter(), time.process_time()
    augment_layer = augmenter(seed=seed) if isinstance(augment, str) and augment == "default" else augment
    if isinstance(augment_layer, str):
        raise ValueError(f"augment must be 'default', a Keras layer or None, got {augment!r}.")
    # Built before the photos are read, so a bad learning rate fails at once, not after reading them.
    trainer = Trainer(classifier, learning_rate=learning_rate, momentum=momentum,
                      head_learn_rate_factor=head_learn_rate_factor, augment=augment_layer)  # fmt: skip
    train_pixels, train_set = read_images(train_set, classifier.input_size)
    valid_pixels, valid_set = read_images(valid_set, classifier.input_size)
    history = TrainingHistory(train_count=len(train_set), valid_count=len(valid_set))
    callbacks = list(callbacks)
    for callback in callbacks:
        callback.on_train_begin({})
    progress = Progress(epochs + fine_tune_epochs, "training", enabled=verbose)
    best = {"loss": np.inf, "weights": None}

    def run_phase(phase: str, max_epochs: int, train_epoch, validate) -> None:
        waited = 0
        for _ in range(max_epochs):
            order = rng.permutation(len(train_pixels))
            losses, accuracies, sizes = [], [], []
            for start in range(0, len(order), batch_size):
                batch = order[start:start + batch_size]
                loss, accuracy = train_epoch(train_pixels[batch], train_set.labels[batch])
                losses.append(loss), accuracies.append(accuracy), sizes.append(len(batch))
            val_logits = validate()
            record = {
                "epoch": len(history.epochs) + 1, "phase": phase,
                "loss": float(np.average(losses, weights=sizes)), "accuracy": float(np.average(accuracies, weights=sizes)),
                "val_loss": _cross_entropy(val_logits, valid_set.labels), "val_accuracy": _accuracy(val_logits, valid_set.labels),
            }  # fmt: skip
            history.epochs.append(record)
            for callback in callbacks:
                callback.on_epoch_end(record["epoch"] - 1, dict(record))
            progress.update(len(history.epochs), f"{phase}: loss {record['loss']:.3f}, val acc {record['val_accuracy']:.1%}")
            if record["val_loss"] < best["loss"]:
                best.update(loss=record["val_loss"], weights=classifier.model.get_weights())
                history.best_epoch = record["epoch"]
                waited = 0
            else:
                waited += 1
                if waited >= patience:
                    history.stopped_early = True
                    break
        if best["weights"] is None:  # NaN/inf is never "better", so no epoch was ever kept
            raise ValueError(
                f"Training diverged: the validation loss is {history.epochs[-1]['val_loss']} after "
                f"{len(history.epochs)} epoch(s), so no usable weights were kept. Lower the learning rate "
                f"(the source uses {LEARNING_RATE:g}) and train a freshly built classifier."
            )
        classifier.model.set_weights(best["weights"])

    # Phase 1: the base is frozen, so it computes each augmented batch's features once and only
    # the head takes a gradient step; validation features do not change and are computed once.
    unfreeze_top(classifier, 0)
    valid_features = np.concatenate(
        [trainer.features(valid_pixels[i:i + 64]) for i in range(0, len(valid_pixels), 64)]
    )  # fmt: skip
    run_phase(
        "head", epochs,
        lambda batch, labels: trainer.train_head_batch(trainer.features(batch, training=True), labels),
        lambda: trainer.head_logits(valid_features),
    )  # fmt: skip
    if fine_tune_epochs:
        unfreeze_top(classifier, fine_tune_layers)
        run_phase("fine-tune", fine_tune_epochs, trainer.train_batch, lambda: trainer.logits(valid_pixels))
        unfreeze_top(classifier, 0)
    history.seconds = time.perf_counter() - started
    history.cpu_seconds = time.process_time() - cpu_started
    progress.close(history.summary())
    for callback in callbacks:
        callback.on_train_end({"best_epoch": history.best_epoch})
    return history


# ---------------------------------------------------------------------------------------------
# Saving and loading ("always save after training", says the source)
# ---------------------------------------------------------------------------------------------


def default_model_path() -> Path:
    """Where the course keeps its trained classifier: ``data/models/pets_classifier.keras`` (git-ignored)."""
    return config.settings.models_dir / DEFAULT_MODEL_FILE


def save_classifier(
    classifier: Classifier, path: str | os.PathLike | None = None, *, trained_on: LabeledImages | None = None
) -> Path:
    """Save a classifier and its class names in one ``.keras`` file, atomically.

    The file is a normal Keras model file (``keras.models.load_model`` opens it) with one extra
    entry, ``course_classifier.json``: the class names, the input size and, if given, the
    ``class/file`` names of the training photos (so an evaluation can leave them out). It is
    written beside the target and renamed only when complete, so a crash never leaves half a model.

    Args:
        classifier: the classifier to save.
        path: a ``.keras`` file; default :func:`default_model_path`.
        trained_on: the training photos, recorded by name.

    Returns:
        The path written.
    """
    target = default_model_path() if path is None else Path(path).expanduser()
    if target.suffix != ".keras":
        raise ValueError(f"Save the classifier to a file ending in .keras, got {target.name!r}.")
    metadata = {
        "format": 1,
        "class_names": list(classifier.class_names),
        "input_size": int(classifier.input_size),
        "head_layer": HEAD_LAYER,
        "head_outputs": "logits",
        "training_files": trained_on.relative_names() if trained_on is not None else None,
    }
    with files.atomic_path(target, suffix=".keras") as temporary:
        classifier.model.save(temporary)
        with zipfile.ZipFile(temporary, "a") as archive:
            archive.writestr(METADATA_ENTRY, json.dumps(metadata, indent=1))
    return target


def classifier_info(path: str | os.PathLike | None = None) -> dict:
    """The course's metadata stored in a saved classifier (class names, input size, training files)."""
    source = default_model_path() if path is None else Path(path).expanduser()
    if not source.is_file():
        raise FileNotFoundError(
            f"No saved classifier at {source}. Train one first (lesson 07, or "
            "`python -m course_lib train --data DIR -o MODEL.keras`)."
        )
    try:
        with zipfile.ZipFile(source) as archive:
            return json.loads(archive.read(METADATA_ENTRY))
    except zipfile.BadZipFile:
        raise ValueError(f"{source} is not a Keras .keras file (not a zip archive); was it saved by save_classifier?") from None
    except KeyError:
        raise ValueError(
            f"{source} is a Keras model without the course's class names; save it with "
            "transfer.save_classifier(classifier, path) so the class names travel with it."
        ) from None


def load_classifier(path: str | os.PathLike | None = None) -> Classifier:
    """Load a classifier saved by :func:`save_classifier`, with its class names.

    Args:
        path: the ``.keras`` file; default :func:`default_model_path`.

    Returns:
        A :class:`~course_lib.models.Classifier` that predicts exactly as the saved one did.
    """
    source = default_model_path() if path is None else Path(path).expanduser()
    info = classifier_info(source)
    model = keras.models.load_model(source, compile=False)
    if model.output_shape[-1] != len(info["class_names"]):
        raise ValueError(f"{source}: the model has {model.output_shape[-1]} outputs but {len(info['class_names'])} class names.")
    return Classifier(model, tuple(info["class_names"]), int(info["input_size"]))


def unseen(dataset: LabeledImages, trained_on: Mapping | LabeledImages | Iterable[str] | None) -> LabeledImages:
    """The photos of ``dataset`` a classifier was NOT trained on: the only fair ones to judge it by.

    A saved classifier may come from another split than the one rebuilt now (another
    ``max_per_class`` or seed permutes other photos), so "the validation part of the same seed"
    is no guarantee. :func:`save_classifier` records the training photos by ``class/file`` name;
    this leaves them out. The ``evaluate`` command and lesson 08 both use it.

    Args:
        dataset: the photos to evaluate on.
        trained_on: what the classifier was trained on: the dict of :func:`classifier_info`
            (its ``training_files``), the training :class:`LabeledImages`, or ``class/file``
            names. ``None`` (or a file that recorded nothing) leaves ``dataset`` unchanged.

    Returns:
        The photos of ``dataset`` whose ``class/file`` name is not among the training photos.

    Raises:
        ValueError: every photo of ``dataset`` was trained on, so none is left to judge by.

    Example:
        >>> fair = transfer.unseen(valid_set, transfer.classifier_info(path))
        >>> print(f"{len(valid_set) - len(fair)} photos left out: trained on")
    """
    if isinstance(trained_on, LabeledImages):
        names = set(trained_on.relative_names())
    elif isinstance(trained_on, Mapping):
        names = set(trained_on.get("training_files") or [])
    elif isinstance(trained_on, str):
        raise ValueError(
            f"trained_on must be classifier_info(path), the training LabeledImages or a list of 'class/file' "
            f"names, got the single string {trained_on!r}; wrap one name in a list."
        )
    else:
        names = set(trained_on or [])
    if not names:
        return dataset
    keep = [i for i, name in enumerate(dataset.relative_names()) if name not in names]
    if not keep:
        raise ValueError(
            f"Every one of the {len(dataset)} photos in {dataset.root} was used to train this classifier, so "
            "none is left to judge it fairly. Evaluate on other photos (the evaluate command's "
            "--include-training counts them anyway, with an inflated accuracy)."
        )
    return dataset.subset(keep)


# ---------------------------------------------------------------------------------------------
# Evaluation: confusion matrix, per-class accuracy, misclassified photos
# ---------------------------------------------------------------------------------------------


def confusion_matrix(true_labels: Sequence[int], predicted_labels: Sequence[int], num_classes: int) -> np.ndarray:
    """Counts of (true class, predicted class): row = true class, column = prediction (``confusionmat``).

    Example:
        >>> confusion_matrix([0, 0, 1], [0, 1, 1], 2)
        array([[1, 1],
               [0, 1]])
    """
    true_labels = np.asarray(true_labels, dtype=int)
    predicted_labels = np.asarray(predicted_labels, dtype=int)
    if true_labels.shape != predicted_labels.shape:
        raise ValueError(f"{len(true_labels)} true labels but {len(predicted_labels)} predictions; they must pair up.")
    for labels in (true_labels, predicted_labels):
        if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
            raise ValueError(f"Labels must be class indices 0..{num_classes - 1}, got {labels.min()}..{labels.max()}.")
    return np.bincount(true_labels * num_classes + predicted_labels, minlength=num_classes**2).reshape(num_classes, num_classes)


@dataclass(frozen=True)
class Evaluation:
    """Predictions of a classifier on labelled photos, and what they add up to.

    Attributes:
        class_names: the classifier's classes (rows and columns of ``confusion``).
        files: the photos evaluated.
        true_labels, predicted_labels: class indices into ``class_names``.
        probabilities: (N, classes) softmax outputs.
        confusion: rows = true class, columns = predicted class.
    """

    class_names: tuple[str, ...]
    files: tuple[Path, ...]
    true_labels: np.ndarray = field(repr=False)
    predicted_labels: np.ndarray = field(repr=False)
    probabilities: np.ndarray = field(repr=False)
    confusion: np.ndarray = field(repr=False)

    @property
    def accuracy(self) -> float:
        """Share of photos whose predicted class is the true one."""
        return float(np.mean(self.true_labels == self.predicted_labels))

    def per_class_accuracy(self) -> dict[str, float]:
        """Accuracy for each class that has photos here (recall: correct / photos of that class)."""
        totals = self.confusion.sum(axis=1)
        return {name: float(self.confusion[i, i] / totals[i]) for i, name in enumerate(self.class_names) if totals[i]}

    def misclassified(self) -> list[tuple[Path, str, str, float]]:
        """``(photo, true class, predicted class, probability of the prediction)``, most confident first."""
        wrong = np.flatnonzero(self.true_labels != self.predicted_labels)
        confidence = self.probabilities[wrong, self.predicted_labels[wrong]]
        return [
            (self.files[i], self.class_names[self.true_labels[i]], self.class_names[self.predicted_labels[i]], float(p))
            for i, p in sorted(zip(wrong, confidence), key=lambda pair: -pair[1])
        ]

    def report(self) -> str:
        """Accuracy, per-class accuracy and the confusion matrix as text (the command line prints it)."""
        present = [i for i, total in enumerate(self.confusion.sum(axis=1)) if total] or list(range(len(self.class_names)))
        width = max(len(self.class_names[i]) for i in present)
        lines = [f"accuracy: {self.accuracy:.1%} ({int(np.trace(self.confusion))} of {len(self.files)} photos)", "",
                 "per-class accuracy:"]  # fmt: skip
        for name, value in self.per_class_accuracy().items():
            lines.append(f"  {name:<{width}}  {value:6.1%}")
        columns = sorted(set(present) | set(np.unique(self.predicted_labels).tolist()))
        lines += ["", "confusion matrix (rows: true class, columns: predicted class):"]
        lines.append(" " * (width + 2) + " ".join(f"{j:>4}" for j in range(len(columns))))
        for i in present:
            lines.append(f"{self.class_names[i]:<{width}}  " + " ".join(f"{self.confusion[i, j]:>4}" for j in columns))
        lines.append("columns: " + ", ".join(f"{k}={self.class_names[j]}" for k, j in enumerate(columns)))
        return "\n".join(lines)

    def to_json(self) -> dict:
        """The figures as plain JSON-able values."""
        return {
            "accuracy": self.accuracy,
            "count": len(self.files),
            "class_names": list(self.class_names),
            "per_class_accuracy": self.per_class_accuracy(),
            "confusion_matrix": self.confusion.tolist(),
            "misclassified": [
                {"file": str(path), "true": true, "predicted": predicted, "probability": round(p, 4)}
                for path, true, predicted, p in self.misclassified()
            ],
        }


def match_classes(classifier: Classifier, class_names: Sequence[str]) -> np.ndarray:
    """For each data class name, the classifier's output unit of that class, matched BY NAME.

    A folder may list its classes in any order (or be a subset): ``cat`` is compared with
    ``cat``, never "the first folder with the first output".

    Raises:
        ValueError: a data class the classifier does not know, naming it and the known classes.
    """
    return np.asarray([classifier.class_index(name) for name in class_names], dtype=int)


def predict_probabilities(classifier: Classifier, pixels: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Class probabilities for uint8 images already at the classifier's input size."""
    compiled = tf.function(classifier.model, reduce_retracing=True)
    return np.concatenate(
        [compiled(images.to_model_range(pixels[i:i + batch_size]), training=False).numpy()
         for i in range(0, len(pixels), batch_size)]
    )  # fmt: skip


def evaluate(classifier: Classifier, dataset: LabeledImages, *, batch_size: int = 64) -> Evaluation:
    """Classify every photo of ``dataset`` and compare with its folder's class (by name).

    Like the source's ``classify(netTransfer, augimdsValidation)`` + ``confusionmat``: photos are
    resized to the classifier's input size, not augmented. Unreadable photos are skipped with a
    warning naming them.

    Args:
        classifier: any :class:`~course_lib.models.Classifier` (trained here or loaded).
        dataset: labelled photos, e.g. the validation part of :func:`split_each_label`; its
            folder's classes may come in any order.

    Returns:
        An :class:`Evaluation`.

    Example:
        >>> result = evaluate(load_classifier(), valid_set)
        >>> print(result.report())
    """
    to_model_class = match_classes(classifier, dataset.class_names)
    pixels, readable = read_images(dataset, classifier.input_size)
    probabilities = predict_probabilities(classifier, pixels, batch_size=batch_size)
    true_labels = to_model_class[readable.labels]
    predicted = probabilities.argmax(axis=1)
    return Evaluation(
        class_names=tuple(classifier.class_names),
        files=readable.files,
        true_labels=true_labels,
        predicted_labels=predicted,
        probabilities=probabilities,
        confusion=confusion_matrix(true_labels, predicted, len(classifier.class_names)),
    )


def show_misclassified(
    evaluation: Evaluation, *, max_images: int = 12, columns: int | None = None
) -> matplotlib.figure.Figure | None:
    """A gallery of wrongly classified photos, titled with the true and the predicted class.

    Returns:
        The Matplotlib figure (``None`` and a printed note if nothing was misclassified).
    """
    wrong = evaluation.misclassified()[: max(int(max_images), 1)]
    if not wrong:
        print("No photo was misclassified.")
        return None
    photos = [images.load(path, max_dim=200) for path, *_ in wrong]
    titles = [f"true: {true}\npredicted: {predicted} ({p:.0%})" for _, true, predicted, p in wrong]
    return images.show_grid(photos, titles, columns=columns or min(4, len(photos)))
