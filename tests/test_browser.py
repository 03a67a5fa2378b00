"""The course in a real browser: Playwright driving Debian's Chromium (``/usr/bin/chromium``).

- The exported slides open from disk, with every request to the network refused, and the first
  slide of lesson 04 shows the lesson's title.
- JupyterLab opens the lesson with the dream explorer in fast mode, runs all its cells, the
  explorer's widgets render, and pressing Run puts a dream image in the output area.

Screenshots go to ``artifacts/`` (git ignores it). Without Chromium these tests are skipped with
the reason; with ``DEEPDREAM_REQUIRE_BROWSER=1`` (set by CI) a missing browser is a failure.
Playwright never downloads a browser here: it is told to use Debian's.
"""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

COURSE_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(COURSE_ROOT / "tools"))
from build_site import kernel_environment  # noqa: E402
from build_slides import build_slides, lesson_title  # noqa: E402
from make_student import lesson_paths  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = COURSE_ROOT / "artifacts"
#: Flags for a headless Chromium with no background traffic: its update, sync and metrics
#: connections are refused on machines without internet and would only add noise and delay.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
#: The lesson the issue names for both browser tests.
SLIDES_LESSON_PREFIX = "04_"
#: Steps per octave typed into the explorer before Run: enough for visible dream patterns at fast
#: mode's small size, few enough to take seconds.
EXPLORER_STEPS = 8
#: Seconds JupyterLab may take to run all cells of the lesson in fast mode on a busy 2-core CPU.
RUN_ALL_TIMEOUT = 300


def _browser_missing() -> str | None:
    if not CHROMIUM.is_file():
        return (f"{CHROMIUM} is missing: install Debian's browser with `apt-get install -y chromium` "
                "(.ci/run does it in CI) to run the browser tests")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is missing: `pip install -r requirements.txt`"
    return None


_MISSING = _browser_missing()
if _MISSING and os.environ.get("DEEPDREAM_REQUIRE_BROWSER", "") == "1":
    raise RuntimeError(f"DEEPDREAM_REQUIRE_BROWSER=1 but {_MISSING}")
pytestmark = pytest.mark.skipif(_MISSING is not None, reason=_MISSING or "")


def lesson_with_prefix(prefix: str) -> Path:
    matches = [path for path in lesson_paths(COURSE_ROOT / "notebooks") if path.name.startswith(prefix)]
    if not matches:
        pytest.fail(f"no lesson notebooks/{prefix}*.ipynb")
    return matches[0]


def dream_explorer_lesson() -> Path:
    """Lesson 04 if it shows the dream explorer, else the first lesson that does."""
    lessons = lesson_paths(COURSE_ROOT / "notebooks")
    preferred = sorted(lessons, key=lambda path: not path.name.startswith(SLIDES_LESSON_PREFIX))
    for path in preferred:
        if "dream_explorer(" in path.read_text(encoding="utf-8"):
            return path
    pytest.fail("no lesson calls widgets.dream_explorer(...)")


@pytest.fixture(scope="module")
def browser():
    """A headless Debian Chromium with a fresh profile, closed at the end."""
    from playwright.sync_api import sync_playwright

    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS, headless=True,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


def screenshot(page, name: str, **options) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), **options)
    return path


# --- Slides ---------------------------------------------------------------------------------------

def test_slides_of_lesson_04_open_offline_and_show_its_title(browser, tmp_path):
    lesson = lesson_with_prefix(SLIDES_LESSON_PREFIX)
    build_slides([lesson], tmp_path)
    title = lesson_title(nbformat.read(lesson, as_version=4), lesson.stem)
    page = browser.new_page()
    refused: list[str] = []

    def only_local(route):
        if route.request.url.startswith(("file:", "data:", "blob:")):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(request.url))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto((tmp_path / "slides" / f"{lesson.stem}.slides.html").as_uri())
        # reveal.js marks its root "ready" once it has laid out the slides (it is an AMD module
        # loaded by require.js here, so there is no global Reveal to ask).
        page.wait_for_selector(".reveal.ready", timeout=30_000)
        first = page.locator(".reveal .slides > section.present").first
        first.locator("h1").first.wait_for(state="visible", timeout=10_000)
        shown = first.locator("h1").first.inner_text()
        screenshot(page, "slides_04_first.png")
        page.keyboard.press("ArrowRight")
        page.wait_for_timeout(800)  # the slide transition
        screenshot(page, "slides_04_second.png")
        position = page.evaluate("Array.from(document.querySelectorAll('.reveal .slides > section'))"
                                 ".findIndex(section => section.classList.contains('present'))")
    finally:
        page.close()
    assert refused == [], f"the slides tried to load from the network: {refused}"
    assert [url for url in failed if url not in refused] == [], f"files missing beside the slides: {failed}"
    assert errors == [], f"JavaScript errors: {errors}"
    # reveal.js upper-cases headings with CSS; the text itself is the lesson's title.
    assert shown.casefold() == title.casefold()
    assert position == 1, f"the arrow key did not move to the second slide (now at slide {position})"


