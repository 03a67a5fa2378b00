"""Execute every lesson in full mode and render it to HTML in ``site/``: the course to read, not run.

For each lesson in ``notebooks/`` (in order) this tool:

1. executes it in a fresh kernel in FULL mode (``DEEPDREAM_FAST=0``; ``--fast`` for a quick try),
   from the ``notebooks/`` folder as JupyterLab would, and keeps the executed copy with all its
   pictures in ``build/executed/`` (git ignores it) together with how long it took;
2. renders it to ``site/NN_name.html`` (JupyterLab's look; every script and stylesheet from
   ``site/vendor/``, see ``tools/web_assets.py``, so the pages work offline);
3. exports its slides, now with pictures, to ``site/slides/`` (``tools/build_slides.py``).

Then it writes ``site/index.html``: for each lesson, in order, a thumbnail of its key picture (the
output of the cell tagged ``key-picture``, else the lesson's last picture; a small JPEG in
``site/thumbs/``), one line on what it teaches (from the README's lesson table), its slides and run
time; and ``site/timings.json``. A lesson that fails is still rendered up to the failing cell, marked as
failed in the index, and the tool exits with 1.

Full mode takes long on a CPU (the dreams at 500 px, the training of lesson 07): expect tens of
minutes. Lessons already executed and unchanged since are not run again (``--force`` re-runs them).

Usage (``make site`` runs the first):

    python tools/build_site.py
    python tools/build_site.py --fast notebooks/00_welcome_and_setup.ipynb notebooks/01_images_as_arrays.ipynb
"""
from __future__ import annotations

import argparse
import html
import json
import os
import re
import sys
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import web_assets  # noqa: E402
from build_slides import EXECUTED_DIR, build_slides, lesson_title, source_hash  # noqa: E402
from make_student import lesson_paths  # noqa: E402

from course_lib.config import COURSE_ROOT  # noqa: E402  (web_assets put the course on sys.path)
from course_lib.files import atomic_path  # noqa: E402

#: Seconds one cell may take before the run is declared hung (full-mode training is the longest).
CELL_TIMEOUT = 3600


def kernel_environment(*, fast: bool) -> dict[str, str]:
    """The environment of a lesson's kernel: the course importable, and fast or full mode.

    Lessons 07-09 save and load a trained classifier under ``DEEPDREAM_DATA_DIR``. The site keeps
    its own (in ``build/site-data/``), so building it never replaces a model a student trained.
    """
    env = dict(os.environ)
    env["DEEPDREAM_FAST"] = "1" if fast else "0"
    env.setdefault("DEEPDREAM_DATA_DIR", str(COURSE_ROOT / "build" / "site-data"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(COURSE_ROOT), env.get("PYTHONPATH")]))
    return env


#: TensorFlow's C++ start-up log lines ("I0000 00:00:... port.cc:153] oneDNN custom operations are on",
#: "WARNING: All log messages before absl::InitializeLog() ..."). They are written to the kernel's
#: stderr before Python can silence them (TF_CPP_MIN_LOG_LEVEL does not), say nothing about the
#: lesson, and would open the site's first code cell with a red box.
NATIVE_LOG_LINE = re.compile(r"^(?:WARNING: All log messages before absl::InitializeLog\(\)|[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ )")


