"""The classifier of lessons 07-09: a copy of a pretrained backbone with a new head, saved and loaded.

The source (MATLAB) takes GoogLeNet and replaces its last fully connected layer by ``new_fc``,
one unit per class (``replaceLayer``), then "always saves" the trained network. This module:

- :func:`build_classifier`: a copy of a pretrained backbone (:func:`frozen_copy`) + pooling +
  ``new_fc`` + softmax (:func:`add_head`, the source's ``replaceLayer``).
- :func:`unfreeze_top`, :func:`base_model`: which backbone layers may learn while fine-tuning.
- :func:`save_classifier`, :func:`load_classifier`, :func:`classifier_info`: one atomic ``.keras``
  file that keeps the class names and the names of the training photos.
- :func:`predict_probabilities`: class probabilities for a batch of photos.

The classifier is a :class:`course_lib.models.Classifier` (model, class names, input size), the
same contract as the embedded ``models.dog_breed_classifier()``, so lesson 09 takes either.

**``new_fc`` outputs logits.** Unlike the embedded model's ``dense`` layer (softmax folded in),
``new_fc`` here is a plain linear layer followed by a separate ``Softmax`` layer named ``prob``,
exactly like MATLAB's ``new_fc`` -> ``prob`` -> ``new_classoutput``. The source's ``deepDreamImage``
maximises channels of layer 142, which is ``new_fc``: the class *scores* before the softmax.

Training is :mod:`course_lib.training`; judging is :mod:`course_lib.metrics`.
"""
from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from course_lib import config, files, images, validate
from course_lib.data import check_input_size
from course_lib.models import DOG_MODEL_INPUT_SIZE, Backbone, Classifier, backbone as load_backbone

if TYPE_CHECKING:
    from course_lib.data import LabeledImages

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

#: Name of the new final layer (the source's ``'Name','new_fc'``); it outputs logits.
HEAD_LAYER = "new_fc"
#: Name of the softmax after it (MATLAB's ``prob``).
SOFTMAX_LAYER = "prob"

#: The extra entry :func:`save_classifier` adds to the ``.keras`` zip: class names and how it was trained.
METADATA_ENTRY = "course_classifier.json"
#: File name of the course's trained classifier in ``settings.models_dir``.
DEFAULT_MODEL_FILE = "pets_classifier.keras"


def frozen_copy(backbone: Backbone | str) -> keras.Model:
    """A frozen copy of a pretrained backbone: the part of the classifier that already knows photos.

    The copy (``clone_model`` + the same weights) means training never changes the shared
    backbone that other lessons dream with. All its layers start frozen (``trainable = False``);
    :func:`unfreeze_top` lets the top ones learn for fine-tuning.

    Args:
        backbone: a :class:`~course_lib.models.Backbone` or its name (``"dog_breeds"``, ``"auto"``...).
    """
    chosen = load_backbone(backbone, verbose=False) if isinstance(backbone, str) else backbone
    if not isinstance(chosen, Backbone):
        raise ValueError(f"backbone must be a models.Backbone or a backbone name, got {type(backbone).__name__}.")
    base = keras.models.clone_model(chosen.model)
    base.set_weights(chosen.model.get_weights())
    base.trainable = False
    return base


def add_head(base: keras.Model, num_classes: int, *, dropout_rate: float = 0.2) -> keras.Model:
    """MATLAB's ``replaceLayer``: the backbone's features, then a new final layer ``new_fc`` and a softmax.

    ``image -> base (inference mode) -> avg_pool -> dropout -> new_fc (logits) -> prob (softmax)``.
    The base runs with ``training=False`` so its batch-norm statistics stay the pretrained ones
    even while its weights are fine-tuned (Keras' transfer-learning guide). ``new_fc`` is linear
    and starts at zero, so before training every class gets 1/N. Lesson 07's student writes this.

    Args:
        base: the backbone's feature model, e.g. :func:`frozen_copy`; maps images to feature maps.
        num_classes: units of ``new_fc``, one per class.
        dropout_rate: share of pooled features dropped while training (0 turns it off).

    Returns:
        A ``keras.Model`` from images in [-1, 1] (any size) to class probabilities.
    """
    num_classes = validate.whole_number("num_classes", num_classes, low=2, example=9)
    dropout_rate = validate.number("dropout_rate", dropout_rate, low=0.0, high=1.0, high_open=True, example=0.2)
    inputs = keras.Input(shape=(None, None, 3), name="image")
    features = base(inputs, training=False)
    pooled = keras.layers.GlobalAveragePooling2D(name="avg_pool")(features)
    dropped = keras.layers.Dropout(float(dropout_rate), name="dropout")(pooled)
    # Zero weights: the new layer starts out knowing nothing (every class 1/N, loss ln N) instead of
    # with random scores on 1000+ large features, so the first epochs go to learning, not unlearning.
    logits = keras.layers.Dense(num_classes, kernel_initializer="zeros", name=HEAD_LAYER)(dropped)
    probabilities = keras.layers.Softmax(name=SOFTMAX_LAYER)(logits)
    return keras.Model(inputs, probabilities, name=f"{base.name}_transfer")


