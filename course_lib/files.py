"""Writing files so that nothing is ever half-written, and checking what was written.

A crash, a full disk or Ctrl-C in the middle of a save must leave either the old file or the new
one, never a truncated mix. Every writer in the course goes through :func:`atomic_path`.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it over ``target`` only on success.

    The temporary file lives in the same folder, so the final ``os.replace`` is atomic. If the
    body raises, the temporary file is removed and ``target`` is untouched.

    Args:
        target: the file to create or replace. Its folder is created if missing.
        suffix: suffix of the temporary file (default: the target's), for writers that choose a
            format by extension, such as Keras' ``model.save``.

    Example:
        >>> with atomic_path("out.png") as tmp:
        ...     image.save(tmp)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.partial-",
        suffix=target.suffix if suffix is None else suffix,
        dir=target.parent,
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); a saved dream, model or web page should get the
        # permissions any new file gets here (0644 with the usual umask), like a plain open() would.
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sha256_of(path: str | os.PathLike, *, chunk_size: int = 1 << 20) -> str:
    """The hex SHA-256 of a file, read in chunks so large files need little memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def md5_of(path: str | os.PathLike, *, chunk_size: int = 1 << 20) -> str:
    """The hex MD5 of a file (fast.ai publishes MD5 sums for its data sets)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()
