"""Specification of course_lib.files: atomic writes that leave no half-written file and normal permissions."""
from __future__ import annotations

import os
import stat

import pytest

from course_lib import files


def test_a_written_file_gets_the_permissions_of_any_new_file(tmp_path):
    old = os.umask(0o022)
    try:
        with files.atomic_path(tmp_path / "dream.png") as temporary:
            temporary.write_bytes(b"picture")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "dream.png").stat().st_mode) == 0o644  # not mkstemp's private 0600


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "model.keras"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with files.atomic_path(target) as temporary:
            temporary.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]
