"""Write the student edition of the lessons: exercises open, answers hidden, no outputs, and a student's work never lost.

Every lesson in ``notebooks/`` becomes a copy in ``student/`` (git ignores it) in which each block
between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` is replaced by one line,
``raise NotImplementedError("<the exercise's instruction>")``, indented like the block it replaces.
The instruction is the exercise cell's first line, ``# Exercise: <instruction>``. Check cells stay,
so a student who runs the notebook stops at the first exercise with a message naming it, and sees
"Correct: ..." once the exercise is done. Cells tagged ``answers`` (the answers to "Check your
understanding") become one line saying where the answers are, and speaker notes are emptied. All
outputs are removed.

A student's copy is never overwritten once edited. Each written copy's SHA-256 is recorded in
``student/.written.json``; a copy whose bytes match none of the recorded versions has been edited,
so it is kept, the new version is written beside it as ``NN_name.new.ipynb``, and the tool says so.

Usage (from the course folder, inside the course's environment; ``make student`` runs the first):

    python tools/make_student.py                      # every lesson in notebooks/ -> student/
    python tools/make_student.py --dest ~/my-course notebooks/04_gradient_ascent.ipynb
"""
from __future__ import annotations

import argparse
import copy
import hashlib
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script from a fresh clone
from course_lib.config import COURSE_ROOT  # noqa: E402
from course_lib.files import atomic_path  # noqa: E402

EXERCISE_PREFIX = "# Exercise:"
BEGIN_MARKER = "### BEGIN SOLUTION"
END_MARKER = "### END SOLUTION"
CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"
#: Cell tag of the answers to "Check your understanding" (and other instructor-only text): in the
#: student edition the cell becomes one line saying where the answers are.
ANSWERS_TAG = "answers"
ANSWERS_PLACEHOLDER = "*Answers: think them through first, then ask your instructor (they are in the instructor's edition).*"
#: Where the hashes of the written copies are kept, inside the destination folder.
RECORD_NAME = ".written.json"
#: How many written versions of one lesson are remembered (any of them counts as "not edited").
VERSIONS_REMEMBERED = 50


class StudentEditionError(ValueError):
    """A lesson's exercise markers are malformed; the message names the notebook and the cell."""


@dataclass(frozen=True)
class Exercise:
    """One exercise of a lesson: where it is, what it asks, and the cell that checks it.

    Attributes:
        cell_index: index of the exercise cell in the notebook.
        instruction: the text after ``# Exercise:`` on the cell's first line.
        check_index: index of the next code cell, which must be a ``# NBVAL_CHECK_OUTPUT`` check.
        solution_source: the exercise cell's full source in the instructor's edition.
        student_source: the same cell with every solution block replaced by the stub.
    """

    cell_index: int
    instruction: str
    check_index: int
    solution_source: str
    student_source: str


def stub_line(instruction: str, indent: str) -> str:
    """The line that replaces a solution block: ``raise NotImplementedError("<instruction>")``."""
    return f"{indent}raise NotImplementedError({json.dumps(instruction, ensure_ascii=False)})"


def strip_solution(source: str, instruction: str, *, where: str = "this cell") -> str:
    """Replace each ``### BEGIN SOLUTION`` .. ``### END SOLUTION`` block of ``source`` by the stub.

    Args:
        source: the exercise cell's code.
        instruction: the exercise's one-line instruction, which the stub's error message repeats.
        where: names the cell in error messages, e.g. ``"notebooks/04_x.ipynb, cell 12"``.

    Returns:
        The code with each block (markers included) replaced by one ``raise NotImplementedError``
        line, indented like the ``### BEGIN SOLUTION`` line.

    Raises:
        StudentEditionError: a marker without its partner, nested blocks, or no block at all.

    Example:
        >>> strip_solution("def f(x):\\n    ### BEGIN SOLUTION\\n    return x\\n    ### END SOLUTION", "return x")
        'def f(x):\\n    raise NotImplementedError("return x")'
    """
    lines = source.splitlines()
    result: list[str] = []
    block_indent: str | None = None
    blocks = 0
    for number, line in enumerate(lines, start=1):
        marker = line.strip()
        if marker == BEGIN_MARKER:
            if block_indent is not None:
                raise StudentEditionError(
                    f"{where}, line {number}: '{BEGIN_MARKER}' inside another solution block. "
                    f"Close the first block with '{END_MARKER}' before opening a new one."
                )
            block_indent = line[: len(line) - len(line.lstrip())]
            result.append(stub_line(instruction, block_indent))
            blocks += 1
        elif marker == END_MARKER:
            if block_indent is None:
                raise StudentEditionError(
                    f"{where}, line {number}: '{END_MARKER}' without a '{BEGIN_MARKER}' before it."
                )
            block_indent = None
        elif block_indent is None:
            result.append(line)
    if block_indent is not None:
        raise StudentEditionError(f"{where}: '{BEGIN_MARKER}' is never closed. Add a '{END_MARKER}' line.")
    if blocks == 0:
        raise StudentEditionError(
            f"{where}: the cell starts with '{EXERCISE_PREFIX}' but has no '{BEGIN_MARKER}' block. "
            "Put the solution between the two marker lines."
        )
    return "\n".join(result)


