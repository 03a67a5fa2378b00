"""Training the classifier of lessons 07-09, as the source's ``trainNetwork`` does, on a CPU.

- :func:`augmenter`: the source's ``imageDataAugmenter`` (random x-reflection, +-30 px
  translation, 0.9-1.1 scale) as Keras preprocessing layers.
- :func:`two_rate_step`: one training step in which ``new_fc`` learns 10x faster than the
  backbone (two optimizers, one gradient), as MATLAB's ``WeightLearnRateFactor``/``BiasLearnRateFactor`` do.
- :class:`Trainer`: those steps, compiled, on augmented batches or on the frozen base's features.
- :func:`train_classifier`: the head first with the backbone frozen, then optionally the top of
  the backbone; early stopping on the validation loss instead of 128 epochs; live callbacks
  (:class:`course_lib.plots.TrainingProgressPlot`).
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from course_lib import validate
from course_lib.classifiers import HEAD_LAYER, base_model, unfreeze_top
from course_lib.data import LabeledImages, read_images
from course_lib.models import Classifier
from course_lib.progress import Progress

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

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
    seed = validate.seed(seed)
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


#: What a training step is given and returns (see :func:`two_rate_step`).
Step = Callable[..., tuple]


def two_rate_step(model, images, labels, head_variables, base_variables, head_optimizer, base_optimizer):
    """One training step in which the head and the base learn at their own rates: one gradient, two optimizers.

    MATLAB's ``WeightLearnRateFactor = 10`` multiplies ``new_fc``'s learning rate; Keras has one
    learning rate per optimizer, so ``head_optimizer`` (10x) updates ``new_fc`` and
    ``base_optimizer`` (1x) the trainable base. Lesson 07's student writes this step.

    Args:
        model: maps a batch of images (already in [-1, 1]) to logits (the output of ``new_fc``).
        images, labels: the batch and its class indices.
        head_variables, base_variables: the weights of ``new_fc``, and the trainable base weights
            (an empty list while the base is frozen).
        head_optimizer, base_optimizer: Keras optimizers, the head's at 10x the base's rate.

    Returns:
        ``(loss, logits)``: the batch's mean cross-entropy before the step, and the logits.
    """
    head_variables, base_variables = list(head_variables), list(base_variables)
    with tf.GradientTape() as tape:
        logits = model(images, training=True)  # training=True: dropout is on
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    gradients = tape.gradient(loss, head_variables + base_variables)
    head_optimizer.apply(gradients[: len(head_variables)], head_variables)
    if base_variables:
        base_optimizer.apply(gradients[len(head_variables):], base_variables)
    return loss, logits


def update_per_gradient(variables: list, before: list, gradients: list) -> list[float]:
    """For each variable, how far one plain-SGD step moved it per unit of gradient: its learning rate.

    The median of ``(before - after) / gradient`` over the 10% largest gradients (well above
    float32 round-off). Only meaningful for SGD without momentum, where ``update = rate * gradient``.
    """
    rates = []
    for variable, old, gradient in zip(variables, before, gradients):
        gradient = np.asarray(gradient)
        strong = np.abs(gradient) >= np.quantile(np.abs(gradient), 0.9)
        rates.append(float(np.median((np.asarray(old) - np.asarray(variable))[strong] / gradient[strong])))
    return rates


class Trainer:
    """Training steps in which ``new_fc`` learns ``head_learn_rate_factor`` times faster than the base.

    MATLAB multiplies the global learning rate by a layer's ``WeightLearnRateFactor``. Keras has
    one learning rate per optimizer, so the trainer keeps two SGD-with-momentum optimizers: one
    at ``learning_rate`` for the backbone's trainable weights, one at ``learning_rate * factor``
    for the weights and bias of ``new_fc``. Each step (:func:`two_rate_step`, or the one given)
    computes one gradient and lets each optimizer update its own variables.

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
        step: the training step, with :func:`two_rate_step`'s arguments and result (default that
            function); it runs compiled (``tf.function``).
    """

    def __init__(
        self,
        classifier: Classifier,
        *,
        learning_rate: float = LEARNING_RATE,
        momentum: float = MOMENTUM,
        head_learn_rate_factor: float = HEAD_LEARN_RATE_FACTOR,
        augment: keras.Layer | None = None,
        step: Step | None = None,
    ):
        learning_rate = validate.positive_number("learning_rate", learning_rate, example=LEARNING_RATE)
        head_learn_rate_factor = validate.positive_number("head_learn_rate_factor", head_learn_rate_factor, example=10)
        momentum = validate.number("momentum", momentum, low=0.0, high=1.0, high_open=True, example=MOMENTUM)
        if step is not None and not callable(step):
            raise ValueError(f"step must be a function like training.two_rate_step, got {type(step).__name__}.")
        self.classifier = classifier
        self.learning_rate = float(learning_rate)
        self.head_learning_rate = float(learning_rate) * float(head_learn_rate_factor)
        self.augment = augment
        self.step = two_rate_step if step is None else step
        model = classifier.model
        self._base = base_model(classifier)
        self._head = model.get_layer(HEAD_LAYER)
        self._dropout = model.get_layer("dropout")
        self._pool = model.get_layer("avg_pool")
        self._logits_model = keras.Model(model.input, self._head.output)
        self.base_optimizer = keras.optimizers.SGD(self.learning_rate, momentum=momentum)
        self.head_optimizer = keras.optimizers.SGD(self.head_learning_rate, momentum=momentum)
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
            @tf.function(reduce_retracing=True, autograph=False)
            def compute(images_batch):
                return self._pool(self._base(self._to_model_range(images_batch, training), training=False))
            self._steps[key] = compute
        return self._steps[key](tf.convert_to_tensor(batch))

    def train_head_batch(self, features: np.ndarray | tf.Tensor, labels: np.ndarray) -> tuple[float, float]:
        """One step on the head alone, from pooled features. Returns (loss, accuracy) of the batch."""
        if "head" not in self._steps:
            pooled = keras.Input(shape=(int(self._pool.output.shape[-1]),), name="pooled_features")
            head_model = keras.Model(pooled, self._head(self._dropout(pooled)))  # the same layers: shared weights
            variables = self.head_variables

            @tf.function(reduce_retracing=True, autograph=False)
            def step(features_batch, label_batch):
                return self.step(head_model, features_batch, label_batch, variables, [],
                                 self.head_optimizer, self.base_optimizer)  # fmt: skip
            self._steps["head"] = step
        loss, logits = self._steps["head"](tf.convert_to_tensor(features), tf.convert_to_tensor(labels))
        return float(loss), _accuracy(logits, labels)

    def train_batch(self, batch: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        """One step on the whole model: ``new_fc`` at 10x, the trainable base at 1x."""
        head_variables, base_variables = self.head_variables, self.base_variables
        key = ("full", tuple(v.path for v in base_variables))
        if key not in self._steps:
            @tf.function(reduce_retracing=True, autograph=False)
            def step(images_batch, label_batch):
                return self.step(self._logits_model, self._to_model_range(images_batch, True), label_batch,
                                 head_variables, base_variables, self.head_optimizer, self.base_optimizer)  # fmt: skip
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
                lambda x: self._logits_model(self._to_model_range(x, False), training=False),
                reduce_retracing=True, autograph=False,
            )  # fmt: skip
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
        head_weights: the classifier's weights when the fine-tuning phase began (the kept epoch of the
            head phase), so that fine-tuning can be redone another way from the same start; ``None``
            if there was no head phase.
    """

    epochs: list[dict] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    train_count: int = 0
    valid_count: int = 0
    head_weights: list | None = field(default=None, repr=False)

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
    step: Step | None = None,
) -> TrainingHistory:
    """Train ``classifier`` in place: the head with the base frozen, then optionally the top of the base.

    Each phase stops early when the validation loss has not improved for ``patience`` epochs,
    and the weights of the epoch with the lowest validation loss are kept: on a CPU that saves
    most of the source's 128 epochs, which would mostly over-fit a few hundred photos.

    Args:
        classifier: from :func:`build_classifier` (its weights are changed).
        train_set, valid_set: from :func:`split_each_label`; photos are read once at the
            classifier's input size (broken ones skipped with a warning).
        epochs: most epochs for the head (base frozen); 0 skips this phase (a classifier whose
            head is already trained, e.g. with ``history.head_weights`` of an earlier run).
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
        step: the training step, e.g. lesson 07's student's own (default :func:`two_rate_step`).

    Returns:
        A :class:`TrainingHistory`.
    """
    epochs = validate.whole_number("epochs", epochs, low=0, example=20)
    fine_tune_epochs = validate.whole_number("fine_tune_epochs", fine_tune_epochs, low=0, example=5)
    if epochs == 0 and fine_tune_epochs == 0:
        raise ValueError("epochs and fine_tune_epochs are both 0: nothing to train. Give the head some epochs, e.g. epochs=20.")
    batch_size = validate.whole_number("batch_size", batch_size, low=1, example=32)
    patience = validate.whole_number("patience", patience, low=1, example=4)
    if tuple(train_set.class_names) != tuple(classifier.class_names):
        raise ValueError(
            f"The classifier's classes {list(classifier.class_names)} differ from the data's "
            f"{list(train_set.class_names)}; build it with build_classifier(backbone, train_set.class_names)."
        )
    seed = validate.seed(seed)
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    started, cpu_started = time.perf_counter(), time.process_time()
    augment_layer = augmenter(seed=seed) if isinstance(augment, str) and augment == "default" else augment
    if isinstance(augment_layer, str):
        raise ValueError(f"augment must be 'default', a Keras layer or None, got {augment!r}.")
    # Built before the photos are read, so a bad learning rate fails at once, not after reading them.
    trainer = Trainer(classifier, learning_rate=learning_rate, momentum=momentum,
                      head_learn_rate_factor=head_learn_rate_factor, augment=augment_layer, step=step)  # fmt: skip
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
                loss, accuracy = train_epoch(train_pixels[batch], train_set.labels[batch], batch)
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
    # the head takes a gradient step (the step sees a model from pooled features to logits, and
    # no base variables); validation features do not change and are computed once.
    unfreeze_top(classifier, 0)
    if epochs:
        valid_features = np.concatenate(
            [trainer.features(valid_pixels[i:i + 64]) for i in range(0, len(valid_pixels), 64)]
        )  # fmt: skip
        # Without augmentation the photos are the same every epoch, so their features are too: computed once.
        train_features = None if augment_layer is not None else np.concatenate(
            [trainer.features(train_pixels[i:i + 64]) for i in range(0, len(train_pixels), 64)]
        )  # fmt: skip

        def head_batch(pixels, labels, rows):
            features = trainer.features(pixels, training=True) if train_features is None else train_features[rows]
            return trainer.train_head_batch(features, labels)

        run_phase("head", epochs, head_batch, lambda: trainer.head_logits(valid_features))
        history.head_weights = classifier.model.get_weights()
    if fine_tune_epochs:
        unfreeze_top(classifier, fine_tune_layers)
        run_phase("fine-tune", fine_tune_epochs, lambda pixels, labels, rows: trainer.train_batch(pixels, labels),
                  lambda: trainer.logits(valid_pixels))  # fmt: skip
        unfreeze_top(classifier, 0)
    history.seconds = time.perf_counter() - started
    history.cpu_seconds = time.process_time() - cpu_started
    progress.close(history.summary())
    for callback in callbacks:
        callback.on_train_end({"best_epoch": history.best_epoch})
    return history
