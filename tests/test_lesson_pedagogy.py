"""The teaching promises of docs/WRITING_LESSONS.md: students build the algorithms, questions with
hidden answers, speaker notes on every slide, short code on slides."""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest

COURSE_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(COURSE_ROOT / "tools"))
import make_student  # noqa: E402

NOTEBOOKS = sorted((COURSE_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TAUGHT = [path for path in NOTEBOOKS if path.stem[:2] >= "01"]  # every lesson but the welcome
MAX_SLIDE_CODE_LINES = 25


def _notebook(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _slide_type(cell) -> str:
    return cell.metadata.get("slideshow", {}).get("slide_type", "-")


def _solution_lines(source: str) -> int:
    """Lines of real code between the solution markers (no blanks, no comments)."""
    inside, count = False, 0
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == make_student.BEGIN_MARKER:
            inside = True
        elif stripped == make_student.END_MARKER:
            inside = False
        elif inside and stripped and not stripped.startswith("#"):
            count += 1
    return count


@pytest.mark.parametrize("path", TAUGHT, ids=lambda p: p.stem)
def test_every_lesson_has_at_least_two_exercises(path):
    exercises = make_student.find_exercises(_notebook(path), name=path.name)
    assert len(exercises) >= 2, f"{path.stem}: {len(exercises)} exercise(s); the course promises two or more"


def test_at_least_six_exercises_have_solutions_of_eight_or_more_lines():
    long = [f"{path.stem}: {exercise.instruction[:50]}"
            for path in NOTEBOOKS for exercise in make_student.find_exercises(_notebook(path), name=path.name)
            if _solution_lines(exercise.solution_source) >= 8]
    assert len(long) >= 6, f"only {len(long)} exercises with 8+ lines of solution: {long}"


@pytest.mark.parametrize("path", TAUGHT, ids=lambda p: p.stem)
def test_check_your_understanding_has_four_to_eight_questions_and_hidden_answers(path):
    cells = _notebook(path).cells
    heading = [i for i, cell in enumerate(cells)
               if cell.cell_type == "markdown" and cell.source.lstrip().startswith("## Check your understanding")]
    assert len(heading) == 1, f"{path.stem}: one '## Check your understanding' section"
    questions = re.findall(r"^\s*\d+\.\s", cells[heading[0]].source, flags=re.M)
    assert 4 <= len(questions) <= 8, f"{path.stem}: {len(questions)} questions (4-8)"
    answers = cells[heading[0] + 1]
    assert answers.cell_type == "markdown" and make_student.ANSWERS_TAG in answers.metadata.get("tags", []), (
        f"{path.stem}: the cell after the questions holds the answers, tagged '{make_student.ANSWERS_TAG}'")
    assert len(re.findall(r"^\s*\d+\.\s", answers.source, flags=re.M)) == len(questions), "one answer per question"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_slide_has_speaker_notes(path):
    cells = _notebook(path).cells
    starts = [i for i, cell in enumerate(cells) if _slide_type(cell) in ("slide", "subslide")]
    missing = []
    for number, start in enumerate(starts):
        end = starts[number + 1] if number + 1 < len(starts) else len(cells)
        notes = [cell for cell in cells[start:end] if _slide_type(cell) == "notes"]
        if not notes or not notes[0].source.startswith("Notes ("):
            missing.append(cells[start].source.splitlines()[0][:60] if cells[start].source else f"cell {start}")
    assert not missing, f"{path.stem}: slides without 'Notes (N min): ...' cells: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_code_cell_on_a_slide_is_longer_than_25_lines(path):
    long = [f"{len(cell.source.splitlines())} lines: {cell.source.splitlines()[0][:50]!r}"
            for cell in _notebook(path).cells
            if cell.cell_type == "code" and _slide_type(cell) != "skip"
            and len(cell.source.splitlines()) > MAX_SLIDE_CODE_LINES]
    assert not long, f"{path.stem}: split these cells or move the plumbing into course_lib: {long}"
