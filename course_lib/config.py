"""Settings read once from the environment.

Every knob that differs between a student's laptop, an instructor's machine and CI lives here,
so that a lesson never reads ``os.environ`` itself and two lessons can never disagree.

Environment variables:

``DEEPDREAM_FAST=1``
    Fast mode, used by CI: smaller images, fewer steps and epochs. It changes *sizes*, never code
    paths: every line a student runs also runs in CI. Use :func:`choose` to pick a size.
``DEEPDREAM_OFFLINE=1``
    Never touch the network. Downloads raise :class:`OfflineError` naming the file and where to
    put it by hand.
``DEEPDREAM_PETS_DIR``
    A folder of breed sub-folders to train on (lessons 07-09).
``DEEPDREAM_DATA_DIR``
    Where trained models and the downloaded dog data set go (default: ``data/`` in the course).
``DEEPDREAM_CACHE_DIR``
    Where downloaded photos go (default: ``~/.cache/deepdream-course``).
``DEEPDREAM_SEED``
    Random seed for everything random in the course (default 1234).
``DEEPDREAM_GRADIENT_FORMS``
    Pins the input-gradient forms of the dream engine's strided convolutions instead of timing
    them once per machine (:func:`course_lib.strided_gradients.choose_forms`): ``auto`` (default,
    timed), one form for every strided layer (``tensorflow``, ``polyphase``, ``padded``), or
    ``layer=form,layer=form``. A form that does not apply to a layer is an error when the engine is built.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

#: The course's own folder (the one holding ``course_lib/``, ``notebooks/`` and ``data/``).
COURSE_ROOT = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


def _flag(name: str) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"{name}={value!r} is not understood. Use 1 to switch it on or 0 to switch it off.")


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not a whole number. Set it to e.g. {default}.") from None


def _path(name: str, default: Path) -> Path:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else default


@dataclass(frozen=True)
class Settings:
    """The course's settings; read once at import as :data:`settings`."""

    fast: bool
    offline: bool
    pets_dir: Path | None
    data_dir: Path
    cache_dir: Path
    seed: int
    gradient_forms: str = "auto"

    @property
    def models_dir(self) -> Path:
        """Where trained classifiers are saved (git ignores it)."""
        return self.data_dir / "models"

    def describe(self) -> str:
        """A short, human-readable summary for lesson 00 and the command line."""
        return "\n".join(
            [
                f"fast mode:  {'on (CI sizes)' if self.fast else 'off (full sizes)'}",
                f"offline:    {'yes, never downloads' if self.offline else 'no, may download once'}",
                f"pets data:  {self.pets_dir or '(not set: data/pets, else ImageWoof online, else the sample offline)'}",
                f"data dir:   {self.data_dir}",
                f"cache dir:  {self.cache_dir}",
                f"seed:       {self.seed}",
            ]
        )


def load_settings() -> Settings:
    """Read the settings from the environment (see the module docstring)."""
    pets = os.environ.get("DEEPDREAM_PETS_DIR", "").strip()
    return Settings(
        fast=_flag("DEEPDREAM_FAST"),
        offline=_flag("DEEPDREAM_OFFLINE"),
        pets_dir=Path(pets).expanduser().resolve() if pets else None,
        data_dir=_path("DEEPDREAM_DATA_DIR", COURSE_ROOT / "data"),
        cache_dir=_path("DEEPDREAM_CACHE_DIR", Path.home() / ".cache" / "deepdream-course"),
        seed=_int("DEEPDREAM_SEED", 1234),
        gradient_forms=os.environ.get("DEEPDREAM_GRADIENT_FORMS", "").strip() or "auto",
    )


#: The settings in force, read once when the course is imported.
settings: Settings = load_settings()


def choose(*, full: T, fast: T) -> T:
    """Pick a size for the current mode: ``steps = choose(full=100, fast=4)``.

    Only sizes (pixels, steps, epochs) may differ between modes, never which code runs.
    """
    return fast if settings.fast else full
