"""ruff over the package, the tests and every notebook: lint rules and formatting."""

import subprocess
import sys

import pytest

from conftest import ROOT

TARGETS = [
    "attention_kit",
    "course_tools",
    "tests",
    "conftest.py",
    "lectures",
    "solutions",
    "notebooks",
]
# The student edition has no solutions/.
TARGETS = [t for t in TARGETS if (ROOT / t).exists()]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff_is_clean(command):
    result = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "--no-cache", *TARGETS],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
