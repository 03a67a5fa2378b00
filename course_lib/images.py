"""Pictures in, pictures out: every image in the course enters through :func:`load`.

A student's photo can be a phone JPEG turned sideways by its EXIF tag, a 16-bit grey scan, a PNG
with a transparent background, a CMYK file from a print shop, a float array from another library,
or a text file with a ``.jpg`` name. The network only understands one thing: an RGB array of
``uint8`` pixels (then scaled to [-1, 1]). This module turns everything that *is* a picture into
that, and refuses everything else with an :class:`ImageError` that says what is wrong and how to
fix it, so no lesson ever dreams on a silently wrong image.

It also holds the tutorial's small helpers: ``max_dim`` shrinking (``img.thumbnail``), the
model range (``x / 127.5 - 1``, InceptionV3's ``preprocess_input``) and back (``deprocess``),
``show``, a grid of images (MATLAB's ``imtile``) and an atomic ``save``.
"""
from __future__ import annotations

import io
import os
import re
import struct
import warnings
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import numpy as np
import PIL.Image
import PIL.ImageOps

from course_lib import files, validate

if TYPE_CHECKING:
    from course_lib.models import Backbone

#: What :func:`load` accepts: a path, an http(s) URL, encoded bytes, an array or a PIL image.
ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, np.ndarray, PIL.Image.Image]

#: The course's limit on decoded image size. 60 megapixels is more than any phone camera takes
#: (50 MP sensors), yet decoded as RGB it stays under 180 MB of memory. Pillow's own guard
#: (``PIL.Image.MAX_IMAGE_PIXELS``, about 89 MP) is higher; both are checked before decoding.
MAX_PIXELS = 60_000_000

#: File formats :func:`save` writes, by extension.
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}

#: JPEG quality for :func:`save`: high enough that dream textures survive the compression.
JPEG_QUALITY = 95

#: Float pixels may stray this far outside [0, 1] (rounding in other libraries) and are clipped.
_FLOAT_TOLERANCE = 1 / 255

# Exceptions Pillow raises for files it cannot decode (broken headers, cut-off data, bad zlib).
_DECODE_ERRORS = (OSError, SyntaxError, EOFError, ValueError, struct.error, zlib.error)


class ImageError(ValueError):
    """The input is not a picture the course can use; the message says why and what to do."""


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def load(source: ImageSource, max_dim: int | None = None, *, min_size: int | Backbone = 1) -> np.ndarray:
    """Load any picture as an RGB ``uint8`` array of shape (height, width, 3).

    Conversions (all lossless where the input allows it):

    - EXIF orientation is applied, so a phone photo taken upright is upright.
    - Grey (8-bit, 16-bit, 1-bit) becomes three equal channels; 16-bit values are scaled by
      their real bit depth (65535 -> 255), never clipped.
    - Palette images use their palette (and its transparency); CMYK goes through Pillow.
    - **Alpha**: transparent images (RGBA, LA, PA, palette or colour-key transparency, HxWx4
      and HxWx2 arrays) are composited over a **white** background, as a browser shows them on
      a white page, and the alpha channel is then dropped. The colours hidden under fully
      transparent pixels are discarded (they are often garbage).
    - Arrays: ``uint8`` as is; ``bool`` as black/white; ``uint16`` scaled from 0..65535;
      other integer types only when every value is in 0..255; floats must be in [0, 1]
      (a float image in the model range [-1, 1] needs :func:`from_model_range` first).
      Shapes HxW, HxWx1, HxWx2, HxWx3 and HxWx4 are understood.
    - Multi-frame files (animated GIF, multi-page TIFF): the first frame.

    Args:
        source: a file path; an ``http(s)://`` URL (downloaded once into the course's cache
            folder, see :func:`course_lib.downloads.cached_url`); the bytes of an encoded image; a
            NumPy array (or anything with ``__array__``, such as a TensorFlow tensor); or a
            PIL image.
        max_dim: if given, shrink the image so its longer side is at most ``max_dim`` pixels,
            keeping its aspect ratio, as the tutorial's ``img.thumbnail((max_dim, max_dim))``.
            Never enlarges.
        min_size: the smallest side the image may have (after ``max_dim``). Pass a backbone
            from :func:`course_lib.models.backbone` to use its ``min_size`` and name it in the
            error, e.g. InceptionV3 needs 75 px.

    Returns:
        A new, writable ``np.ndarray`` of shape (H, W, 3) and dtype ``uint8``.

    Raises:
        ImageError: not an image, empty, truncated, too small, too large (a decompression
            bomb), or an array that cannot be read as pixels. The message says how to fix it.
        FileNotFoundError: no file at the path.
        course_lib.downloads.OfflineError: a URL that is not cached while offline.

    Example:
        >>> photo = images.load("my_dog.jpg", max_dim=500)
        >>> photo.shape, photo.dtype
        ((375, 500, 3), dtype('uint8'))
    """
    max_dim = validate.max_dim(max_dim)
    minimum, network = _check_min_size(min_size)
    if max_dim is not None and max_dim < minimum:
        raise ValueError(
            f"max_dim={max_dim} is smaller than the minimum image size {minimum}"
            f"{f' that {network} needs' if network else ''}. Use max_dim >= {minimum}."
        )
    pixels, description = _decode(source)
    if max_dim is not None:
        pixels = resize_max_dim(pixels, max_dim)
    height, width = pixels.shape[:2]
    if min(height, width) < minimum:
        needs = f"{network} needs" if network else f"min_size={minimum} asks for"
        hint = f" or a larger max_dim (it is {max_dim})" if max_dim is not None else ""
        raise ImageError(
            f"{description} is {width}x{height} pixels, but {needs} at least {minimum} pixels on each "
            f"side: smaller images shrink to nothing inside the network. Use a larger photo{hint}."
        )
    return pixels


