"""The numerical tests, every exercise check and every lesson pass with both of TensorFlow's CPU
kernel families, on whatever CPU runs them.

TensorFlow's x86 wheels use oneDNN kernels by default only on CPUs with AVX-512 VNNI, bfloat16 or
AMX (recent Intel Xeons, AMD EPYC from Zen 4); elsewhere, an AVX2-only AMD EPYC for instance, they
use Eigen's. The two round differently, so a ReLU unit near its kink can fall on different sides,
and a test or a check tuned on one CPU can fail on the other (it happened: 99.49% against a 99.5%
threshold; a DeepDream check that gave the generic hint on an AVX-512 EPYC, issue 16). The main
test run covers the family TensorFlow picks here; this test runs the same files again in one
child process with the OTHER family (``TF_ENABLE_ONEDNN_OPTS``), so one CI run on any machine
checks both, and no family runs twice.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

COURSE_ROOT = Path(__file__).resolve().parent.parent
NUMERICAL_TESTS = ["tests/test_dream.py", "tests/test_models.py", "tests/test_classviz.py"]
#: Every exercise check, of every lesson, and its toolkit.
CHECK_TESTS = sorted(str(path.relative_to(COURSE_ROOT)) for path in (COURSE_ROOT / "tests").glob("test_checks*.py"))
#: TensorFlow's own line when its oneDNN kernels are on (tensorflow/core/util/port.cc).
ONEDNN_ON = "oneDNN custom operations are on"


def family_of(setting: str | None) -> str:
    """"1" (oneDNN) or "0" (Eigen): what ``TF_ENABLE_ONEDNN_OPTS=setting`` selects; None asks TensorFlow
    which one it uses by default on this CPU (it says so on stderr when it imports)."""
    if setting is not None and setting.strip():
        return "0" if setting.strip().lower() in ("0", "false", "off") else "1"
    env = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    probe = subprocess.run([sys.executable, "-c", "import tensorflow"], env={**env, "TF_CPP_MIN_LOG_LEVEL": "0"},
                           capture_output=True, text=True, timeout=300)
    return "1" if ONEDNN_ON in probe.stderr else "0"


def failed_ids(output: str) -> list[str]:
    """The ids of the failed tests and errors in pytest's ``-rfE`` summary."""
    return re.findall(r"^(?:FAILED|ERROR) (.+?)(?: - .*)?$", output, flags=re.M)


def test_the_families_are_told_apart():
    assert family_of("0") == family_of("false") == "0"
    assert family_of("1") == family_of("true") == "1"
    summary = "FAILED tests/a.py::test_x[1] - AssertionError\nERROR notebooks/b.ipynb::Cell 3\n1 failed"
    assert failed_ids(summary) == ["tests/a.py::test_x[1]", "notebooks/b.ipynb::Cell 3"]


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_the_numerical_tests_checks_and_lessons_pass_with_the_other_kernel_family(tmp_path):
    main = family_of(os.environ.get("TF_ENABLE_ONEDNN_OPTS"))
    other = "0" if main == "1" else "1"
    names = {"0": "Eigen", "1": "oneDNN"}
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": other, "DEEPDREAM_FAST": "1",
           # The lessons train their quick classifier into a data folder of their own, not the main run's.
           "DEEPDREAM_DATA_DIR": str(tmp_path / "test-data")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rfE", "-p", "no:cacheprovider", "--no-header",
         *NUMERICAL_TESTS, *CHECK_TESTS, "notebooks", "--nbval-lax", "--nbval-current-env"],
        cwd=COURSE_ROOT, env=env, capture_output=True, text=True, timeout=3500,
    )
    lines = result.stdout.strip().splitlines()
    summary = lines[-1] if lines else result.stderr[-2000:]
    failed = failed_ids(result.stdout)
    assert result.returncode == 0 and not failed, (
        f"with {names[other]} kernels (TF_ENABLE_ONEDNN_OPTS={other}; this run uses {names[main]}'s): {summary}\n"
        + "\n".join(f"  {test}" for test in failed) + f"\n{result.stdout[-4000:]}")
    assert " passed" in summary
