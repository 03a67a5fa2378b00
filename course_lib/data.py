"""Where the course's pictures come from: sample photos, the dog data set, and its split.

A lesson must run the same on a laptop online, on a laptop on a train, and in CI with no
internet at all. Downloads go through :func:`course_lib.downloads.download` (verified, atomic);
offline, the course falls back to the small sample committed in ``data/samples`` (licences in
its README) and prints one line saying so.

- :func:`sample_image`: real photographs to dream on. scikit-image's photos are bundled with
  the package (offline); ``"labrador"`` is the TensorFlow tutorial's photo, downloaded once
  through ``keras.utils.get_file`` into the Keras cache.
- :func:`pets_dataset`: a folder of dog-breed sub-folders for transfer learning (lessons 07-09):
  your own, ImageWoof (downloaded, verified, extracted safely), or the committed sample.
- :func:`image_folder`, :func:`split_each_label`, :func:`count_table`, :func:`read_images`: such
  a folder as a labelled data set (MATLAB's ``imageDatastore``), its stratified 70/30 split
  (``splitEachLabel``), and its photos decoded once at the classifier's input size.
"""
from __future__ import annotations

import difflib
import os
import shutil
import tempfile
import urllib.parse
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from course_lib import config, files, images, validate
from course_lib.downloads import (
    DownloadError,
    OfflineError,
    UnsafeArchiveError,
    download,
    extract_tar,
)

# ---------------------------------------------------------------------------------------------
# Sample photos
# ---------------------------------------------------------------------------------------------

#: The TensorFlow DeepDream tutorial's photo (the source's ``url``), cached by Keras.
LABRADOR_URL = "https://storage.googleapis.com/download.tensorflow.org/example_images/YellowLabradorLooking_new.jpg"
LABRADOR_FILE = "YellowLabradorLooking_new.jpg"


#: The small sample of real photos committed with the course (3.5 MB; licences in its README.md).
SAMPLES_DIR = config.COURSE_ROOT / "data" / "samples"
#: The committed copy of the tutorial's photo, used when the Keras cache lacks it and it cannot be downloaded.
SAMPLE_LABRADOR = SAMPLES_DIR / "photos" / LABRADOR_FILE
#: The committed dog-breed sample: 8 breeds and ``cat``, 30 photos each.
SAMPLE_PETS_DIR = SAMPLES_DIR / "pets"

_said: set[str] = set()


def _say_once(message: str) -> None:
    """Print which data was chosen and why, once per process (lessons load the same photo often)."""
    if message not in _said:
        _said.add(message)
        print(message)


# Real photographs that scikit-image ships inside its wheel (no download; none needs pooch).
_SKIMAGE_PHOTOS = {
    "chelsea": ("chelsea", "Chelsea the cat, 451x300 (scikit-image)"),
    "astronaut": ("astronaut", "astronaut Eileen Collins, 512x512 (NASA, via scikit-image)"),
    "coffee": ("coffee", "a cup of espresso on a saucer, 600x400 (Pikolo Espresso Bar, via scikit-image)"),
    "rocket": ("rocket", "the DSCOVR launch on a SpaceX Falcon 9, 640x427 (SpaceX, via scikit-image)"),
    "motorcycle": ("stereo_motorcycle", "a motorcycle in a workshop, 741x500 (Middlebury stereo, via scikit-image)"),
    "hubble": ("hubble_deep_field", "the Hubble eXtreme Deep Field, galaxies, 1000x872 (NASA, via scikit-image)"),
    "camera": ("camera", "the cameraman, grey, 512x512 (scikit-image; loaded as three equal channels)"),
}

#: Every name :func:`sample_image` accepts, with what the photo shows and where it comes from.
SAMPLE_IMAGES = MappingProxyType(
    {
        "labrador": "the TensorFlow DeepDream tutorial's yellow Labrador puppy "
        "(Wikimedia Commons; downloaded once into the Keras cache, or the course's committed copy offline)",
        **{name: description for name, (_, description) in _SKIMAGE_PHOTOS.items()},
    }
)


