"""Verified, atomic downloads (the one way the course fetches a file from the internet), and safe unpacking.

A lesson must run the same on a laptop online, on a laptop on a train, and in CI with no
internet at all. So every download goes through :func:`download`, which streams into a temporary
file, checks the size and checksum, and only then renames the file into place: a broken
connection or a tampered file leaves nothing behind. When the network cannot be used
(``DEEPDREAM_OFFLINE=1``, or the server cannot be reached), an :class:`OfflineError` names the
URL, the exact path to put the file at by hand, and what works offline instead. A downloaded
archive is unpacked with :func:`extract_tar`, which refuses any member that would land outside
its folder.
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import re
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path, PurePosixPath

from course_lib import config, files
from course_lib.progress import Progress


class OfflineError(RuntimeError):
    """A file is needed from the internet, but the network is off or unreachable."""


class DownloadError(ValueError):
    """A download arrived but is not the expected file (HTTP error, wrong size or checksum)."""


class UnsafeArchiveError(ValueError):
    """An archive holds a member that would land outside its folder (or a link or device)."""


#: Seconds to wait for a server to answer (or for the next block of data) before giving up.
DOWNLOAD_TIMEOUT = 30.0


def download(
    url: str,
    destination: str | os.PathLike,
    *,
    md5: str | None = None,
    sha256: str | None = None,
    size: int | None = None,
    timeout: float = DOWNLOAD_TIMEOUT,
) -> Path:
    """Download ``url`` to ``destination``, verified and atomic.

    The data streams into a temporary file beside ``destination`` (so memory use is small and
    the final rename is atomic). Only when the byte count and every given checksum match is it
    renamed into place; otherwise the temporary file is deleted and nothing is left behind.

    Args:
        url: an ``http://`` or ``https://`` URL.
        destination: the file to create (its folder is created).
        md5, sha256: expected hex digests, if known (fast.ai publishes MD5 sums).
        size: expected size in bytes, if known; a server announcing another size is refused
            before anything is downloaded.
        timeout: seconds to wait for the server to answer, or for the next block of data.

    Returns:
        ``destination`` as a ``Path``.

    Raises:
        OfflineError: ``DEEPDREAM_OFFLINE`` is set (the network is never touched), or the
            server cannot be reached.
        DownloadError: an HTTP error, a broken-off transfer, or a size or checksum mismatch.

    Example:
        >>> downloads.download(IMAGEWOOF_URL, "imagewoof2-160.tgz", md5=IMAGEWOOF_MD5, size=IMAGEWOOF_SIZE)
    """
    destination = Path(destination).expanduser()
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError(f"Cannot download {url!r}: only http:// and https:// URLs are supported.")
    by_hand = f"Download {url} on a machine with internet and put it at {destination}."
    if config.settings.offline:
        raise OfflineError(f"Cannot download {url}: DEEPDREAM_OFFLINE is set, so the course never uses the network. {by_hand}")
    request = urllib.request.Request(url, headers={"User-Agent": "deepdream-course"})
    try:
        with files.atomic_path(destination) as temporary:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                _stream(response, temporary, url, md5=md5, sha256=sha256, size=size)
    except urllib.error.HTTPError as error:
        raise DownloadError(f"{url} answered HTTP {error.code} ({error.reason}); nothing was saved. {by_hand}") from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        reason = getattr(error, "reason", error)
        raise OfflineError(f"Cannot reach {url} ({reason}); nothing was saved. {by_hand}") from None
    except http.client.HTTPException as error:
        raise DownloadError(f"The download of {url} broke off ({error!r}); nothing was saved. Try again.") from None
    return destination


def _stream(response, temporary: Path, url: str, *, md5: str | None, sha256: str | None, size: int | None) -> None:
    announced = response.headers.get("Content-Length")
    announced = int(announced) if announced and announced.isdigit() else None
    if size is not None and announced is not None and announced != size:
        raise DownloadError(
            f"{url} is {announced:,} bytes, but {size:,} were expected: it is not the expected file "
            "(moved or changed upstream). Nothing was downloaded."
        )
    digests = {"md5": hashlib.md5(usedforsecurity=False), "sha256": hashlib.sha256()}
    total = size or announced or 0
    megabytes = max(round(total / 1e6), 1)
    bar = Progress(megabytes, f"downloading {Path(urllib.parse.urlsplit(url).path).name}", enabled=total > 1_000_000)
    received = 0
    with open(temporary, "wb") as out:
        while chunk := response.read(1 << 20):
            out.write(chunk)
            received += len(chunk)
            for digest in digests.values():
                digest.update(chunk)
            bar.update(min(round(received / 1e6), megabytes), "MB")
    bar.close(f"{received / 1e6:.1f} MB")
    # http.client's read(amt) returns b"" instead of raising when the connection drops early, so
    # a broken-off transfer looks like a finished one unless the count is checked against the
    # server's announced Content-Length (the only check when the caller gives no size).
    if announced is not None and received != announced:
        raise DownloadError(
            f"The download of {url} broke off: {received:,} of the announced {announced:,} bytes arrived; "
            "the partial file was deleted. Try again."
        )
    if size is not None and received != size:
        raise DownloadError(
            f"The download of {url} is {received:,} bytes, but {size:,} were expected (a broken-off or changed "
            "file); it was deleted. Try again."
        )
    for algorithm, expected in (("md5", md5), ("sha256", sha256)):
        if expected is not None and digests[algorithm].hexdigest() != expected.lower():
            raise DownloadError(
                f"The download of {url} has {algorithm} {digests[algorithm].hexdigest()}, but {expected} was expected: "
                "the file is corrupted or not the one the course knows. It was deleted; try again, and if it "
                "happens again the file has changed upstream."
            )


def cached_url(url: str, *, timeout: float = DOWNLOAD_TIMEOUT) -> Path:
    """The local copy of ``url`` in the course's cache folder, downloaded the first time.

    Files go to ``settings.cache_dir / "downloads"``, named by a hash of the URL plus the URL's
    own file name, so two URLs never share a file. :func:`course_lib.images.load` uses this for
    URLs.

    Raises:
        OfflineError: not cached, and offline or unreachable.
    """
    name = Path(urllib.parse.urlsplit(url).path).name
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)[-80:] or "download"
    key = hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
    path = config.settings.cache_dir / "downloads" / f"{key}-{name}"
    if path.is_file():
        return path
    return download(url, path, timeout=timeout)


#: tarfile's extraction filters (PEP 706) arrived in Python 3.11.4; Debian 12's python3 is 3.11.2.
_TAR_FILTERS = hasattr(tarfile, "data_filter")
_FILTER_ERRORS: tuple[type[Exception], ...] = (tarfile.FilterError,) if _TAR_FILTERS else ()


def extract_tar(archive: str | os.PathLike, folder: str | os.PathLike) -> None:
    """Extract a ``.tgz`` / ``.tar`` archive into an existing ``folder``, refusing anything unsafe.

    Every member is checked before anything is written: only folders and regular files, no
    absolute paths, no ``..``, nothing that would land outside ``folder``, no set-uid or sticky
    bits. Where Python has them, tarfile's own ``"data"`` filter checks again.

    Raises:
        UnsafeArchiveError: a member would escape ``folder``, or is a link or device.
        DownloadError: not a readable tar archive.
    """
    archive, folder = Path(archive), Path(folder)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                _check_member(member, folder, archive)
                member.mode &= 0o755
            tar.extractall(folder, members=members, **({"filter": "data"} if _TAR_FILTERS else {}))
    except _FILTER_ERRORS as error:  # the filter caught what ours missed
        raise UnsafeArchiveError(f"Refused to extract {archive.name}: {error}. Nothing was extracted.") from None
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise DownloadError(f"{archive} is not a readable tar archive ({error}). Delete it and download it again.") from None


def _check_member(member: tarfile.TarInfo, root: Path, archive: Path) -> None:
    name = member.name
    refuse = None
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        refuse = "has an absolute path"
    elif ".." in PurePosixPath(name.replace("\\", "/")).parts:
        refuse = "climbs out with '..'"
    elif not (member.isfile() or member.isdir()):
        refuse = "is a link or a device, not a plain file or folder"
    elif not (root / name).resolve().is_relative_to(root.resolve()):
        refuse = "would land outside the target folder"
    if refuse:
        raise UnsafeArchiveError(
            f"Refused to extract {archive.name}: its member {name!r} {refuse}. Nothing was extracted. "
            "The archive is damaged or malicious; delete it and download it again from the official URL."
        )
