"""Class-channel visualisation: images that a classifier is sure show a given dog breed.

The finale of the source is MATLAB's ``deepDreamImage(net, layer, channels)``: pick channels of the
trained classifier's final layer (one per breed) and make one image per channel that drives that
channel up. Three methods, one module each, so that a lesson can compare them:

- :func:`naive_class_images` (:mod:`.render`): plain gradient ascent on the pixels at one size;
  the classifier is soon sure, yet the picture is coloured noise.
- :func:`deep_dream_image` (:mod:`.matlab`): MATLAB's method, an image pyramid that grows from
  the start size (gradients of large levels taken tile by tile, :func:`tiled_gradient`) and
  Laplacian-pyramid gradient normalisation (plus the course's jitter); its loop is
  :func:`pyramid_ascent`, and :func:`pyramid_images` runs a student's loop the same way.
- :func:`robust_class_images` (:mod:`.robust`): Lucid's recipe, a Fourier-parameterised image in
  decorrelated colour (:mod:`.param`) seen through random transforms (:mod:`.transforms`) at
  every step (``fourier=``, ``decorrelate=``, ``transforms=`` switch each ingredient off).

What is maximised is in :mod:`.objectives` (the logits of a classifier's class layer, by index
or class name); :mod:`.quality` measures whether a result is a picture or noise.

Example:
    >>> from course_lib import classviz, models
    >>> classifier = models.dog_breed_classifier()
    >>> pictures = classviz.deep_dream_image(classifier, "dense", ["Chihuahua", "Doberman"])
    >>> pictures.shape
    (2, 313, 313, 3)
"""
from course_lib.classviz.matlab import (
    MATLAB_STEP_SIZE,
    deep_dream_image,
    laplacian_merge,
    laplacian_normalize,
    laplacian_split,
    normalize_bands,
    pyramid_ascent,
    pyramid_images,
    pyramid_sizes,
    tiled_gradient,
)
from course_lib.classviz.objectives import (
    ChannelTarget,
    channel_activations,
    channel_target,
    class_layer,
    resolve_channels,
)
from course_lib.classviz.quality import high_frequency_share, rms_contrast
from course_lib.classviz.render import naive_class_images
from course_lib.classviz.robust import robust_class_images

#: The three methods by name, for the command line and the quality benchmark.
METHODS = {"robust": robust_class_images, "matlab": deep_dream_image, "naive": naive_class_images}

__all__ = [
    "MATLAB_STEP_SIZE", "METHODS", "pyramid_ascent", "pyramid_images", "pyramid_sizes", "tiled_gradient",
    "ChannelTarget", "channel_activations", "channel_target", "class_layer", "deep_dream_image",
    "high_frequency_share", "laplacian_merge", "laplacian_normalize", "laplacian_split", "normalize_bands",
    "naive_class_images", "resolve_channels", "rms_contrast", "robust_class_images",
]