def _decode(source: Any) -> tuple[np.ndarray, str]:
    """Turn any accepted source into RGB uint8 pixels, plus a short description for messages."""
    if isinstance(source, PIL.Image.Image):
        return _from_pil(source, "the PIL image"), "the PIL image"
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        if not data:
            raise ImageError("The bytes given are empty (0 bytes), so they hold no image. Pass the bytes of a PNG or JPEG file.")
        return _open_and_convert(io.BytesIO(data), "the bytes given"), "the bytes given"
    if isinstance(source, str) and "://" in source:
        return _load_url(source), source
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        return _load_path(path), str(path)
    if isinstance(source, np.ndarray) or hasattr(source, "__array__"):
        return _from_array(np.asarray(source), "the array"), "the array"
    raise ImageError(
        f"Cannot load an image from a {type(source).__name__}. Pass a file path, an http(s) URL, "
        "the bytes of an image file, a NumPy array or a PIL image."
    )


def _load_path(path: Path) -> np.ndarray:
    if not path.exists():
        raise FileNotFoundError(
            f"There is no file at {path.resolve()} (the current folder is {Path.cwd()}). "
            "Check the spelling, or give the full path."
        )
    if path.is_dir():
        raise ImageError(f"{path} is a folder, not an image file. Give the path of one image in it.")
    if path.stat().st_size == 0:
        raise ImageError(
            f"{path} is empty (0 bytes): it was not saved or downloaded completely. "
            "Save or download it again."
        )
    return _open_and_convert(path, str(path))


def _load_url(url: str) -> np.ndarray:
    scheme = url.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise ImageError(
            f"Cannot load {url}: only http:// and https:// URLs are supported. "
            "For a file on this computer, pass its path instead."
        )
    from course_lib import downloads  # downloads is light, but keep images importable on its own

    path = downloads.cached_url(url)
    try:
        return _open_and_convert(path, f"{url} (cached at {path})")
    except ImageError:
        path.unlink(missing_ok=True)  # never keep a non-image in the cache
        raise