# --- JupyterLab -------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def jupyter_lab(tmp_path_factory):
    """JupyterLab on a free local port, fast mode, serving a temporary copy of notebooks/."""
    notebooks = tmp_path_factory.mktemp("lab") / "notebooks"
    shutil.copytree(COURSE_ROOT / "notebooks", notebooks, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    home = tmp_path_factory.mktemp("lab-home")
    port, token = _free_port(), secrets.token_hex(16)
    env = kernel_environment(fast=True)
    # JupyterLab's settings and workspaces in a temporary place: the user's own are never touched.
    env.update(JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTERLAB_SETTINGS_DIR=str(home / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"))
    # No "Would you like to get notified about official Jupyter news?" toast over the notebook.
    news = home / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false"}')
    log = (home / "jupyter.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--notebook-dir={notebooks}", "--expose-app-in-browser",
         "--allow-root",  # CI runs as root
         # Nothing from the internet: no news feed, no update check, no extension search on PyPI.
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
         "--LabApp.extension_manager=readonly"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not start: {(home / 'jupyter.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield {"base": base, "token": token, "notebooks": notebooks, "log": home / "jupyter.log"}
    finally:
        stop_process_group(server)
        log.close()


def stop_process_group(process: subprocess.Popen) -> None:
    """Stop a server started in its own session, with its kernels: SIGTERM, then SIGKILL after 30 s."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


#: JavaScript: the state of every code cell of the open notebook, from JupyterLab's own model
#: (the page's text is no guide: JupyterLab does not render cells scrolled out of view).
CELL_STATES = """() => {
  const panel = window.jupyterapp.shell.currentWidget;
  if (!panel || !panel.content || !panel.content.model) return null;
  const states = [];
  panel.content.widgets.forEach((view, index) => {
    const cell = view.model;
    if (cell.type !== 'code') return;
    const error = cell.outputs.toJSON().find(output => output.output_type === 'error');
    states.push({
      index: index,
      count: cell.executionCount,
      busy: (view.promptNode && view.promptNode.textContent.includes('*')) || cell.executionState === 'running',
      error: error ? `${error.ename}: ${error.evalue}` : null,
    });
  });
  return states;
}"""


#: JavaScript: the explorer's picture under a label ("original" or "dream") once it has loaded,
#: else null. ipywidgets renders a box's children asynchronously, so on a busy machine the
#: explorer's controls can be on the page before its pictures: this is polled, never asked once.
LOADED_PICTURE_UNDER_LABEL = """([root, label]) => {
  for (const box of root.querySelectorAll('.widget-vbox')) {
    const parts = Array.from(box.children);
    // The label first, then the picture (the dream's box also holds a line shown until the first Run).
    if (parts.length >= 2 && parts[0].textContent.trim() === label) {
      const picture = parts.find(part => part.tagName === 'IMG');
      if (picture && picture.complete && picture.naturalWidth > 0) return picture;
    }
  }
  return null;
}"""


#: JavaScript: what the explorer's boxes hold, for the failure message when a picture never loads.
EXPLORER_PICTURES = """root => Array.from(root.querySelectorAll('.widget-vbox')).map(box => Array.from(box.children)
  .map(part => part.tagName === 'IMG'
       ? `IMG(complete=${part.complete}, width=${part.naturalWidth}, display=${getComputedStyle(part).display})`
       : JSON.stringify(part.textContent.trim().slice(0, 40))).join(' | '))"""


def loaded_picture(page, explorer, label: str, timeout_seconds: float):
    """The explorer's picture under ``label``, waiting until it is on the page and decoded."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    root = explorer.element_handle()
    try:
        return page.wait_for_function(LOADED_PICTURE_UNDER_LABEL, arg=[root, label], polling=250,
                                      timeout=timeout_seconds * 1000).as_element()
    except PlaywrightTimeout:
        screenshot(page, f"lab_no_{label}_picture.png")
        boxes = "\n".join(root.evaluate(EXPLORER_PICTURES))
        raise AssertionError(f"the explorer's {label} picture did not load in {timeout_seconds} s; "
                             f"its boxes hold:\n{boxes}") from None


#: JavaScript: mean absolute difference (0..255) between two same-size pictures' RGB values.
MEAN_DIFFERENCE = """([first, second]) => {
  const pixels = img => {
    const canvas = document.createElement('canvas');
    canvas.width = first.naturalWidth; canvas.height = first.naturalHeight;
    const context = canvas.getContext('2d');
    context.drawImage(img, 0, 0, canvas.width, canvas.height);
    return context.getImageData(0, 0, canvas.width, canvas.height).data;
  };
  const a = pixels(first), b = pixels(second);
  let total = 0, count = 0;
  for (let i = 0; i < a.length; i += 4) {
    for (let c = 0; c < 3; c++) { total += Math.abs(a[i + c] - b[i + c]); count++; }
  }
  return total / count;
}"""


def test_jupyterlab_runs_the_dream_explorer_lesson_and_shows_a_dream(browser, jupyter_lab):
    lesson = dream_explorer_lesson()
    page = browser.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{jupyter_lab['base']}/lab/tree/{lesson.name}?token={jupyter_lab['token']}")
        page.wait_for_function("window.jupyterapp && document.querySelector('.jp-NotebookPanel .jp-CodeCell')")
        # Wait until the kernel is ready, then run every cell as a student would (Run > Run All Cells).
        page.wait_for_function("""() => {
            const widget = window.jupyterapp.shell.currentWidget;
            return widget && widget.sessionContext && widget.sessionContext.session
                && widget.sessionContext.session.kernel && widget.sessionContext.session.kernel.status === 'idle';
        }""", timeout=120_000)
        page.evaluate("window.jupyterapp.shell.collapseLeft()")  # more room for the notebook
        started = time.monotonic()
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        # Done when the kernel is idle, no cell is running or queued ([*]), and either every cell
        # has run (has an execution count) or one failed (Run All stops there).
        try:
            page.wait_for_function(f"""() => {{
                const cells = ({CELL_STATES})();
                const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
                return cells && cells.length > 0 && kernel.status === 'idle' && cells.every(c => !c.busy)
                    && (cells.some(c => c.error) || cells.every(c => c.count));
            }}""", timeout=RUN_ALL_TIMEOUT * 1000, polling=2000)
        finally:
            run_all_seconds = time.monotonic() - started
            states = page.evaluate(CELL_STATES)
            screenshot(page, "lab_after_run_all.png")
        errors = [state["error"] for state in states if state["error"]]
        assert not errors, f"a cell of {lesson.name} failed in JupyterLab:\n{errors[0]}"
        not_run = [state["index"] for state in states if not state["count"]]
        assert not not_run, f"cells {not_run} of {lesson.name} did not run"

        # The dream explorer's widgets render: the layer list, sliders and the Run button.
        explorer = page.locator(".jupyter-widgets.widget-vbox:has(.widget-select-multiple):has(button:has-text('Run'))").first
        explorer.scroll_into_view_if_needed()
        explorer.wait_for(state="visible")
        # Each child of a box renders when its own view is ready, in any order: wait for the parts.
        explorer.locator(".widget-select-multiple select option").nth(3).wait_for(state="attached", timeout=60_000)
        explorer.locator(".widget-slider, .widget-hslider").nth(2).wait_for(state="attached", timeout=60_000)
        original = loaded_picture(page, explorer, "original", 60)  # the explorer shows the original photo

        # Type a number of steps into the slider's readout, as a student would (fast mode starts the
        # slider at 2 steps, too few for a dream that shows in a screenshot), then press Run: the
        # dream appears in the output area, beside the original.
        steps = explorer.locator(".widget-slider", has=page.locator("label", has_text="steps")).first
        readout = steps.locator(".widget-readout")
        readout.click()
        page.keyboard.press("Control+A")
        page.keyboard.type(str(EXPLORER_STEPS))
        page.keyboard.press("Enter")
        assert readout.inner_text().strip() == str(EXPLORER_STEPS), "the steps slider did not take the typed value"
        started = time.monotonic()
        explorer.locator("button:has-text('Run')").first.click()
        dream = loaded_picture(page, explorer, "dream", RUN_ALL_TIMEOUT)
        dream_seconds = time.monotonic() - started
        explorer.screenshot(path=str(ARTIFACTS / "lab_dream_explorer.png"))
        screenshot(page, "lab_after_dream.png")
        status = explorer.locator(".widget-html").filter(has_text="Dreamed in").count()
        size = dream.evaluate("img => [img.naturalWidth, img.naturalHeight]")
        change = page.evaluate(MEAN_DIFFERENCE, [original, dream])
        pictures = page.locator(".jp-OutputArea-output img").count()
    finally:
        page.close()
    print(f"{lesson.name}: run all {run_all_seconds:.0f} s, explorer dream {dream_seconds:.0f} s, "
          f"dream {size[0]}x{size[1]} px differing from the photo by {change:.1f}/255 on average, "
          f"{pictures} pictures in the outputs")
    assert status == 1, "the explorer's status line does not report the dream"
    assert min(size) >= 32
    assert change > 2, f"the dream is the photo unchanged (mean difference {change:.2f} of 255)"
    assert pictures >= 2, "the lesson's own pictures are missing from the output area"
