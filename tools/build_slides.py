"""Export every lesson as reveal.js slides into ``site/slides/``, presentable with no internet.

Each cell's ``slideshow.slide_type`` metadata (slide, subslide, fragment, skip, -) decides the
slides. reveal.js, require.js, MathJax and the rest come from npm at build time into
``site/vendor/`` (see ``tools/web_assets.py``); the slides reference them by relative paths, so
``site/`` can be copied to a USB stick and opened from disk in a classroom without a network.

Pictures: the lessons in ``notebooks/`` are stored without outputs. When ``make site`` has executed
a lesson (``build/executed/``) and the lesson has not changed since, its slides are made from that
executed copy and show every picture; otherwise they show code and prose only, and this tool says so.

Usage (``make slides`` runs the first):

    python tools/build_slides.py                  # every lesson
    python tools/build_slides.py notebooks/04_gradient_ascent.ipynb
"""
from __future__ import annotations

import argparse
import hashlib
import html
import re
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import web_assets  # noqa: E402
from make_student import lesson_paths  # noqa: E402

from course_lib.config import COURSE_ROOT  # noqa: E402  (web_assets put the course on sys.path)
from course_lib.files import atomic_path  # noqa: E402

#: Executed copies of the lessons, written by tools/build_site.py (git ignores build/).
EXECUTED_DIR = COURSE_ROOT / "build" / "executed"
SLIDE_TYPES = {"slide", "subslide", "fragment", "skip", "notes", "-"}


def source_hash(path: Path) -> str:
    """SHA-256 of a lesson's cell sources and slide metadata: what an executed copy must match."""
    notebook = nbformat.read(path, as_version=4)
    digest = hashlib.sha256()
    for cell in notebook.cells:
        digest.update(cell.cell_type.encode() + b"\0" + cell.source.encode("utf-8") + b"\0")
        digest.update(str(cell.metadata.get("slideshow", {})).encode() + b"\0")
    return digest.hexdigest()


def executed_copy(source: Path, executed_dir: Path = EXECUTED_DIR) -> Path | None:
    """The executed copy of a lesson if it is up to date with the lesson, else None."""
    candidate = executed_dir / source.name
    if not candidate.is_file():
        return None
    build = nbformat.read(candidate, as_version=4).metadata.get("course_build", {})
    return candidate if build.get("source_sha256") == source_hash(source) else None


def lesson_title(notebook: nbformat.NotebookNode, fallback: str) -> str:
    """The lesson's title: the first ``# `` heading of its first markdown cell."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
            break
    return fallback


def check_slide_metadata(notebook: nbformat.NotebookNode, name: str) -> None:
    """Raise ValueError naming the first cell without a valid ``slideshow.slide_type``."""
    for index, cell in enumerate(notebook.cells):
        slide_type = cell.metadata.get("slideshow", {}).get("slide_type")
        if slide_type not in SLIDE_TYPES:
            raise ValueError(
                f"{name}, cell {index}: slideshow.slide_type is {slide_type!r}; expected one of "
                f"{sorted(SLIDE_TYPES)}. Set it in JupyterLab's property inspector (Slide Type)."
            )


def export_slides(source: Path, slides_dir: Path, executed_dir: Path = EXECUTED_DIR) -> tuple[Path, bool]:
    """Export one lesson's slides; return the HTML file and whether it shows executed outputs."""
    executed = executed_copy(source, executed_dir)
    notebook = nbformat.read(executed or source, as_version=4)
    check_slide_metadata(notebook, str(source))
    body, _ = web_assets.slides_exporter(vendor_url="../vendor").from_notebook_node(
        notebook, resources={"metadata": {"name": lesson_title(notebook, source.stem)}})
    target = slides_dir / f"{source.stem}.slides.html"
    with atomic_path(target) as tmp:
        tmp.write_text(body, encoding="utf-8")
    return target, executed is not None


def write_slides_index(slides_dir: Path) -> Path:
    """A page listing every slide deck in ``slides_dir``, in lesson order (file names start with NN_)."""
    items = []
    for deck in sorted(slides_dir.glob("*.slides.html")):
        found = re.search(r"<title>(.*?) slides</title>", deck.read_text(encoding="utf-8"), re.DOTALL)
        title = found.group(1).strip() if found else deck.name
        items.append(f'<li><a href="{html.escape(deck.name)}">{title}</a></li>')
    page = INDEX_PAGE.format(items="\n".join(items))
    target = slides_dir / "index.html"
    with atomic_path(target) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return target


INDEX_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>DeepDream course: slides</title>
<style>body {{ font-family: sans-serif; max-width: 46em; margin: 2em auto; line-height: 1.5; }}</style>
</head><body>
<h1>DeepDream course: slides</h1>
<p>Arrow keys move between slides, <kbd>Esc</kbd> shows an overview, <kbd>S</kbd> opens the speaker notes.</p>
<ol start="0">
{items}
</ol>
</body></html>
"""


def build_slides(sources: list[Path], site_dir: Path = web_assets.SITE_DIR, *,
                 executed_dir: Path = EXECUTED_DIR) -> list[str]:
    """Vendor the assets and export the slides of each lesson; return one report line per lesson.

    Args:
        sources: the lessons (``notebooks/NN_name.ipynb``).
        site_dir: the site folder; slides go to its ``slides/``, assets to its ``vendor/``.
        executed_dir: where ``make site`` keeps executed lessons (their slides show the outputs).
    """
    web_assets.vendor(site_dir)
    slides_dir = site_dir / "slides"
    lines = []
    for source in sources:
        target, with_outputs = export_slides(source, slides_dir, executed_dir)
        how = "with outputs (executed by make site)" if with_outputs else "code and prose only (run make site for pictures)"
        lines.append(f"slides  {target}  {how}")
    write_slides_index(slides_dir)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="lessons (default: every notebooks/NN_*.ipynb)")
    parser.add_argument("--site", type=Path, default=web_assets.SITE_DIR, help="site folder (default: site/)")
    args = parser.parse_args(argv)
    sources = args.notebooks or lesson_paths(COURSE_ROOT / "notebooks")
    try:
        lines = build_slides(sources, args.site)
    except (ValueError, RuntimeError, FileNotFoundError) as error:
        print(f"build_slides: {error}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    print(f"open {args.site / 'slides' / 'index.html'} in a browser (works offline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