def _open_and_convert(file: Path | io.BytesIO, description: str) -> np.ndarray:
    """Open with Pillow, refuse bombs before decoding, decode fully, convert to RGB uint8."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", PIL.Image.DecompressionBombWarning)
            image = PIL.Image.open(file)
    except PIL.UnidentifiedImageError:
        raise ImageError(
            f"{description} is not an image Pillow can read{_text_hint(file)}. "
            "Use a PNG or JPEG photo, or check that the file really is the picture you meant."
        ) from None
    except (PIL.Image.DecompressionBombError, PIL.Image.DecompressionBombWarning) as bomb:
        declared = re.search(r"\((\d+) pixels\)", str(bomb))  # Pillow: "Image size (N pixels) exceeds ..."
        size = f"{int(declared.group(1)):,} pixels" if declared else f"a huge size ({bomb})"
        raise ImageError(
            f"{description} declares {size}, more than the course's limit of {MAX_PIXELS:,} pixels "
            f"(a decompression bomb, or a very large scan); it was refused before decoding. {_shrink_hint()}"
        ) from None
    except _DECODE_ERRORS as error:
        raise ImageError(f"{description} is damaged: Pillow cannot read its header ({error}). Export or download it again.") from None
    with image:
        return _from_pil(image, description)


def _from_pil(image: PIL.Image.Image, description: str) -> np.ndarray:
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"{description} is {width}x{height} = {width * height:,} pixels, more than the course's "
            f"limit of {MAX_PIXELS:,} (a decompression bomb, or a very large scan). {_shrink_hint()}"
        )
    if width == 0 or height == 0:
        raise ImageError(f"{description} is {width}x{height} pixels: it has no pixels at all. Use a real photo.")
    try:
        image.seek(0)  # multi-frame files: the first frame
        image.load()  # decode everything now, so a cut-off file fails here and not later
    except _DECODE_ERRORS as error:
        raise ImageError(
            f"{description} is truncated or damaged: Pillow could not decode all of it ({error}). "
            "The file was probably cut off while downloading or copying; get it again."
        ) from None
    try:
        image = PIL.ImageOps.exif_transpose(image)
    except _DECODE_ERRORS:
        pass  # a broken EXIF block: show the pixels as stored, as browsers do, rather than refuse the photo
    return _pil_to_rgb(image, description)


def _pil_to_rgb(image: PIL.Image.Image, description: str) -> np.ndarray:
    mode = image.mode
    if mode == "RGB":
        return np.array(image, dtype=np.uint8)
    if mode.startswith("I;16") or mode == "I":
        return _from_array(_scale_wide_integers(image, description), description)
    if mode == "F":
        return _from_array(np.asarray(image, dtype=np.float32), description)
    has_alpha = mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in image.info
    if has_alpha:
        return _from_array(np.array(image.convert("RGBA"), dtype=np.uint8), description)
    return np.array(image.convert("RGB"), dtype=np.uint8)


def _scale_wide_integers(image: PIL.Image.Image, description: str) -> np.ndarray:
    """16- or 32-bit grey pixels -> uint8, scaled by the file's real bit depth."""
    values = np.asarray(image).astype(np.int64)
    if values.size and values.min() < 0:
        raise ImageError(
            f"{description} is a signed integer image with negative values ({values.min()}); "
            "it is measurement data, not a photo. Convert it to an 8-bit image first."
        )
    bits = 16 if image.mode.startswith("I;16") else _declared_bits(image)
    if bits is None:  # mode "I" without a declared depth: the smallest depth that holds the data
        bits = 16 if values.size == 0 or values.max() <= 0xFFFF else 32
    top = (1 << bits) - 1
    return np.clip(np.rint(values * (255 / top)), 0, 255).astype(np.uint8)


def _declared_bits(image: PIL.Image.Image) -> int | None:
    tags = getattr(image, "tag_v2", None)  # TIFF: BitsPerSample (tag 258)
    if tags is not None and 258 in tags:
        bits = tags[258]
        return int(bits[0] if isinstance(bits, tuple) else bits)
    return None


def _from_array(array: np.ndarray, description: str) -> np.ndarray:
    """An array of pixels in any of the documented dtypes and shapes -> RGB uint8."""
    if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise ImageError(f"{description} has dtype {array.dtype}, which is not pixels. Use uint8 (0..255) or float (0..1) values.")
    array = _check_shape(array, description)
    channels = array.shape[2]
    pixels = _to_unit_or_uint8(array, description)
    if channels in (2, 4):
        pixels = _over_white(pixels)
    elif pixels.dtype != np.uint8:
        pixels = _float_to_uint8(pixels)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels, dtype=np.uint8)


