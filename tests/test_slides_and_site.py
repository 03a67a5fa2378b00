"""Specification of the slides (``make slides``) and the read-only site (``make site``).

Every lesson carries slide metadata; the exported pages load nothing from the internet (reveal.js,
require.js, MathJax and the widget renderer come from npm into ``site/vendor/``), and every file
they load is there. The site tool executes, renders and indexes lessons (tried here on a tiny one).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import numpy as np
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

COURSE_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(COURSE_ROOT / "tools"))
import build_site  # noqa: E402
import web_assets  # noqa: E402
from build_slides import build_slides, check_slide_metadata  # noqa: E402
from make_student import lesson_paths  # noqa: E402

LESSONS = lesson_paths(COURSE_ROOT / "notebooks")


def lesson_id(path: Path) -> str:
    return path.stem


# --- Slide metadata on the lessons ----------------------------------------------------------------

@pytest.mark.parametrize("lesson", LESSONS, ids=lesson_id)
def test_every_cell_of_every_lesson_has_a_slide_type(lesson):
    check_slide_metadata(nbformat.read(lesson, as_version=4), lesson.name)


@pytest.mark.parametrize("lesson", LESSONS, ids=lesson_id)
def test_title_and_every_section_open_a_new_slide(lesson):
    notebook = nbformat.read(lesson, as_version=4)
    assert notebook.cells[0].metadata["slideshow"]["slide_type"] == "slide", "the title cell must open a slide"
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type == "markdown" and cell.source.startswith("## "):
            assert cell.metadata["slideshow"]["slide_type"] in ("slide", "skip"), (
                f"{lesson.name}, cell {index} ({cell.source.splitlines()[0]!r}) starts a section but not a slide "
                "(mark it 'slide', or 'skip' for plumbing such as Setup)")


def test_a_cell_without_slide_metadata_is_named():
    notebook = new_notebook(cells=[new_markdown_cell("# 99 · x")])
    with pytest.raises(ValueError, match="99_x.ipynb, cell 0: slideshow.slide_type is None"):
        check_slide_metadata(notebook, "99_x.ipynb")


# --- Pages that work offline ---------------------------------------------------------------------

def local_files_loaded(page: Path) -> list[Path]:
    """The files a page loads by relative URL (scripts, stylesheets), resolved beside the page."""
    text = page.read_text(encoding="utf-8")
    urls = re.findall(r"""<script[^>]*\ssrc=["']([^"']+)["']|<link[^>]*\shref=["']([^"']+)["']""", text)
    urls += [(url, "") for url in re.findall(r"""widgetRendererSrc = ['"]([^'"]+)['"]""", text)]
    # Modules that require.js loads by path, e.g. require(["../vendor/reveal.js/dist/reveal.js", ...]).
    urls += [(url, "") for url in re.findall(r'''["']((?:\.\./)?vendor/[^"'\s]+\.js)["']''', text)]
    files = []
    for script, link in urls:
        url = script or link
        if url.startswith(("#", "data:")):
            continue
        files.append((page.parent / unquote(urlsplit(url).path)).resolve())
    return files


@pytest.fixture(scope="module")
def slides_site(tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("site")
    build_slides(LESSONS, site)
    return site


@pytest.mark.parametrize("lesson", LESSONS, ids=lesson_id)
def test_slides_load_nothing_from_the_internet_and_everything_they_load_is_there(lesson, slides_site):
    page = slides_site / "slides" / f"{lesson.stem}.slides.html"
    assert web_assets.remote_references(page.read_text(encoding="utf-8")) == []
    loaded = local_files_loaded(page)
    assert any(path.name == "reveal.js" for path in loaded), "the slides do not load reveal.js"
    missing = [str(path) for path in loaded if path.suffix in (".js", ".css") and not path.is_file()]
    assert missing == []


def test_vendored_stylesheets_import_no_web_fonts(slides_site):
    theme = (slides_site / "vendor" / "reveal.js" / "dist" / "theme" / "white.css").read_text()
    assert web_assets.remote_references(theme) == []
    assert "@import url(./fonts/source-sans-pro/source-sans-pro.css)" in theme


def test_remote_reference_detector_catches_nbconvert_default_cdns():
    from nbconvert import SlidesExporter

    notebook = new_notebook(cells=[new_markdown_cell("# 99 · x\n\n$x^2$")])
    body, _ = SlidesExporter().from_notebook_node(notebook)
    found = web_assets.remote_references(body)
    assert any("reveal.js" in url for url in found) and any("require" in url for url in found)
    assert web_assets.remote_references('<a href="https://distill.pub/">Distill</a>') == []


def test_slides_index_lists_decks_in_lesson_order(slides_site):
    index = (slides_site / "slides" / "index.html").read_text()
    positions = [index.index(f"{lesson.stem}.slides.html") for lesson in LESSONS]
    assert positions == sorted(positions)


# --- The read-only site, on a tiny lesson ----------------------------------------------------------

def tiny_lesson_with_a_widget() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell("# 98 · A tiny lesson\n\nFor testing the site.\n\n$$x = \\frac{p}{127.5} - 1$$"),
        new_markdown_cell("## Progress"),
        new_code_cell("import ipywidgets\nbar = ipywidgets.IntProgress(value=3, max=5, description='epochs')\nbar"),
        new_code_cell("print('answer:', 6 * 7)"),
    ]
    for cell, slide_type in zip(cells, ["slide", "slide", "-", "fragment"]):
        cell.metadata["slideshow"] = {"slide_type": slide_type}
    return new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                              "language": "python"}})


def test_site_executes_renders_and_indexes_a_lesson_offline(tmp_path, capsys):
    source = tmp_path / "notebooks" / "98_tiny.ipynb"
    source.parent.mkdir()
    nbformat.write(tiny_lesson_with_a_widget(), source)
    site, executed = tmp_path / "site", tmp_path / "executed"

    entries, code = build_site.build_site([source], site, fast=True, executed_dir=executed)

    assert code == 0 and entries[0]["error"] is None and entries[0]["mode"] == "fast"
    page = (site / "98_tiny.html").read_text(encoding="utf-8")
    assert "answer: 42" in page, "the page shows the executed output"
    assert "application/vnd.jupyter.widget-state+json" in page, "the widget's state is saved for the renderer"
    assert web_assets.remote_references(page) == []
    assert [str(path) for path in local_files_loaded(site / "98_tiny.html") if not path.is_file()] == []
    index = (site / "index.html").read_text()
    assert 'href="98_tiny.html"' in index and "98 · A tiny lesson" in index
    assert 'href="slides/98_tiny.slides.html"' in index
    assert "answer: 42" in (site / "slides" / "98_tiny.slides.html").read_text(), "slides show executed outputs"
    capsys.readouterr()
    build_site.build_site([source], site, fast=True, executed_dir=executed)
    assert "unchanged 98_tiny.ipynb" in capsys.readouterr().out, "an unchanged lesson is not executed again"


def _picture_cell(colour: tuple[int, int, int], *, tagged: bool = False):
    code = (f"import PIL.Image; from IPython.display import display; "
            f"display(PIL.Image.new('RGB', (800, 600), {colour!r}))")
    cell = new_code_cell(code)
    cell.metadata["slideshow"] = {"slide_type": "-"}
    if tagged:
        cell.metadata["tags"] = ["key-picture"]
    return cell


@pytest.mark.parametrize("tagged, expected", [(True, (200, 30, 30)), (False, (30, 30, 200))])
def test_site_index_shows_the_key_picture_as_a_small_thumbnail_and_what_the_lesson_teaches(tmp_path, tagged,
                                                                                          expected):
    import PIL.Image

    notebook = tiny_lesson_with_a_widget()
    notebook.cells += [_picture_cell((200, 30, 30), tagged=tagged), _picture_cell((30, 30, 200))]
    source = tmp_path / "notebooks" / "04_tiny.ipynb"  # 04: the README's lesson table has a line for it
    source.parent.mkdir()
    nbformat.write(notebook, source)
    site = tmp_path / "site"
    build_site.build_site([source], site, fast=True, executed_dir=tmp_path / "executed")
    thumb = site / "thumbs" / "04_tiny.jpg"
    picture = PIL.Image.open(thumb)
    assert picture.width == build_site.THUMB_WIDTH and thumb.stat().st_size < 40_000, "small enough for a phone"
    assert np.abs(np.asarray(picture)[10, 10].astype(int) - expected).max() < 20, "the tagged picture, else the last"
    index = (site / "index.html").read_text()
    assert 'src="thumbs/04_tiny.jpg"' in index and 'name="viewport"' in index
    assert build_site.lesson_summaries()["04"] in index
    assert web_assets.remote_references(index) == []


def test_an_animation_key_picture_gives_its_last_frame_the_dream_not_the_photo():
    from course_lib import plots

    frames = [np.full((60, 80, 3), value, np.uint8) for value in (10, 120, 240)]  # photo ... finished dream
    cell = new_code_cell("")
    cell.metadata["tags"] = ["key-picture"]
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": plots.animate(frames)._repr_html_()})]
    picture = build_site.key_picture(nbformat.v4.new_notebook(cells=[cell]))
    assert abs(int(np.asarray(picture)[30, 40].mean()) - 240) < 10


def test_site_marks_a_failing_lesson_and_exits_1(tmp_path):
    notebook = tiny_lesson_with_a_widget()
    notebook.cells[3].source = "raise ValueError('broken on purpose')"
    source = tmp_path / "notebooks" / "97_broken.ipynb"
    source.parent.mkdir()
    nbformat.write(notebook, source)
    entries, code = build_site.build_site([source], tmp_path / "site", fast=True, executed_dir=tmp_path / "executed")
    assert code == 1 and "broken on purpose" in entries[0]["error"]
    assert "failed" in (tmp_path / "site" / "index.html").read_text()


def test_tensorflow_start_up_log_lines_are_dropped_and_real_warnings_kept():
    notebook = new_notebook(cells=[new_code_cell("import tensorflow", outputs=[nbformat.v4.new_output(
        "stream", name="stderr",
        text="WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
             "I0000 00:00:1795894514.880650   10469 port.cc:153] oneDNN custom operations are on.\n"
             "UserWarning: the photo is tiny\n")])])
    build_site.drop_native_log_lines(notebook)
    assert notebook.cells[0].outputs[0].text == "UserWarning: the photo is tiny\n"
