"""Specification of the student edition (tools/make_student.py, ``make student``).

A student's copy has every solution replaced by a stub that names the exercise, keeps the check
cells, carries no outputs, stops at its first exercise with a message naming it, passes its check
once the solution is pasted back, and is never overwritten once the student has edited it.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

COURSE_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(COURSE_ROOT / "tools"))
import make_student  # noqa: E402
from build_site import kernel_environment  # noqa: E402
from make_student import StudentEditionError  # noqa: E402

LESSONS = make_student.lesson_paths(COURSE_ROOT / "notebooks")
#: Seconds one cell may take when a student lesson runs in fast mode (lesson 07 trains in fast mode).
CELL_TIMEOUT = 600


def tiny_lesson(solution: str = "    return 2 * x") -> nbformat.NotebookNode:
    """A lesson in miniature: title, setup with its own check, one exercise, its check cell."""
    def slide(cell, slide_type):
        cell.metadata["slideshow"] = {"slide_type": slide_type}
        return cell

    return new_notebook(cells=[
        slide(new_markdown_cell("# 99 · Doubling\n\nA lesson in miniature."), "slide"),
        slide(new_code_cell(
            "from course_lib import checks\n\n"
            "def check_double(student_function):\n"
            "    checks.assert_close(checks.call_student(student_function, 21), 42, 'double(21)')\n"
            "    checks.passed('double(21) is 42.')"), "skip"),
        slide(new_code_cell(
            "# Exercise: return twice the number you are given.\n"
            "def double(x):\n"
            "    ### BEGIN SOLUTION\n"
            f"{solution}\n"
            "    ### END SOLUTION"), "-"),
        slide(new_code_cell("# NBVAL_CHECK_OUTPUT\ncheck_double(double)",
                            outputs=[nbformat.v4.new_output("stream", name="stdout", text="Correct: double(21) is 42.\n")]),
              "-"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def write(notebook: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)
    return path


def run_until_first_check(student: nbformat.NotebookNode, solution: nbformat.NotebookNode, workdir: Path):
    """Run a student notebook cell by cell up to its first check, then paste the solution back.

    Returns ``(error, check_output, seconds)``: the error that stopped the student's run, the text
    the check cell printed after the solution was restored, and the time it all took.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    exercise = make_student.find_exercises(solution)[0]
    env = kernel_environment(fast=True)  # fast mode: lessons 07-09 use the committed sample of dog photos
    client = NotebookClient(student, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(workdir)}})
    started = time.perf_counter()
    error = None
    with client.setup_kernel(env=env):
        for index in range(exercise.check_index + 1):
            cell = student.cells[index]
            if cell.cell_type != "code":
                continue
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as stopped:
                assert index in (exercise.cell_index, exercise.check_index), (
                    f"cell {index} failed before the first exercise: {stopped.ename}: {stopped.evalue}")
                error = stopped
                break
        # The student pastes the solution back and runs the exercise and its check again.
        restored = nbformat.v4.new_code_cell(make_student.restore_solution(
            student.cells[exercise.cell_index].source, exercise.solution_source))
        client.execute_cell(restored, exercise.cell_index)
        check = nbformat.v4.new_code_cell(student.cells[exercise.check_index].source)
        client.execute_cell(check, exercise.check_index)
    printed = "".join(output.get("text", "") for output in check.outputs if output.get("output_type") == "stream")
    return error, printed, time.perf_counter() - started


# --- The transformation ------------------------------------------------------------------------

def test_solution_block_becomes_a_stub_naming_the_instruction_with_the_block_indentation():
    student = make_student.student_notebook(tiny_lesson())
    assert student.cells[2].source == (
        "# Exercise: return twice the number you are given.\n"
        "def double(x):\n"
        '    raise NotImplementedError("return twice the number you are given.")'
    )


def test_every_block_of_a_cell_is_replaced_and_the_code_around_it_stays():
    source = ("# Exercise: fill both gaps.\nimport math\nif True:\n        ### BEGIN SOLUTION\n        a = 1\n"
              "        ### END SOLUTION\nb = 2\n### BEGIN SOLUTION\nc = 3\n### END SOLUTION\nprint(b)")
    stripped = make_student.strip_solution(source, "fill both gaps.")
    assert stripped.splitlines() == [
        "# Exercise: fill both gaps.", "import math", "if True:",
        '        raise NotImplementedError("fill both gaps.")', "b = 2",
        'raise NotImplementedError("fill both gaps.")', "print(b)",
    ]
    assert make_student.restore_solution(stripped, source) == source