def _check_shape(array: np.ndarray, description: str) -> np.ndarray:
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    if array.ndim == 4 and array.shape[0] == 1:
        raise ImageError(
            f"{description} has shape {array.shape}: a batch holding one image. Pass image[0] instead."
        )
    if array.ndim != 3:
        raise ImageError(
            f"{description} has shape {array.shape}; an image must be (height, width) or "
            "(height, width, channels) with 1, 2, 3 or 4 channels."
        )
    if array.shape[2] not in (1, 2, 3, 4):
        if array.shape[0] in (1, 3, 4):
            raise ImageError(
                f"{description} has shape {array.shape}: channels first. Use np.moveaxis(image, 0, -1) "
                "to put the channels last, (height, width, channels)."
            )
        raise ImageError(
            f"{description} has shape {array.shape}: {array.shape[2]} channels. An image has 1 (grey), "
            "2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels."
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ImageError(f"{description} has shape {array.shape}: it has no pixels at all. Use a real photo.")
    return array


def _to_unit_or_uint8(array: np.ndarray, description: str) -> np.ndarray:
    """uint8 stays; everything else becomes float64 in [0, 1] or is refused."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == bool:
        return array.astype(np.uint8) * np.uint8(255)
    if array.dtype == np.uint16:
        return array / 65535.0  # 16-bit: scale by the full range, never clip to 255
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise ImageError(
                f"{description} is {array.dtype} with values from {low} to {high}; integer pixels must be "
                "0..255. Scale it to 0..255 and use .astype('uint8'), or pass uint16 for 16-bit data."
            )
        return array.astype(np.uint8)
    values = array.astype(np.float64)
    if not np.isfinite(values).all():
        bad = "NaN" if np.isnan(values).any() else "infinite"
        raise ImageError(
            f"{description} contains {bad} values, so it is not a picture. "
            "This usually means a computation diverged (e.g. a too large step size); fix that first."
        )
    low, high = float(values.min()), float(values.max())
    if low < -_FLOAT_TOLERANCE or high > 1 + _FLOAT_TOLERANCE:
        if low >= -1 - _FLOAT_TOLERANCE and high <= 1 + _FLOAT_TOLERANCE:
            hint = "It looks like the model range [-1, 1]: use images.from_model_range(x) first."
        elif low >= 0 and high <= 255 + _FLOAT_TOLERANCE:
            hint = "It looks like 0..255 pixel values: use x.astype('uint8') (or x / 255)."
        else:
            hint = "Rescale it to [0, 1] first, e.g. (x - x.min()) / (x.max() - x.min())."
        raise ImageError(
            f"{description} is {array.dtype} with values from {low:.3g} to {high:.3g}; float pixels must be "
            f"in [0, 1]. {hint}"
        )
    return np.clip(values, 0.0, 1.0)


def _float_to_uint8(unit: np.ndarray) -> np.ndarray:
    return np.rint(unit * 255.0).astype(np.uint8)


def _over_white(pixels: np.ndarray) -> np.ndarray:
    """Composite grey+alpha or RGB+alpha over a white background; drop the alpha."""
    unit = pixels / 255.0 if pixels.dtype == np.uint8 else pixels
    colour, alpha = unit[:, :, :-1], unit[:, :, -1:]
    return _float_to_uint8(colour * alpha + (1.0 - alpha))


def _text_hint(file: Path | io.BytesIO) -> str:
    """' (it starts with text: "...")' when the file looks like text, to make the mistake obvious."""
    try:
        if isinstance(file, io.BytesIO):
            head = file.getvalue()[:60]
        else:
            with open(file, "rb") as handle:
                head = handle.read(60)
        text = head.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return ""
    if not text.strip() or not all(c.isprintable() or c.isspace() for c in text):
        return ""
    first = " ".join(text.split())[:40]
    return f' (it starts with text: "{first}")'


def _shrink_hint() -> str:
    return (
        "Shrink it to a few thousand pixels per side in an image editor or, if you trust the file, with "
        "Pillow: PIL.Image.MAX_IMAGE_PIXELS = None; img = PIL.Image.open(path); img.thumbnail((4000, 4000)); "
        "img.save('smaller.jpg')."
    )


def _check_min_size(min_size: Any) -> tuple[int, str | None]:
    network = None
    if hasattr(min_size, "min_size"):  # a Backbone (or anything that knows its minimum)
        network = getattr(min_size, "name", None)
        min_size = min_size.min_size
    if isinstance(min_size, bool) or not isinstance(min_size, (int, np.integer)) or min_size < 1:
        raise ValueError(f"min_size must be a whole number of pixels >= 1 or a backbone; got {min_size!r}.")
    return int(min_size), network


# ---------------------------------------------------------------------------------------------
# Size and range
# ---------------------------------------------------------------------------------------------


def resize_max_dim(image: np.ndarray, max_dim: int) -> np.ndarray:
    """Shrink an RGB uint8 image so its longer side is at most ``max_dim``; never enlarge.

    This is the tutorial's ``img.thumbnail((max_dim, max_dim))`` (same sizes, same filter), on an
    array.

    Args:
        image: RGB ``uint8`` array (H, W, 3), as :func:`load` returns.
        max_dim: the longest side allowed, in pixels.

    Returns:
        The image itself if it already fits, else a smaller copy.

    Example:
        >>> images.resize_max_dim(np.zeros((1000, 500, 3), np.uint8), 500).shape
        (500, 250, 3)
    """
    max_dim = validate.max_dim(max_dim)
    if max_dim is None:
        raise ValueError("resize_max_dim needs a max_dim, e.g. resize_max_dim(image, 500).")
    _check_rgb_uint8(image, "resize_max_dim")
    if max(image.shape[:2]) <= max_dim:
        return image
    picture = PIL.Image.fromarray(image)
    picture.thumbnail((max_dim, max_dim))
    return np.array(picture, dtype=np.uint8)


def to_model_range(image: np.ndarray) -> np.ndarray:
    """RGB ``uint8`` pixels (0..255) -> ``float32`` in [-1, 1], what the backbones expect.

    The same arithmetic as ``keras.applications.inception_v3.preprocess_input`` (and
    MobileNetV2's): ``x / 127.5 - 1``.

    Args:
        image: ``uint8`` array, one image (H, W, 3) or a batch (N, H, W, 3).

    Returns:
        ``float32`` array of the same shape with values in [-1, 1].

    Example:
        >>> images.to_model_range(np.array([0, 255], np.uint8))
        array([-1.,  1.], dtype=float32)
    """
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise ImageError(
            f"to_model_range expects uint8 pixels (0..255), as images.load returns; got {array.dtype}. "
            "If the image is already in [-1, 1] it needs no conversion; otherwise load it with images.load."
        )
    return array.astype(np.float32) / np.float32(127.5) - np.float32(1.0)


def from_model_range(image: Any) -> np.ndarray:
    """Values in the model range [-1, 1] -> RGB ``uint8`` pixels: the tutorial's ``deprocess``.

    Gradient ascent can push values past [-1, 1], so they are clipped first (as the tutorial
    clips after each step), then ``255 * (x + 1) / 2`` is rounded to the nearest pixel value
    (rounding, not the tutorial's truncating cast, so that ``from_model_range(to_model_range(x))``
    gives back exactly ``x``).

    Args:
        image: float array or tensor, one image or a batch.

    Returns:
        ``uint8`` NumPy array of the same shape.

    Raises:
        ImageError: NaN or infinite values (a diverged dream), or integer input.

    Example:
        >>> images.from_model_range(np.array([-1.0, 0.0, 1.0]))
        array([  0, 128, 255], dtype=uint8)
    """
    array = np.asarray(image)
    if not np.issubdtype(array.dtype, np.floating):
        raise ImageError(
            f"from_model_range expects floats in [-1, 1] (a model's input or a dream); got {array.dtype}. "
            "uint8 pixels are already displayable and need no conversion."
        )
    values = array.astype(np.float64)
    if not np.isfinite(values).all():
        raise ImageError(
            "The image contains NaN or infinite values: the computation that made it diverged "
            "(e.g. a step size too large). Fix that first; these values have no colour."
        )
    return np.rint((np.clip(values, -1.0, 1.0) + 1.0) * 127.5).astype(np.uint8)


def _check_rgb_uint8(image: Any, who: str) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        dtype = getattr(image, "dtype", type(image).__name__)
        raise ImageError(
            f"{who} expects an RGB uint8 array (height, width, 3); got {dtype} with shape {shape}. "
            "Use images.load(...) to get one."
        )


# ---------------------------------------------------------------------------------------------
# Saving (showing is course_lib.plots.show and show_grid)
# ---------------------------------------------------------------------------------------------


def save(image: ImageSource, path: str | os.PathLike) -> Path:
    """Save an image as PNG or JPEG (chosen by the extension), atomically.

    The file is written beside its target under a temporary name and renamed at the end, so a
    crash or a full disk never leaves a half-written picture (see :func:`course_lib.files.atomic_path`).

    Args:
        image: anything :func:`load` accepts (a dream in [-1, 1] needs :func:`from_model_range` first).
        path: where to write, ending in ``.png``, ``.jpg`` or ``.jpeg``. Its folder is created.

    Returns:
        The path written.

    Example:
        >>> images.save(images.from_model_range(dream), "dream.png")
        PosixPath('dream.png')
    """
    target = Path(path).expanduser()
    file_format = SAVE_FORMATS.get(target.suffix.lower())
    if file_format is None:
        raise ValueError(
            f"Cannot tell how to save {target}: the extension {target.suffix or '(none)'!r} is not one of "
            f"{', '.join(SAVE_FORMATS)}. Name the file e.g. {target.stem or 'image'}.png."
        )
    pixels = load(image)
    options = {"quality": JPEG_QUALITY} if file_format == "JPEG" else {}
    with files.atomic_path(target) as temporary:
        PIL.Image.fromarray(pixels).save(temporary, format=file_format, **options)
    return target