def sample_image(name: str, max_dim: int | None = None) -> np.ndarray:
    """A real photograph by name, as an RGB ``uint8`` array.

    Every name but ``"labrador"`` is a photo bundled with scikit-image, so it works offline.
    ``"labrador"`` is the tutorial's photo: read from the Keras cache
    (``~/.keras/datasets/YellowLabradorLooking_new.jpg``, or under ``$KERAS_HOME``), downloaded
    there once with ``keras.utils.get_file`` if missing, as the tutorial does; offline, the copy
    committed in ``data/samples/photos`` (see :func:`labrador_path`).

    Args:
        name: one of :data:`SAMPLE_IMAGES`, e.g. ``"labrador"``, ``"chelsea"``, ``"coffee"``.
        max_dim: shrink so the longer side is at most this many pixels (see :func:`course_lib.images.load`).

    Returns:
        ``np.ndarray`` (H, W, 3), ``uint8``.

    Raises:
        ValueError: an unknown name (the message lists the valid ones).
        OfflineError: ``"labrador"`` is not cached, cannot be downloaded, and the committed copy is missing.

    Example:
        >>> photo = data.sample_image("chelsea", max_dim=300)
        >>> photo.shape
        (200, 300, 3)
    """
    if not isinstance(name, str) or name not in SAMPLE_IMAGES:
        close = difflib.get_close_matches(str(name).lower(), list(SAMPLE_IMAGES), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"There is no sample image {name!r}.{hint} Valid names: {', '.join(SAMPLE_IMAGES)}.")
    if name == "labrador":
        return images.load(labrador_path(), max_dim=max_dim)
    import skimage.data  # only here: it is needed for these photos only

    loader = _SKIMAGE_PHOTOS[name][0]
    photo = getattr(skimage.data, loader)()
    if loader == "stereo_motorcycle":
        photo = photo[0]  # (left view, right view, disparity): the left photograph
    return images.load(photo, max_dim=max_dim)


