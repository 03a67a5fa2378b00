"""The benchmark command still runs both implementations side by side (a smoke test at a tiny size)."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

COURSE_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_compares_the_tutorial_and_course_lib_and_prints_a_ratio():
    result = subprocess.run(
        [sys.executable, "-m", "course_lib", "bench", "--backbone", "dog_breeds", "--size", "100",
         "--steps-per-octave", "1", "--rounds", "1"],
        cwd=COURSE_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    rows = {name: float(rate) for name, rate in re.findall(r"^(tutorial|course_lib)\s+([\d.]+)", result.stdout, re.M)}
    assert set(rows) == {"tutorial", "course_lib"} and all(rate > 0 for rate in rows.values())
    assert re.search(r"ratio course_lib / tutorial: [\d.]+x", result.stdout)


@pytest.mark.slow
def test_whole_process_bench_runs_both_commands_and_they_dream_alike(tmp_path):
    """The tutorial's script and the course's command as whole processes: both run, a ratio is printed,
    and both dreamed alike: the two pictures are closer to each other than either is to the photo."""
    result = subprocess.run(
        [sys.executable, "bench/bench_processes.py", "--steps", "1", "--rounds", "1"],
        cwd=COURSE_ROOT, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert re.search(r"course_lib dream is [\d.]+x the tutorial script as a whole process", result.stdout)
    found = re.search(r"the two dreams differ by ([\d.]+) levels of 255 on average \(500x333 px\); each differs "
                      r"from the photo by ([\d.]+) \(tutorial\) and ([\d.]+) \(course_lib\)", result.stdout)
    assert found, result.stdout
    between, tutorial_moved, course_moved = (float(value) for value in found.groups())
    assert between < min(tutorial_moved, course_moved), result.stdout
