"""Shared fixtures: where the real photos are, and a fresh course data folder per test."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

COURSE_ROOT = Path(__file__).resolve().parent.parent
#: ../shared beside the course (CI lays it out so); tests may read it, never copy it in.
SHARED_DIR = Path(os.environ.get("DEEPDREAM_SHARED_DIR", COURSE_ROOT.parent / "shared")).resolve()
PETS_DIR = SHARED_DIR / "data" / "pets"
PHOTOS_DIR = SHARED_DIR / "data" / "photos"


@pytest.fixture
def pets_dir() -> Path:
    if not PETS_DIR.is_dir():
        pytest.skip(f"the dog photos are not at {PETS_DIR} (../shared/data/pets)")
    return PETS_DIR


@pytest.fixture
def labrador_path() -> Path:
    path = PHOTOS_DIR / "YellowLabradorLooking_new.jpg"
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path
