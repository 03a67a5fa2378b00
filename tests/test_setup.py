"""The set-up itself: pins agree, settings are read correctly, the repository stays clean."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from course_lib import config

ROOT = Path(__file__).resolve().parent.parent


def _pins(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        match = re.match(r"^\s*(?:-\s+)?([A-Za-z0-9_.\-]+)==([^\s#]+)", line)
        if match:
            pins[match.group(1).lower()] = match.group(2)
    return pins


def test_environment_yml_pins_agree_with_requirements_txt():
    requirements = _pins((ROOT / "requirements.txt").read_text())
    conda = _pins((ROOT / "environment.yml").read_text())
    assert requirements, "requirements.txt pins nothing"
    assert conda == requirements


def test_every_requirement_is_pinned_exactly():
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            assert re.match(r"^[A-Za-z0-9_.\-\[\]]+==\S+$", line), f"not pinned with ==: {line!r}"


def test_the_user_fixed_packages_are_all_required():
    required = _pins((ROOT / "requirements.txt").read_text())
    for package in ["jupyterlab", "tensorflow", "matplotlib", "ipywidgets", "nbval", "pillow"]:
        assert package in required


def test_fast_mode_and_seed_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("DEEPDREAM_FAST", "1")
    monkeypatch.setenv("DEEPDREAM_SEED", "7")
    monkeypatch.setenv("DEEPDREAM_PETS_DIR", "/some/where")
    settings = config.load_settings()
    assert settings.fast and settings.seed == 7 and settings.pets_dir == Path("/some/where")


def test_unclear_flag_values_are_refused_with_the_accepted_ones(monkeypatch):
    monkeypatch.setenv("DEEPDREAM_FAST", "maybe")
    with pytest.raises(ValueError, match="DEEPDREAM_FAST='maybe'.*Use 1.*or 0"):
        config.load_settings()


def test_a_seed_that_is_not_a_number_is_refused(monkeypatch):
    monkeypatch.setenv("DEEPDREAM_SEED", "abc")
    with pytest.raises(ValueError, match="DEEPDREAM_SEED='abc' is not a whole number"):
        config.load_settings()


def test_choose_picks_the_size_of_the_current_mode(monkeypatch):
    import dataclasses

    monkeypatch.setattr(config, "settings", dataclasses.replace(config.settings, fast=True))
    assert config.choose(full=100, fast=3) == 3
    monkeypatch.setattr(config, "settings", dataclasses.replace(config.settings, fast=False))
    assert config.choose(full=100, fast=3) == 100


def test_no_tracked_file_is_large_or_a_dataset_or_weights():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for name in tracked:
        path = ROOT / name
        assert not re.search(r"\.(h5|keras|tgz|tar\.gz|zip|npz)$", name), f"{name} looks like data or weights"
        if path.is_file():
            assert path.stat().st_size < 500_000, f"{name} is over 500 kB"