def keras_datasets_dir() -> Path:
    """The folder where ``keras.utils.get_file`` caches files: ``$KERAS_HOME/datasets``
    (default ``~/.keras/datasets``), read now, so a changed ``KERAS_HOME`` is honoured."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "datasets"


#: The reason the Labrador's download failed in this process, if it did: it is not tried again.
_labrador_download_failed: list[str] = []


def labrador_path() -> Path:
    """The tutorial's Labrador photo on disk, taken from the first of these that works.

    1. The Keras cache (``~/.keras/datasets``), where the tutorial's ``get_file`` puts it.
    2. A download into that cache with ``keras.utils.get_file``, as the tutorial does (online).
    3. The copy committed with the course, ``data/samples/photos`` (offline, or the download
       failed), with one printed line saying so.

    Raises:
        OfflineError: not cached, not downloadable, and the committed copy is missing too. The
            message says where to put the file by hand.
    """
    path = keras_datasets_dir() / LABRADOR_FILE
    if path.is_file() and path.stat().st_size > 0:
        return path
    if path.is_file():
        path.unlink()  # an empty file is a failed earlier download; Keras would return it as cached
    if config.settings.offline:
        why = "DEEPDREAM_OFFLINE is set"
    elif _labrador_download_failed:
        why = f"the download failed: {_labrador_download_failed[0]}"  # once per process is enough to try
    else:
        import keras  # only here: importing TensorFlow takes seconds, and only a download needs it

        # Keras silently uses /tmp/.keras when the cache folder is not there yet (a fresh home), so
        # make it first: the photo must land where the next lesson looks for it.
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return Path(keras.utils.get_file(LABRADOR_FILE, origin=LABRADOR_URL, cache_dir=str(path.parent.parent)))
        except Exception as error:  # Keras wraps every network failure in a bare Exception
            path.unlink(missing_ok=True)
            reason = str(error).split(" -- ")[-1]  # Keras' "URL fetch failure on <url>: None -- <reason>"
            _labrador_download_failed.append(reason)
            why = f"the download failed: {reason}"
    if SAMPLE_LABRADOR.is_file():
        _say_once(f"Photo: the course's copy of the tutorial's Labrador, {SAMPLE_LABRADOR} "
                  f"(not in the Keras cache, and {why}).")
        return SAMPLE_LABRADOR
    raise OfflineError(
        f"The Labrador photo is not cached and {why}; the course's copy {SAMPLE_LABRADOR} is missing too. "
        f"Download {LABRADOR_URL} on a machine with internet and put it at {path}, "
        'or use a photo that works offline, e.g. sample_image("chelsea") or sample_image("coffee").'
    )


# ---------------------------------------------------------------------------------------------
# Verified downloads
# ---------------------------------------------------------------------------------------------


# ---------------------------------------------------------------------------------------------
# The dog-breed data set
# ---------------------------------------------------------------------------------------------

#: fast.ai's ImageWoof 2, 160 px version: 10 dog breeds from ImageNet, train and val splits.
IMAGEWOOF_URL = "https://s3.amazonaws.com/fast-ai-imageclas/imagewoof2-160.tgz"
#: Size and MD5 of that archive, from fastai's ``checks.txt`` (published beside the archive).
IMAGEWOOF_SIZE = 92_612_825
IMAGEWOOF_MD5 = "3559b194123981a540b87132dbda412f"

#: ImageWoof's ImageNet folder names (wnids) -> breed folder names. The names follow the
#: course's shared dog folder (lower case, underscores), so class names read the same whether
#: the data came from ``DEEPDREAM_PETS_DIR`` or from this download.
IMAGEWOOF_BREEDS = MappingProxyType(
    {
        "n02086240": "shih_tzu",
        "n02087394": "rhodesian_ridgeback",
        "n02088364": "beagle",
        "n02089973": "english_foxhound",
        "n02093754": "border_terrier",
        "n02096294": "australian_terrier",
        "n02099601": "golden_retriever",
        "n02105641": "old_english_sheepdog",
        "n02111889": "samoyed",
        "n02115641": "dingo",
    }
)

def pets_dataset(*, url: str = IMAGEWOOF_URL, size: int | None = IMAGEWOOF_SIZE, md5: str | None = IMAGEWOOF_MD5) -> Path:
    """A folder of dog photos, one sub-folder per breed, ready for ``image_dataset_from_directory``.

    Taken from the first of these that exists, with one printed line saying which and why:

    1. ``$DEEPDREAM_PETS_DIR`` (your own data set). If the variable is set but the folder is
       missing, that is an error, not a silent fall-through.
    2. ``data/pets`` in the course (``settings.data_dir / "pets"``).
    3. A download of ImageWoof-160 (fast.ai's 10-breed ImageNet subset, 93 MB), verified by size
       and MD5, extracted safely into ``data/pets``. ImageWoof's ``train`` and ``val`` splits are
       merged into one folder per breed (named as in :data:`IMAGEWOOF_BREEDS`), because the
       course makes its own 70/30 split, as the MATLAB source's ``splitEachLabel`` does. The
       archive stays in ``settings.cache_dir`` so that ``data/pets`` can be rebuilt offline.
       Fast mode (the tests) never downloads 93 MB: it goes straight to 4.
    4. The course's committed sample, ``data/samples/pets`` (8 breeds and ``cat``, 30 photos
       each), when the download is impossible (offline) or in fast mode.

    Args:
        url, size, md5: the archive to download and its expected size and MD5 (defaults: ImageWoof-160).

    Returns:
        The folder's path.

    Raises:
        FileNotFoundError: ``DEEPDREAM_PETS_DIR`` points nowhere.
        OfflineError: nothing local, the download is impossible, and the sample is missing.
        DownloadError, UnsafeArchiveError: the archive is not the expected one, or unsafe (never
            hidden behind the sample: a wrong file is a problem to fix, not to work around).

    Example:
        >>> folder = data.pets_dataset()
        >>> sorted(p.name for p in folder.iterdir())[:3]
        ['australian_terrier', 'beagle', 'border_terrier']
    """
    settings = config.settings
    if settings.pets_dir is not None:
        if not settings.pets_dir.is_dir():
            raise FileNotFoundError(
                f"DEEPDREAM_PETS_DIR is set to {settings.pets_dir}, but there is no folder there. Fix the path, "
                f"or unset the variable to use {settings.data_dir / 'pets'} (downloaded if missing)."
            )
        print(f"Dog photos: {settings.pets_dir} (DEEPDREAM_PETS_DIR is set).")
        return _check_breed_folders(settings.pets_dir, "DEEPDREAM_PETS_DIR")
    target = settings.data_dir / "pets"
    if target.is_dir():
        print(f"Dog photos: {target} (the course's data folder).")
        return _check_breed_folders(target, "the course's data folder")
    if target.exists():
        raise NotADirectoryError(f"{target} is a file, but the dog photos should be a folder there. Move the file away.")
    archive = settings.cache_dir / (Path(urllib.parse.urlsplit(url).path).name or "pets.tgz")
    if settings.fast and not _is_verified(archive, size=size, md5=md5):
        return _sample_pets(target, archive, url, "fast mode never downloads the 93 MB ImageWoof")
    if not _is_verified(archive, size=size, md5=md5):
        archive.unlink(missing_ok=True)
        try:
            download(url, archive, md5=md5, size=size)
        except OfflineError as error:
            why = "DEEPDREAM_OFFLINE is set" if settings.offline else f"ImageWoof cannot be downloaded: {str(error).split('; ')[0]}"
            return _sample_pets(target, archive, url, why)
    try:
        extract_breeds(archive, target)
    except (UnsafeArchiveError, DownloadError):
        archive.unlink(missing_ok=True)  # an unusable archive must not be found again next time
        raise
    print(f"Dog photos: {target} (ImageWoof, downloaded and verified).")
    return target


def _sample_pets(target: Path, archive: Path, url: str, why: str) -> Path:
    """The committed sample, or the clear offline error if even that is missing."""
    if SAMPLE_PETS_DIR.is_dir():
        classes = [folder for folder in SAMPLE_PETS_DIR.iterdir() if folder.is_dir()]
        photos = sum(1 for folder in classes for photo in folder.iterdir() if photo.suffix.lower() in IMAGE_EXTENSIONS)
        print(f"Dog photos: the course's small sample, {SAMPLE_PETS_DIR} ({len(classes)} classes, {photos} photos), "
              f"because {why}. For ImageWoof (10 breeds, about 1,300 photos each) go online, or set DEEPDREAM_PETS_DIR.")
        return SAMPLE_PETS_DIR
    raise OfflineError(
        f"No dog photos here ({why}), and the course's sample {SAMPLE_PETS_DIR} is missing. Either set "
        f"DEEPDREAM_PETS_DIR to a folder of breed sub-folders, put breed sub-folders in {target}, or "
        f"download {url} on a machine with internet and put it at {archive}."
    )


def _is_verified(archive: Path, *, size: int | None, md5: str | None) -> bool:
    if not archive.is_file():
        return False
    if size is not None and archive.stat().st_size != size:
        return False
    return md5 is None or files.md5_of(archive) == md5.lower()


def _check_breed_folders(folder: Path, where: str) -> Path:
    if not any(child.is_dir() for child in folder.iterdir()):
        raise ValueError(
            f"{folder} ({where}) has no sub-folders. It must hold one sub-folder per breed, each full of photos, "
            "e.g. beagle/1.jpg, samoyed/2.jpg."
        )
    return folder


def extract_breeds(archive: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Extract an ImageWoof-style archive safely into ``target``, one folder per breed.

    Every member is checked before anything is written (see
    :func:`course_lib.downloads.extract_tar`). Extraction happens in a temporary folder beside
    ``target`` that is renamed into place at the end, so ``target`` either appears complete or
    not at all. Folders named by an ImageWoof wnid (anywhere in the archive, e.g.
    ``imagewoof2-160/train/n02088364``) are merged into ``target/<breed>``; a file name that
    occurs in both splits gets its split's name as a prefix.

    Args:
        archive: a ``.tgz`` / ``.tar`` file.
        target: the folder to create; it must not exist yet.

    Returns:
        ``target`` as a ``Path``.

    Raises:
        UnsafeArchiveError: a member would escape ``target``, or is a link or device.
        DownloadError: not a readable tar archive, or no ImageWoof class folders in it.
    """
    archive, target = Path(archive), Path(target)
    if target.exists():
        raise FileExistsError(f"{target} already exists; remove it first to extract {archive.name} again.")
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        raw = work / "archive"
        raw.mkdir()
        extract_tar(archive, raw)
        layout = work / "breeds"
        count = _lay_out_breeds(raw, layout)
        if count == 0:
            raise DownloadError(
                f"{archive} holds no photos in ImageWoof class folders ({', '.join(list(IMAGEWOOF_BREEDS)[:3])}, ...). "
                "It is not the ImageWoof archive."
            )
        (layout / "SOURCE.md").write_text(
            f"# Dog photos by breed\n\nExtracted by course_lib.data.pets_dataset from {archive.name} "
            f"({count} photos; ImageWoof's train and val splits merged, wnid folders renamed to breeds).\n"
        )
        os.rename(layout, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _lay_out_breeds(raw: Path, layout: Path) -> int:
    """Move the photos of every wnid folder under ``raw`` into ``layout/<breed>``; return how many."""
    count = 0
    for wnid_folder in sorted(path for path in raw.rglob("n*") if path.is_dir() and path.name in IMAGEWOOF_BREEDS):
        breed_folder = layout / IMAGEWOOF_BREEDS[wnid_folder.name]
        breed_folder.mkdir(parents=True, exist_ok=True)
        for photo in sorted(wnid_folder.iterdir()):
            if not photo.is_file() or photo.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            destination = breed_folder / photo.name
            if destination.exists():  # the same name in train and val: prefix the split's name
                destination = breed_folder / f"{wnid_folder.parent.name}_{photo.name}"
            photo.rename(destination)
            count += 1
    return count


# ---------------------------------------------------------------------------------------------
# A folder of class sub-folders as a labelled data set, and its 70/30 split (lessons 07-09)
# ---------------------------------------------------------------------------------------------

#: File endings read as photos, everywhere in the course; other files (notes, CSVs) are ignored.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")

#: The source's ``splitEachLabel(imds, 0.7, 'randomized')``: 70 % of each class to train on.
TRAIN_FRACTION = 0.7

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
    seed always gives the same split, so lesson 08 can rebuild lesson 07's validation and test photos.

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
    input_size = check_input_size(input_size)
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


def check_input_size(input_size: int) -> int:
    """The side of a classifier's square input: a whole number of pixels from 32 to 1024."""
    return validate.whole_number("input_size", input_size, low=32, high=1024, example=160)
