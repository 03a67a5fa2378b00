"""Every lesson has the shape the course promises: goals, exercises with checks, a summary, slides."""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXPECTED = [
    "00_welcome_and_setup", "01_images_as_arrays", "02_feature_extraction_model", "03_calculate_loss",
    "04_gradient_ascent", "05_octaves", "06_tiled_gradients", "07_transfer_learning_dog_classifier",
    "08_evaluate_classifier", "09_class_channel_visualization", "10_beyond_the_tutorial",
]  # fmt: skip
SLIDE_TYPES = {"slide", "subslide", "fragment", "skip", "notes", "-"}


def _cells(path: Path) -> list:
    return nbformat.read(path, as_version=4).cells


def test_the_lessons_follow_the_lesson_map():
    assert [path.stem for path in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_opens_with_a_title_and_learning_goals(path):
    first = _cells(path)[0]
    assert first.cell_type == "markdown"
    assert first.source.startswith(f"# {path.stem[:2]}")
    assert "## What you will learn" in first.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lesson_ends_with_a_summary_and_next_steps(path):
    markdown = "\n".join(cell.source for cell in _cells(path) if cell.cell_type == "markdown")
    assert "## What you saw" in markdown
    assert "## Next steps" in markdown


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_has_markers_an_instruction_and_a_check_cell_after_it(path):
    cells = _cells(path)
    exercises = [i for i, cell in enumerate(cells) if cell.cell_type == "code" and "### BEGIN SOLUTION" in cell.source]
    assert exercises, "a lesson has at least one exercise"
    for index in exercises:
        source = cells[index].source
        assert source.startswith("# Exercise: "), "the exercise cell starts with its one-line instruction"
        assert source.count("### BEGIN SOLUTION") == source.count("### END SOLUTION")
        following = next(cell for cell in cells[index + 1 :] if cell.cell_type == "code")
        assert following.source.startswith("# NBVAL_CHECK_OUTPUT") and "checks.check_" in following.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_only_checked_cells_keep_outputs_and_never_images(path):
    for cell in _cells(path):
        if cell.cell_type != "code":
            continue
        if "NBVAL_CHECK_OUTPUT" not in cell.source:
            assert not cell.outputs, f"stale output in a cell nbval does not check: {cell.source[:60]!r}"
        for output in cell.outputs:
            assert not any(key.startswith("image/") for key in output.get("data", {})), "image output committed"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_cell_carries_slide_metadata(path):
    for cell in _cells(path):
        slide_type = cell.metadata.get("slideshow", {}).get("slide_type")
        assert slide_type in SLIDE_TYPES, f"cell without slide metadata: {cell.source[:60]!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_lessons_use_no_absolute_paths_into_this_machine(path):
    absolute = re.compile(r"""["'](/(home|root|work|tmp|Users|mnt|opt)/|[A-Za-z]:\\)""")
    for cell in _cells(path):
        if cell.cell_type == "code":
            assert not absolute.search(cell.source), f"absolute path in: {cell.source[:80]!r}"
