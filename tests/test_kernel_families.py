"""The numerical tests pass with both of TensorFlow's CPU kernel families, on whatever CPU runs them.

TensorFlow's x86 wheels use oneDNN kernels by default only on CPUs with AVX-512 VNNI, bfloat16 or
AMX (recent Intel Xeons); elsewhere, an AVX2-only AMD EPYC for instance, they use Eigen's. The two
round differently, so a ReLU unit near its kink can fall on different sides, and a test tuned on
one CPU can fail on the other (it happened: 99.49% against a 99.5% threshold). Here the numerical
test files run again in a child process with ``TF_ENABLE_ONEDNN_OPTS`` set each way, so one CI run
on any machine checks both families.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

COURSE_ROOT = Path(__file__).resolve().parent.parent
NUMERICAL_TESTS = ["tests/test_dream.py", "tests/test_models.py", "tests/test_classviz.py"]


@pytest.mark.slow
@pytest.mark.parametrize("onednn", ["1", "0"], ids=["oneDNN-kernels", "Eigen-kernels"])
def test_numerical_tests_pass_with_either_kernel_family(onednn):
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": onednn, "DEEPDREAM_FAST": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-header", *NUMERICAL_TESTS],
        cwd=COURSE_ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-2000:]
    assert result.returncode == 0, f"with TF_ENABLE_ONEDNN_OPTS={onednn}: {summary}\n{result.stdout[-6000:]}"
    assert " passed" in summary and "failed" not in summary
