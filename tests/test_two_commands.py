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


def _serve(target: str, *extra: str):
    """Start `make <target>` on a free port; return (process, base URL, token) once it prints its URL."""
    port = _free_port()
    lab = subprocess.Popen(
        ["make", target, f"LAB_ARGS=--no-browser --port {port} --ServerApp.port_retries=0", *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    token, deadline, log = None, time.monotonic() + 180, []
    while token is None and time.monotonic() < deadline:
        line = lab.stdout.readline()
        if not line and lab.poll() is not None:
            break
        log.append(line)
        found = re.search(rf"127\.0\.0\.1:{port}/lab\?token=([0-9a-f]+)", line)
        token = found.group(1) if found else None
    if token is None:
        _stop(lab)
        raise AssertionError(f"make {target}: JupyterLab printed no URL with a token:\n" + "".join(log[-20:]))
    return lab, f"http://127.0.0.1:{port}", token, log


def _stop(lab: subprocess.Popen) -> None:
    os.killpg(lab.pid, signal.SIGTERM)
    try:
        lab.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(lab.pid, signal.SIGKILL)


def test_make_lab_serves_the_lessons_and_its_rest_api_lists_them():
    lab, base, token, _ = _serve("lab")
    try:
        listing = _get_json(f"{base}/api/contents?token={token}")
        names = {item["name"] for item in listing["content"]}
        assert {"00_welcome_and_setup.ipynb", "09_class_channel_visualization.ipynb"} <= names
        assert all(item["type"] == "notebook" for item in listing["content"] if item["name"].endswith(".ipynb"))
        # The course's JupyterLab settings: no "get notified about official Jupyter news?" pop-up.
        news = _get_json(f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification?token={token}")
        # jupyter/overrides.json, installed by `make setup`, changes the defaults JupyterLab serves.
        assert news["schema"]["properties"]["fetchNews"]["default"] == "false"
    finally:
        _stop(lab)


def test_make_study_makes_the_students_copy_and_opens_it(tmp_path):
    copy = tmp_path / "my-course"
    lab, base, token, log = _serve("study", f"STUDENT_DIR={copy}")
    try:
        listing = _get_json(f"{base}/api/contents?token={token}")
        names = {item["name"] for item in listing["content"]}
        assert "04_gradient_ascent.ipynb" in names and (copy / "04_gradient_ascent.ipynb").is_file()
        student = json.loads((copy / "04_gradient_ascent.ipynb").read_text())
        sources = ["".join(cell["source"]) for cell in student["cells"]]
        assert any("raise NotImplementedError(" in source for source in sources), "the exercises are open"
        assert not any("### BEGIN SOLUTION" in source for source in sources)
    finally:
        _stop(lab)