def restore_solution(student_source: str, solution_source: str) -> str:
    """Paste the solution back into a student's exercise cell, as a student would.

    Each stub line is replaced by the corresponding solution block (markers included), in order.
    Used by the tests to show that the student edition differs from the lesson only by its stubs.
    """
    solution_lines = solution_source.splitlines()
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in solution_lines:
        if line.strip() == BEGIN_MARKER:
            current = [line]
        elif line.strip() == END_MARKER and current is not None:
            current.append(line)
            blocks.append(current)
            current = None
        elif current is not None:
            current.append(line)
    restored: list[str] = []
    stub = re.compile(r"^\s*raise NotImplementedError\(.*\)$")
    for line in student_source.splitlines():
        if blocks and stub.match(line):
            restored.extend(blocks.pop(0))
        else:
            restored.append(line)
    return "\n".join(restored)


def instruction_of(source: str) -> str | None:
    """The instruction of an exercise cell (text after ``# Exercise:`` on line 1), else None."""
    first_line = source.lstrip("\n").split("\n", 1)[0].strip()
    if not first_line.startswith(EXERCISE_PREFIX):
        return None
    instruction = first_line[len(EXERCISE_PREFIX):].strip()
    return instruction or None


def find_exercises(notebook: nbformat.NotebookNode, *, name: str = "the notebook") -> list[Exercise]:
    """Every exercise of a lesson, with its check cell, validated.

    Raises:
        StudentEditionError: solution markers in a cell that is not an exercise, an exercise with an
            empty instruction, or an exercise not followed by a ``# NBVAL_CHECK_OUTPUT`` check cell.
    """
    exercises: list[Exercise] = []
    cells = notebook.cells
    for index, cell in enumerate(cells):
        if cell.cell_type != "code":
            continue
        where = f"{name}, cell {index}"
        first_line = cell.source.lstrip("\n").split("\n", 1)[0].strip()
        has_markers = BEGIN_MARKER in cell.source or END_MARKER in cell.source
        if not first_line.startswith(EXERCISE_PREFIX):
            if has_markers:
                raise StudentEditionError(
                    f"{where}: has solution markers but its first line is not '{EXERCISE_PREFIX} <instruction>'. "
                    "Start the cell with that line so the student edition can say what to do."
                )
            continue
        instruction = instruction_of(cell.source)
        if instruction is None:
            raise StudentEditionError(f"{where}: '{EXERCISE_PREFIX}' is followed by no instruction.")
        check_index = next((i for i in range(index + 1, len(cells)) if cells[i].cell_type == "code"), None)
        if check_index is None or not cells[check_index].source.lstrip().startswith(CHECK_MARKER):
            raise StudentEditionError(
                f"{where}: the exercise '{instruction}' needs a check cell right after it, "
                f"starting with '{CHECK_MARKER}' and calling checks.check_...(...)."
            )
        exercises.append(
            Exercise(
                cell_index=index,
                instruction=instruction,
                check_index=check_index,
                solution_source=cell.source,
                student_source=strip_solution(cell.source, instruction, where=where),
            )
        )
    return exercises


def student_notebook(notebook: nbformat.NotebookNode, *, name: str = "the notebook") -> nbformat.NotebookNode:
    """The student edition of one lesson: solutions replaced by stubs, no outputs, slides kept.

    Raises:
        StudentEditionError: see :func:`find_exercises`; also a lesson with no exercise at all.
    """
    exercises = find_exercises(notebook, name=name)
    if not exercises:
        raise StudentEditionError(
            f"{name} has no exercise (a code cell starting with '{EXERCISE_PREFIX} <instruction>'). "
            "Every lesson needs at least one."
        )
    student = copy.deepcopy(notebook)
    for exercise in exercises:
        student.cells[exercise.cell_index].source = exercise.student_source
    for cell in student.cells:
        if ANSWERS_TAG in cell.metadata.get("tags", []):
            cell.source = ANSWERS_PLACEHOLDER
            cell.metadata["tags"] = [tag for tag in cell.metadata["tags"] if tag != ANSWERS_TAG]
        if cell.metadata.get("slideshow", {}).get("slide_type") == "notes":
            cell.source = ""  # the instructor's speaker notes: not for the student's copy (cells keep their places)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    student.metadata.pop("widgets", None)
    return student