def drop_native_log_lines(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove TensorFlow's C++ log lines from stderr outputs (see NATIVE_LOG_LINE); keep all else."""
    for cell in notebook.cells:
        kept = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                text = "".join(line for line in output.text.splitlines(keepends=True) if not NATIVE_LOG_LINE.match(line))
                if not text.strip():
                    continue
                output.text = text
            kept.append(output)
        if cell.cell_type == "code":
            cell.outputs = kept
    return notebook


def execute_lesson(source: Path, *, fast: bool, timeout: int = CELL_TIMEOUT) -> tuple[nbformat.NotebookNode, float, str | None]:
    """Run a lesson top to bottom in a fresh kernel; return the notebook, seconds, and the error if any."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    notebook = nbformat.read(source, as_version=4)
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(source.parent)}})
    started = time.perf_counter()
    error = None
    try:
        client.execute(env=kernel_environment(fast=fast))
    except CellExecutionError as failure:
        error = str(failure).strip().splitlines()[-1] if str(failure).strip() else repr(failure)
    seconds = time.perf_counter() - started
    drop_native_log_lines(notebook)
    notebook.metadata["course_build"] = {
        "source_sha256": source_hash(source),
        "mode": "fast" if fast else "full",
        "seconds": round(seconds, 1),
        "executed_at": time.strftime("%Y-%m-%d %H:%M"),
        "error": error,
    }
    return notebook, seconds, error


def render_lesson(notebook: nbformat.NotebookNode, name: str, site_dir: Path) -> Path:
    """Write one executed lesson as ``site/<name>.html``."""
    body, _ = web_assets.html_exporter(vendor_url="vendor").from_notebook_node(
        notebook, resources={"metadata": {"name": lesson_title(notebook, name)}})
    target = site_dir / f"{name}.html"
    with atomic_path(target) as tmp:
        tmp.write_text(body, encoding="utf-8")
    return target


#: Cell tag of the picture that stands for a lesson in the site's index.
KEY_PICTURE_TAG = "key-picture"
#: Thumbnail width in pixels (twice the displayed width, for sharp screens) and JPEG quality.
THUMB_WIDTH, THUMB_QUALITY = 480, 80


def key_picture(notebook: nbformat.NotebookNode):
    """The lesson's key picture as a PIL image: the tagged cell's last picture, else the lesson's last.

    For an animation (:func:`course_lib.plots.animate`), its last frame: the dream, not the photo.
    """
    import base64
    import io

    import PIL.Image

    def pictures(cell) -> list[bytes]:
        found = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "image/png" in data:
                found.append(base64.b64decode(data["image/png"]))
            match = re.search(r'src="data:image/(?:webp|gif|png);base64,([A-Za-z0-9+/=]+)"', data.get("text/html", ""))
            if match:  # an animation (plots.animate)
                found.append(base64.b64decode(match.group(1)))
        return found

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    tagged = [cell for cell in code if KEY_PICTURE_TAG in cell.metadata.get("tags", [])]
    for cell in tagged + code[::-1]:
        found = pictures(cell)
        if found:
            picture = PIL.Image.open(io.BytesIO(found[-1]))
            if getattr(picture, "is_animated", False):
                picture.seek(picture.n_frames - 1)  # the finished dream; the first frame is the photo
            return picture.convert("RGB")
    return None


def write_thumbnail(notebook: nbformat.NotebookNode, name: str, site_dir: Path) -> str | None:
    """``site/thumbs/<name>.jpg`` from the key picture; its path relative to the site, or None."""
    picture = key_picture(notebook)
    if picture is None:
        return None
    if picture.width > THUMB_WIDTH:
        picture = picture.resize((THUMB_WIDTH, max(1, round(picture.height * THUMB_WIDTH / picture.width))))
    target = site_dir / "thumbs" / f"{name}.jpg"
    with atomic_path(target) as tmp:
        picture.save(tmp, format="JPEG", quality=THUMB_QUALITY, optimize=True)
    return f"thumbs/{name}.jpg"


def lesson_summaries(readme: Path = COURSE_ROOT / "README.md") -> dict[str, str]:
    """One line per lesson, ``"04"`` -> what it teaches, from the README's lesson table (one source)."""
    rows = re.findall(r"^\| (\d\d) \| `[^`]+` \| (.+?) \| [^|]* \|$", readme.read_text(encoding="utf-8"), flags=re.M)
    return {number: re.sub(r"`([^`]*)`", r"\1", text).strip() for number, text in rows}


def write_index(entries: list[dict], site_dir: Path) -> Path:
    """``site/index.html``: a card per lesson (thumbnail, what it teaches, slides, run time, status)."""
    summaries = lesson_summaries()
    cards = []
    for entry in entries:
        name = html.escape(entry["name"])
        status = "" if not entry["error"] else f'<p class="failed">failed: {html.escape(entry["error"])}</p>'
        thumb = entry.get("thumbnail")
        picture = (f'<img src="{html.escape(thumb)}" alt="" loading="lazy">' if thumb
                   else '<div class="nopicture"></div>')
        cards.append(
            f'<li><a class="card" href="{name}.html">{picture}'
            f'<h2>{html.escape(entry["title"])}</h2>'
            f'<p>{html.escape(summaries.get(entry["name"][:2], ""))}</p></a>'
            f'<p class="meta"><a href="slides/{name}.slides.html">slides</a> · '
            f'{entry["mode"]} mode, {entry["seconds"]:.0f} s</p>{status}</li>'
        )
    target = site_dir / "index.html"
    with atomic_path(target) as tmp:
        tmp.write_text(INDEX_PAGE.format(cards="\n".join(cards)), encoding="utf-8")
    return target


INDEX_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>DeepDream course</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; max-width: 72em; margin: 1.5em auto; line-height: 1.5; padding: 0 1em; color: #222; }}
ol.lessons {{ list-style: none; padding: 0; display: grid; gap: 1.2em; grid-template-columns: repeat(auto-fill, minmax(15em, 1fr)); }}
ol.lessons li {{ border: 1px solid #ddd; border-radius: 8px; overflow: hidden; background: #fff; }}
a.card {{ color: inherit; text-decoration: none; display: block; }}
a.card img, .nopicture {{ width: 100%; aspect-ratio: 4 / 3; object-fit: cover; display: block; background: #eee; }}
a.card h2 {{ font-size: 1.05em; margin: 0.6em 0.8em 0.2em; }}
a.card p {{ margin: 0 0.8em; font-size: 0.92em; color: #444; }}
.meta {{ margin: 0.5em 0.8em 0.8em; font-size: 0.85em; color: #666; }} .failed {{ color: #b00020; margin: 0 0.8em 0.8em; }}
</style></head><body>
<h1>DeepDream, from pixels to class channels</h1>
<p>The lessons, executed and rendered for reading. To run them yourself, open the course in
JupyterLab (<code>make study</code> gives you your own copy with the exercises open).</p>
<ol class="lessons">
{cards}
</ol>
<p><a href="slides/index.html">All slide decks</a></p>
</body></html>
"""


def build_site(sources: list[Path], site_dir: Path = web_assets.SITE_DIR, *, fast: bool = False,
               force: bool = False, executed_dir: Path = EXECUTED_DIR) -> tuple[list[dict], int]:
    """Execute (when needed), render and index every lesson; return the index entries and exit code.

    Args:
        sources: the lessons, in order.
        site_dir: where the pages go.
        fast: execute in fast mode (a quick try; readers want full mode).
        force: execute even lessons whose executed copy is up to date.
        executed_dir: where executed copies are kept between runs.
    """
    web_assets.vendor(site_dir)
    entries = []
    for source in sources:
        cached = executed_dir / source.name
        notebook = None
        if cached.is_file() and not force:
            notebook = nbformat.read(cached, as_version=4)
            build = notebook.metadata.get("course_build", {})
            wanted_mode = "fast" if fast else "full"
            if build.get("source_sha256") != source_hash(source) or build.get("mode") != wanted_mode or build.get("error"):
                notebook = None
            else:
                print(f"unchanged {source.name}: executed {build['executed_at']} in {build['seconds']:.0f} s", flush=True)
        if notebook is None:
            print(f"executing {source.name} in {'fast' if fast else 'full'} mode ...", flush=True)
            notebook, seconds, error = execute_lesson(source, fast=fast)
            print(f"          {source.name}: {seconds:.0f} s{'  FAILED: ' + error if error else ''}", flush=True)
            with atomic_path(cached) as tmp:
                nbformat.write(notebook, tmp)
        build = notebook.metadata["course_build"]
        render_lesson(notebook, source.stem, site_dir)
        thumbnail = write_thumbnail(notebook, source.stem, site_dir)
        entries.append({"name": source.stem, "title": lesson_title(notebook, source.stem), "thumbnail": thumbnail, **build})
    for line in build_slides(sources, site_dir, executed_dir=executed_dir):
        print(line)
    # Keep the entries of lessons not rebuilt this time (a partial run must not shrink the index).
    timings_path = site_dir / "timings.json"
    known = {entry["name"]: entry for entry in json.loads(timings_path.read_text())} if timings_path.is_file() else {}
    known.update({entry["name"]: entry for entry in entries})
    ordered = [known[name] for name in sorted(known) if (site_dir / f"{name}.html").is_file()]
    with atomic_path(timings_path) as tmp:
        tmp.write_text(json.dumps(ordered, indent=1) + "\n")
    write_index(ordered, site_dir)
    return entries, 1 if any(entry["error"] for entry in entries) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="lessons (default: every notebooks/NN_*.ipynb)")
    parser.add_argument("--site", type=Path, default=web_assets.SITE_DIR, help="site folder (default: site/)")
    parser.add_argument("--fast", action="store_true", help="execute in fast mode (a quick try, not for readers)")
    parser.add_argument("--force", action="store_true", help="execute even lessons that are unchanged")
    args = parser.parse_args(argv)
    sources = args.notebooks or lesson_paths(COURSE_ROOT / "notebooks")
    started = time.perf_counter()
    try:
        entries, code = build_site(sources, args.site, fast=args.fast, force=args.force)
    except (ValueError, RuntimeError, FileNotFoundError) as error:
        print(f"build_site: {error}", file=sys.stderr)
        return 2
    print(f"site written to {args.site / 'index.html'} in {time.perf_counter() - started:.0f} s")
    for entry in entries:
        if entry["error"]:
            print(f"FAILED {entry['name']}: {entry['error']}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
