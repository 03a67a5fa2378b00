"""Shared fixtures: where the real photos are, and a fresh course data folder per test."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

COURSE_ROOT = Path(__file__).resolve().parent.parent
#: The real photos committed with the course (data/samples): the tests need nothing beside the clone.
SAMPLES_DIR = COURSE_ROOT / "data" / "samples"
PETS_DIR = SAMPLES_DIR / "pets"
PHOTOS_PER_CLASS = 30
LABRADOR = SAMPLES_DIR / "photos" / "YellowLabradorLooking_new.jpg"


@pytest.fixture
def pets_dir() -> Path:
    """The committed dog-breed sample: 9 class folders of 30 real photos (never skipped: it is in git)."""
    assert PETS_DIR.is_dir(), f"the committed sample {PETS_DIR} is missing: restore it with git checkout"
    return PETS_DIR


@pytest.fixture
def labrador_path() -> Path:
    """The committed copy of the tutorial's photo."""
    assert LABRADOR.is_file(), f"the committed photo {LABRADOR} is missing: restore it with git checkout"
    return LABRADOR


# --- images and data (helper A): a real HTTP server on 127.0.0.1, and settings pointed at tmp_path ---


@dataclasses.dataclass
class LocalServer:
    """A real HTTP server on 127.0.0.1 serving the files in ``root``; ``requests`` logs every path asked for."""

    root: Path
    base_url: str
    requests: list
    #: ``/name`` -> extra bytes to announce in Content-Length beyond what is sent (a dropped connection)
    overstate_length: dict = dataclasses.field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"


@pytest.fixture
def http_server(tmp_path, monkeypatch) -> LocalServer:
    import http.server
    import threading

    root = tmp_path / "served"
    root.mkdir()
    requests: list[str] = []
    overstate_length: dict[str, int] = {}

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def send_head(self):
            requests.append(self.path)
            return super().send_head()

        def send_header(self, keyword: str, value: str) -> None:
            if keyword == "Content-Length" and self.path in overstate_length:
                value = str(int(value) + overstate_length[self.path])  # then the body ends and HTTP/1.0 closes
            super().send_header(keyword, value)

        def log_message(self, *args) -> None:  # keep pytest's output clean
            pass

    for variable in ("no_proxy", "NO_PROXY"):  # a user's proxy must not intercept 127.0.0.1
        monkeypatch.setenv(variable, "127.0.0.1,localhost")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield LocalServer(root, f"http://127.0.0.1:{server.server_address[1]}", requests, overstate_length)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def course_settings(monkeypatch, tmp_path):
    """Point ``course_lib.config.settings`` at fresh folders in tmp_path (online, full mode, no pets dir).

    Returns a function that changes more settings for this test, e.g. ``course_settings(offline=True)``.
    """
    from course_lib import config

    def override(**changes):
        changed = dataclasses.replace(config.settings, **changes)
        monkeypatch.setattr(config, "settings", changed)
        return changed

    override(offline=False, fast=False, pets_dir=None, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache")
    from course_lib import data

    monkeypatch.setattr(data, "_labrador_download_failed", [])  # each test may try the download again
    return override