def notebook_bytes(notebook: nbformat.NotebookNode) -> bytes:
    """The exact bytes written for a notebook (nbformat's layout, one final newline)."""
    return (nbformat.writes(notebook) + "\n").encode("utf-8")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_record(dest: Path) -> dict[str, list[str]]:
    record_path = dest / RECORD_NAME
    if not record_path.is_file():
        return {}
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}  # an unreadable record: every existing copy counts as edited, so none is lost
    return {name: list(hashes) for name, hashes in record.items() if isinstance(hashes, list)}


def _write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def publish_copy(dest: Path, filename: str, data: bytes, record: dict[str, list[str]]) -> str:
    """Write one student copy without ever overwriting a student's edits; return what happened.

    Args:
        dest: the student folder.
        filename: e.g. ``"04_gradient_ascent.ipynb"``.
        data: the new copy's bytes.
        record: name -> SHA-256 of every version written so far; updated in place.

    Returns:
        One line for the user: written, updated, up to date, or kept (with the new file's name).
    """
    target = dest / filename
    new_hash = _sha256(data)
    written_before = record.setdefault(filename, [])

    def remember(name: str) -> None:
        hashes = record.setdefault(name, [])
        if new_hash in hashes:
            hashes.remove(new_hash)
        hashes.append(new_hash)
        del hashes[:-VERSIONS_REMEMBERED]

    beside = target.with_name(f"{target.stem}.new{target.suffix}")

    def drop_unedited_beside() -> None:  # a .new copy left from before, now that target is current
        if beside.exists() and _sha256(beside.read_bytes()) in record.get(beside.name, []):
            beside.unlink()

    if not target.exists():
        _write_bytes(target, data)
        remember(filename)
        drop_unedited_beside()
        return f"wrote    {target}"
    on_disk = _sha256(target.read_bytes())
    if on_disk == new_hash:
        remember(filename)
        drop_unedited_beside()
        return f"same     {target} (up to date)"
    if on_disk in written_before:  # untouched since this tool wrote it: safe to replace
        _write_bytes(target, data)
        remember(filename)
        drop_unedited_beside()
        return f"updated  {target}"
    if beside.exists() and _sha256(beside.read_bytes()) not in record.get(beside.name, []) + [new_hash]:
        return (f"KEPT     {target} (you edited it) and {beside} (edited too): nothing written. "
                f"Rename {beside.name} and run again to get the new version.")
    _write_bytes(beside, data)
    remember(beside.name)
    return (f"KEPT     {target}: you edited it, so it was not touched. "
            f"The new version is {beside}; copy over what you need.")


def make_student_edition(sources: list[Path], dest: Path) -> list[str]:
    """Write the student edition of each lesson into ``dest``; return one report line per lesson.

    All lessons are checked before any file is written, so a malformed lesson writes nothing.
    """
    editions = []
    for source in sources:
        notebook = nbformat.read(source, as_version=4)
        editions.append((source.name, notebook_bytes(student_notebook(notebook, name=str(source)))))
    dest.mkdir(parents=True, exist_ok=True)
    record = _read_record(dest)
    lines = [publish_copy(dest, filename, data, record) for filename, data in editions]
    with atomic_path(dest / RECORD_NAME) as tmp:
        tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return lines


def lesson_paths(folder: Path) -> list[Path]:
    """The lessons of a folder, in order: ``NN_name.ipynb`` files (not ``.new`` copies or checkpoints)."""
    return sorted(path for path in folder.glob("[0-9][0-9]_*.ipynb") if ".new." not in path.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="lessons (default: every notebooks/NN_*.ipynb)")
    parser.add_argument("--dest", type=Path, default=COURSE_ROOT / "student", help="student folder (default: student/)")
    args = parser.parse_args(argv)
    sources = args.notebooks or lesson_paths(COURSE_ROOT / "notebooks")
    if not sources:
        print("no lessons found in notebooks/", file=sys.stderr)
        return 2
    try:
        lines = make_student_edition(sources, args.dest)
    except (StudentEditionError, FileNotFoundError) as error:
        print(f"make_student: {error}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    kept = sum(line.startswith("KEPT") for line in lines)
    if kept:
        print(f"{kept} edited cop{'y was' if kept == 1 else 'ies were'} kept; see the .new.ipynb files beside them.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
