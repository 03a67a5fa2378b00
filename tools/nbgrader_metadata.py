"""Mark every lesson's exercises and checks for nbgrader, the Jupyter convention for graded courses.

Each exercise cell (``# Exercise: ...`` with ``### BEGIN SOLUTION`` blocks) becomes an nbgrader
*solution* cell, and the check cell after it a read-only *autograded test* cell worth one point,
named after the check it calls (``checks.check_calc_loss(...)`` -> ``calc_loss`` and
``calc_loss_check``). With this metadata in the lessons, an instructor who runs nbgrader can
release, collect and autograde them as they are (README, "For instructors who grade"). It changes
nothing else: ``make student`` and nbval ignore it.

Usage (idempotent; run it after adding or renaming an exercise):

    python tools/nbgrader_metadata.py              # every notebooks/NN_*.ipynb
    python tools/nbgrader_metadata.py --check      # exit 1 naming the cells whose metadata is missing or stale
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from make_student import find_exercises, lesson_paths  # noqa: E402

from course_lib.config import COURSE_ROOT  # noqa: E402  (make_student put the course on sys.path)
from course_lib.files import atomic_path  # noqa: E402

#: nbgrader's cell-metadata schema version (nbgrader/nbgraderformat/v3.py).
SCHEMA_VERSION = 3
POINTS = 1


def grading_metadata(notebook: nbformat.NotebookNode, *, name: str = "the notebook") -> dict[int, dict]:
    """Cell index -> the ``nbgrader`` metadata that cell should carry (exercises and their checks)."""
    wanted: dict[int, dict] = {}
    used: set[str] = set()
    for exercise in find_exercises(notebook, name=name):
        called = re.search(r"checks\.check_(\w+)\(", notebook.cells[exercise.check_index].source)
        grade_id = re.sub(r"[^A-Za-z0-9_-]", "_", called.group(1) if called else f"cell{exercise.cell_index}")
        while grade_id in used:  # two exercises checked by the same check: keep the ids unique
            grade_id += "_2"
        used.add(grade_id)
        wanted[exercise.cell_index] = {"grade": False, "solution": True, "locked": False, "grade_id": grade_id,
                                       "schema_version": SCHEMA_VERSION}
        wanted[exercise.check_index] = {"grade": True, "solution": False, "locked": True, "points": POINTS,
                                        "grade_id": f"{grade_id}_check", "schema_version": SCHEMA_VERSION}
    return wanted


def stale_cells(notebook: nbformat.NotebookNode, *, name: str = "the notebook") -> list[int]:
    """Indexes of cells whose nbgrader metadata is missing, wrong, or left on a cell that is no exercise."""
    wanted = grading_metadata(notebook, name=name)
    return [index for index, cell in enumerate(notebook.cells)
            if cell.metadata.get("nbgrader") != wanted.get(index)]


def apply(path: Path) -> bool:
    """Write the metadata into one lesson; True if it changed."""
    notebook = nbformat.read(path, as_version=4)
    wanted = grading_metadata(notebook, name=path.name)
    changed = False
    for index, cell in enumerate(notebook.cells):
        if cell.metadata.get("nbgrader") != wanted.get(index):
            changed = True
            if index in wanted:
                cell.metadata["nbgrader"] = wanted[index]
            else:
                cell.metadata.pop("nbgrader", None)
    if changed:
        with atomic_path(path) as temporary:
            nbformat.write(notebook, temporary)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="lessons (default: every notebooks/NN_*.ipynb)")
    parser.add_argument("--check", action="store_true", help="only report lessons whose metadata is stale")
    args = parser.parse_args(argv)
    paths = args.notebooks or lesson_paths(COURSE_ROOT / "notebooks")
    stale = 0
    for path in paths:
        if args.check:
            cells = stale_cells(nbformat.read(path, as_version=4), name=path.name)
            if cells:
                stale += 1
                print(f"{path.name}: nbgrader metadata missing or stale in cells {cells}; "
                      "run python tools/nbgrader_metadata.py")
        elif apply(path):
            print(f"marked {path.name}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