def build_classifier(
    backbone: Backbone | str,
    class_names: Sequence[str],
    *,
    input_size: int = DOG_MODEL_INPUT_SIZE,
    dropout_rate: float = 0.2,
    head: Callable[[keras.Model, int], keras.Model] | None = None,
) -> Classifier:
    """A pretrained backbone with a new final layer ``new_fc`` for ``class_names``.

    The source replaces GoogLeNet's last fully connected layer; here the backbone has no head, so
    the new head is global average pooling, dropout, ``new_fc`` (linear: it outputs logits, one
    per class) and a softmax layer ``prob`` (:func:`add_head`), on a frozen copy of the backbone
    (:func:`frozen_copy`). :class:`~course_lib.training.Trainer` unfreezes the top layers for fine-tuning.

    Args:
        backbone: a :class:`~course_lib.models.Backbone` or its name (``"dog_breeds"``, ``"auto"``...).
        class_names: one name per class, in output order (e.g. ``dataset.class_names``).
        input_size: the square side the classifier is trained at (the embedded model's 160 px).
        dropout_rate: share of pooled features dropped while training (0 turns it off).
        head: builds the model from ``(base, num_classes)`` instead of :func:`add_head` (lesson 07
            passes the student's own); it must keep the layer names ``avg_pool``, ``dropout``,
            ``new_fc`` and ``prob``, which training relies on.

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
    input_size = check_input_size(input_size)
    if input_size < chosen.min_size:
        raise ValueError(f"input_size {input_size} is too small for {chosen.name}; use at least {chosen.min_size}.")
    dropout_rate = validate.number("dropout_rate", dropout_rate, low=0.0, high=1.0, high_open=True, example=0.2)
    base = frozen_copy(chosen)
    if head is None:
        model = add_head(base, len(names), dropout_rate=dropout_rate)
    else:
        model = head(base, len(names))
        _check_head_model(model, len(names))
        if isinstance(model, keras.Sequential):  # the same layers as a functional model: `model.input` works
            model = keras.Model(model.inputs, model.outputs, name=model.name)
    return Classifier(model, names, input_size)


def _check_head_model(model: keras.Model, num_classes: int) -> None:
    """A model from a custom ``head`` must have the layers training relies on, named as add_head names them."""
    if not isinstance(model, keras.Model):
        raise ValueError(f"head(base, num_classes) must return a keras.Model, got {type(model).__name__}.")
    try:
        model.inputs  # noqa: B018 - a model that was never built has none
    except (AttributeError, ValueError):
        raise ValueError("The head model was never built: start it from keras.Input(shape=(None, None, 3)).") from None
    present = {layer.name for layer in model.layers}
    missing = [name for name in ("avg_pool", "dropout", HEAD_LAYER, SOFTMAX_LAYER) if name not in present]
    if missing:
        raise ValueError(f"The head model has no layer named {', '.join(missing)}; training finds the layers by these names.")
    if model.get_layer(HEAD_LAYER).units != num_classes:
        raise ValueError(f"new_fc has {model.get_layer(HEAD_LAYER).units} units; it needs one per class, {num_classes}.")


def base_model(classifier: Classifier) -> keras.Model:
    """The (copied) backbone inside a classifier built by :func:`build_classifier`."""
    nested = [layer for layer in classifier.model.layers if isinstance(layer, keras.Model)]
    if len(nested) != 1:
        raise ValueError("This classifier was not built by classifiers.build_classifier (no single backbone inside it).")
    return nested[0]


def unfreeze_top(classifier: Classifier, layers: int) -> int:
    """Make the top ``layers`` layers of the backbone trainable (batch-norm layers stay frozen).

    Returns:
        How many weight tensors of the backbone are now trainable.
    """
    layers = validate.whole_number("layers", layers, low=0, example=30)
    base = base_model(classifier)
    base.trainable = True
    cut = len(base.layers) - int(layers)
    for position, layer in enumerate(base.layers):
        layer.trainable = position >= cut and not isinstance(layer, keras.layers.BatchNormalization)
    if layers == 0:
        base.trainable = False
    return len(base.trainable_weights)


def default_model_path() -> Path:
    """Where the course keeps its trained classifier: ``data/models/pets_classifier.keras`` (git-ignored)."""
    return config.settings.models_dir / DEFAULT_MODEL_FILE


def save_classifier(
    classifier: Classifier,
    path: str | os.PathLike | None = None,
    *,
    trained_on: LabeledImages | None = None,
    validated_on: LabeledImages | None = None,
) -> Path:
    """Save a classifier and its class names in one ``.keras`` file, atomically.

    The file is a normal Keras model file (``keras.models.load_model`` opens it) with one extra
    entry, ``course_classifier.json``: the class names, the input size and, if given, the
    ``class/file`` names of the training photos and of the validation photos that chose the
    kept epoch (so an evaluation can leave both out: :func:`course_lib.metrics.unseen`). It is
    written beside the target and renamed only when complete, so a crash never leaves half a model.

    Args:
        classifier: the classifier to save.
        path: a ``.keras`` file; default :func:`default_model_path`.
        trained_on: the training photos, recorded by name.
        validated_on: the validation photos early stopping looked at, recorded by name.

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
        "validation_files": validated_on.relative_names() if validated_on is not None else None,
    }
    with files.atomic_path(target, suffix=".keras") as temporary:
        classifier.model.save(temporary)
        with zipfile.ZipFile(temporary, "a") as archive:
            archive.writestr(METADATA_ENTRY, json.dumps(metadata, indent=1))
    return target


def classifier_info(path: str | os.PathLike | None = None) -> dict:
    """The course's metadata stored in a saved classifier (class names, input size, training and validation files)."""
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
            "classifiers.save_classifier(classifier, path) so the class names travel with it."
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


def predict_probabilities(classifier: Classifier, pixels: np.ndarray, *, batch_size: int = 64) -> np.ndarray:
    """Class probabilities for uint8 images already at the classifier's input size."""
    compiled = tf.function(classifier.model, reduce_retracing=True)
    return np.concatenate(
        [compiled(images.to_model_range(pixels[i:i + batch_size]), training=False).numpy()
         for i in range(0, len(pixels), batch_size)]
    )  # fmt: skip