def test_instruction_with_quotes_and_backslashes_stays_valid_python():
    stripped = make_student.strip_solution('def f():\n    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION',
                                           'use "np.clip" and a \\ sign')
    namespace: dict = {}
    exec(compile(stripped, "<stub>", "exec"), namespace)  # noqa: S102 - our own generated code
    with pytest.raises(NotImplementedError, match='use "np.clip" and a'):
        namespace["f"]()


def test_student_edition_keeps_check_cells_and_slides_and_drops_outputs():
    lesson = tiny_lesson()
    lesson.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="noise\n")]
    lesson.cells[1].execution_count = 3
    student = make_student.student_notebook(lesson)
    assert student.cells[3].source == lesson.cells[3].source
    assert all(cell.get("outputs", []) == [] for cell in student.cells)
    assert all(cell.get("execution_count") is None for cell in student.cells if cell.cell_type == "code")
    assert [cell.metadata["slideshow"] for cell in student.cells] == [cell.metadata["slideshow"] for cell in lesson.cells]
    assert lesson.cells[1].outputs, "the lesson itself must not be changed"


@pytest.mark.parametrize("source, complaint", [
    ("# Exercise: x\n### BEGIN SOLUTION\nx = 1", "never closed"),
    ("# Exercise: x\nx = 1\n### END SOLUTION", "without a '### BEGIN SOLUTION'"),
    ("# Exercise: x\n### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "inside another"),
    ("# Exercise: x\nx = 1", "has no '### BEGIN SOLUTION' block"),
    ("x = 2\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "first line is not '# Exercise:"),
])
def test_malformed_exercise_is_refused_naming_the_cell(source, complaint):
    lesson = tiny_lesson()
    lesson.cells[2].source = source
    with pytest.raises(StudentEditionError, match="cell 2") as refused:
        make_student.student_notebook(lesson, name="99_tiny.ipynb")
    assert complaint in str(refused.value)


def test_exercise_without_a_check_cell_is_refused():
    lesson = tiny_lesson()
    lesson.cells[3].source = "check_double(double)"
    with pytest.raises(StudentEditionError, match="needs a check cell"):
        make_student.student_notebook(lesson)


def test_lesson_without_any_exercise_is_refused():
    lesson = tiny_lesson()
    del lesson.cells[2:]
    with pytest.raises(StudentEditionError, match="has no exercise"):
        make_student.student_notebook(lesson, name="99_tiny.ipynb")


# --- Never losing a student's work ---------------------------------------------------------------

def test_edited_student_copy_survives_a_second_run_and_the_new_version_lands_beside_it(tmp_path, capsys):
    source = write(tiny_lesson(), tmp_path / "notebooks" / "99_tiny.ipynb")
    dest = tmp_path / "student"
    assert make_student.main(["--dest", str(dest), str(source)]) == 0
    copy = dest / "99_tiny.ipynb"
    work = nbformat.read(copy, as_version=4)
    work.cells[2].source = work.cells[2].source.replace('raise NotImplementedError("return twice the number you are given.")',
                                                        "return x + x  # my answer")
    nbformat.write(work, copy)
    edited = copy.read_bytes()
    write(tiny_lesson(solution="    return x * 2"), source)  # the lesson changes upstream
    capsys.readouterr()

    assert make_student.main(["--dest", str(dest), str(source)]) == 0

    said = capsys.readouterr().out
    assert copy.read_bytes() == edited
    beside = dest / "99_tiny.new.ipynb"
    assert "KEPT" in said and str(beside) in said
    assert nbformat.read(beside, as_version=4).cells[2].source.endswith('raise NotImplementedError("return twice the number you are given.")')
    # A third run still keeps the student's file, and refreshes the untouched .new copy quietly.
    assert make_student.main(["--dest", str(dest), str(source)]) == 0
    assert copy.read_bytes() == edited
    # Once the student takes the new version over (here: deletes their file), the .new copy goes.
    copy.unlink()
    assert make_student.main(["--dest", str(dest), str(source)]) == 0
    assert copy.is_file() and not beside.exists()


def test_unedited_student_copy_is_updated_when_the_lesson_changes(tmp_path, capsys):
    source = write(tiny_lesson(), tmp_path / "notebooks" / "99_tiny.ipynb")
    dest = tmp_path / "student"
    make_student.main(["--dest", str(dest), str(source)])
    lesson = tiny_lesson()
    lesson.cells[0].source += "\n\nA new paragraph."
    write(lesson, source)
    capsys.readouterr()
    make_student.main(["--dest", str(dest), str(source)])
    assert "updated" in capsys.readouterr().out
    assert "A new paragraph." in nbformat.read(dest / "99_tiny.ipynb", as_version=4).cells[0].source
    assert not (dest / "99_tiny.new.ipynb").exists()
    record = json.loads((dest / ".written.json").read_text())
    assert len(record["99_tiny.ipynb"]) == 2


def test_copy_with_no_record_counts_as_edited(tmp_path):
    source = write(tiny_lesson(), tmp_path / "notebooks" / "99_tiny.ipynb")
    dest = tmp_path / "student"
    make_student.main(["--dest", str(dest), str(source)])
    (dest / ".written.json").unlink()
    (dest / "99_tiny.ipynb").write_text((dest / "99_tiny.ipynb").read_text().replace("miniature", "MINE"))
    make_student.main(["--dest", str(dest), str(source)])
    assert "MINE" in (dest / "99_tiny.ipynb").read_text()
    assert (dest / "99_tiny.new.ipynb").is_file()


def test_malformed_lesson_writes_nothing_and_exits_2(tmp_path, capsys):
    good = write(tiny_lesson(), tmp_path / "notebooks" / "98_good.ipynb")
    bad_lesson = tiny_lesson()
    bad_lesson.cells[2].source = "# Exercise: x\n### BEGIN SOLUTION\nx = 1"
    bad = write(bad_lesson, tmp_path / "notebooks" / "99_bad.ipynb")
    assert make_student.main(["--dest", str(tmp_path / "student"), str(good), str(bad)]) == 2
    assert "99_bad.ipynb, cell 2" in capsys.readouterr().err
    assert not (tmp_path / "student" / "98_good.ipynb").exists()


def test_tiny_student_lesson_stops_at_its_exercise_and_passes_once_the_solution_is_back(tmp_path):
    lesson = tiny_lesson()
    error, printed, _ = run_until_first_check(make_student.student_notebook(lesson), lesson, tmp_path)
    assert error is not None and error.ename == "ExerciseNotDone"
    assert "return twice the number you are given." in error.evalue
    assert printed == "Correct: double(21) is 42.\n"


# --- The real lessons -----------------------------------------------------------------------------

def lesson_id(path: Path) -> str:
    return path.stem


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory) -> Path:
    """The student edition of every lesson, written by the command `make student` runs."""
    dest = tmp_path_factory.mktemp("student")
    completed = subprocess.run([sys.executable, str(COURSE_ROOT / "tools" / "make_student.py"), "--dest", str(dest)],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    return dest


def test_there_are_lessons():
    assert LESSONS, "no notebooks/NN_*.ipynb found"


@pytest.mark.parametrize("lesson", LESSONS, ids=lesson_id)
def test_student_lesson_has_open_exercises_and_no_solutions_or_outputs(lesson, student_dir):
    original = nbformat.read(lesson, as_version=4)
    student = nbformat.read(student_dir / lesson.name, as_version=4)
    exercises = make_student.find_exercises(original, name=lesson.name)
    assert exercises
    assert len(student.cells) == len(original.cells)
    for exercise in exercises:
        cell = student.cells[exercise.cell_index]
        assert "BEGIN SOLUTION" not in cell.source and "END SOLUTION" not in cell.source
        assert f'raise NotImplementedError("{exercise.instruction}")' in cell.source.replace('\\"', '"')
        assert student.cells[exercise.check_index].source == original.cells[exercise.check_index].source
        # Pasting the solution back gives the lesson's own cell, which nbval runs against its check.
        assert make_student.restore_solution(cell.source, exercise.solution_source) == exercise.solution_source
    for index, cell in enumerate(student.cells):
        original_cell = original.cells[index]
        if "answers" in original_cell.metadata.get("tags", []):
            assert cell.source == make_student.ANSWERS_PLACEHOLDER, "the answers are hidden from students"
        if original_cell.metadata.get("slideshow", {}).get("slide_type") == "notes":
            assert cell.source == "", "speaker notes stay in the instructor's edition"
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
            if index not in {exercise.cell_index for exercise in exercises}:
                assert cell.source == original.cells[index].source
            python = "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith(("%", "!")))
            ast.parse(python, filename=f"{lesson.name} cell {index}")


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS, ids=lesson_id)
def test_student_lesson_stops_at_its_first_exercise_and_the_pasted_solution_passes(lesson, student_dir):
    original = nbformat.read(lesson, as_version=4)
    student = nbformat.read(student_dir / lesson.name, as_version=4)
    first = make_student.find_exercises(original)[0]
    error, printed, seconds = run_until_first_check(student, original, COURSE_ROOT / "notebooks")
    print(f"{lesson.name}: up to the first check and back in {seconds:.0f} s")
    assert error is not None, "the student's notebook ran past its first exercise"
    assert error.ename in ("ExerciseNotDone", "NotImplementedError"), f"{error.ename}: {error.evalue}"
    assert first.instruction in error.evalue
    assert printed.startswith("Correct"), f"the restored solution's check printed {printed!r}"
