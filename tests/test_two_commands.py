"""The README's two commands: `make lab` serves the lessons, and set-up is done once only."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get_json(url: str, *, patience: float = 60.0) -> dict:
    """GET a JSON reply, waiting while the server finishes starting (a refused connection)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            with urllib.request.urlopen(url, timeout=30) as reply:
                return json.load(reply)
        except urllib.error.URLError as error:
            if time.monotonic() > deadline or not isinstance(error.reason, ConnectionRefusedError):
                raise
            time.sleep(0.5)


def test_setup_is_up_to_date_after_the_first_run():
    # `make -q` exits 0 only when the target needs no work: a second `make test` reinstalls nothing.
    assert subprocess.run(["make", "-q", "setup"], cwd=ROOT).returncode == 0


def test_make_lab_serves_the_lessons_and_its_rest_api_lists_them():
    port = _free_port()
    lab = subprocess.Popen(
        ["make", "lab", f"LAB_ARGS=--no-browser --port {port} --ServerApp.port_retries=0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        token, deadline, log = None, time.monotonic() + 120, []
        while token is None and time.monotonic() < deadline:
            line = lab.stdout.readline()
            if not line and lab.poll() is not None:
                break
            log.append(line)
            found = re.search(rf"127\.0\.0\.1:{port}/lab\?token=([0-9a-f]+)", line)
            token = found.group(1) if found else None
        assert token, "JupyterLab printed no URL with a token:\n" + "".join(log[-20:])
        listing = _get_json(f"http://127.0.0.1:{port}/api/contents?token={token}")
        names = {item["name"] for item in listing["content"]}
        assert {"00_welcome_and_setup.ipynb", "09_class_channel_visualization.ipynb"} <= names
        assert all(item["type"] == "notebook" for item in listing["content"] if item["name"].endswith(".ipynb"))
    finally:
        os.killpg(lab.pid, signal.SIGTERM)
        try:
            lab.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(lab.pid, signal.SIGKILL)
