"""nbgrader can release, collect and autograde the lessons as they are (README, "For instructors who grade")."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

COURSE_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(COURSE_ROOT / "tools"))
import nbgrader_metadata  # noqa: E402
from make_student import lesson_paths  # noqa: E402

LESSONS = lesson_paths(COURSE_ROOT / "notebooks")
BIN = Path(sys.executable).parent


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda path: path.stem)
def test_every_exercise_and_check_carries_nbgrader_metadata(lesson):
    stale = nbgrader_metadata.stale_cells(nbformat.read(lesson, as_version=4), name=lesson.name)
    assert not stale, f"{lesson.name}: cells {stale}; run `python tools/nbgrader_metadata.py`"


def test_the_metadata_tool_marks_a_lesson_and_then_finds_nothing_stale(tmp_path):
    copy = tmp_path / LESSONS[0].name
    notebook = nbformat.read(LESSONS[0], as_version=4)
    for cell in notebook.cells:
        cell.metadata.pop("nbgrader", None)
    nbformat.write(notebook, copy)
    assert nbgrader_metadata.stale_cells(nbformat.read(copy, as_version=4))
    assert nbgrader_metadata.apply(copy) and not nbgrader_metadata.apply(copy)  # idempotent
    marked = nbformat.read(copy, as_version=4)
    solutions = [c.metadata["nbgrader"] for c in marked.cells if c.metadata.get("nbgrader", {}).get("solution")]
    tests = [c.metadata["nbgrader"] for c in marked.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert solutions and len(solutions) == len(tests)
    assert all(t["locked"] and t["points"] == 1 and t["grade_id"].endswith("_check") for t in tests)


def _nbgrader(*args: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    result = subprocess.run([str(BIN / "nbgrader"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=900)
    assert result.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.mark.slow
def test_nbgrader_releases_stubs_and_autogrades_the_solved_lesson_full_and_the_stub_zero(tmp_path):
    course = tmp_path / "grading"
    (course / "source" / "lesson00").mkdir(parents=True)
    shutil.copy(COURSE_ROOT / "grading" / "nbgrader_config.py", course)
    shutil.copy(LESSONS[0], course / "source" / "lesson00" / "lesson00.ipynb")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",  # nbgrader runs alembic
           "DEEPDREAM_FAST": "1", "DEEPDREAM_DATA_DIR": str(tmp_path / "data")}

    _nbgrader("generate_assignment", "lesson00", cwd=course, env=env)
    released = nbformat.read(course / "release" / "lesson00" / "lesson00.ipynb", as_version=4)
    solution_cells = [cell for cell in released.cells if cell.metadata.get("nbgrader", {}).get("solution")]
    assert solution_cells and all("BEGIN SOLUTION" not in cell.source and "NotImplementedError" in cell.source
                                  for cell in solution_cells)

    for student, notebook in [("solved", course / "source" / "lesson00" / "lesson00.ipynb"),
                              ("untouched", course / "release" / "lesson00" / "lesson00.ipynb")]:
        (course / "submitted" / student / "lesson00").mkdir(parents=True)
        shutil.copy(notebook, course / "submitted" / student / "lesson00" / "lesson00.ipynb")
    _nbgrader("autograde", "lesson00", cwd=course, env=env)

    read_scores = (
        "import json; from nbgrader.api import Gradebook\n"
        "with Gradebook('sqlite:///gradebook.db', course_id='deepdream') as gb:\n"
        "    print(json.dumps({s: [gb.find_submission('lesson00', s).score, gb.find_submission('lesson00', s).max_score]"
        " for s in ('solved', 'untouched')}))"
    )
    scores = json.loads(subprocess.run([sys.executable, "-c", read_scores], cwd=course, env=env, capture_output=True,
                                       text=True, check=True).stdout)
    points = len([c for c in solution_cells])
    assert scores == {"solved": [points, points], "untouched": [0, points]}
