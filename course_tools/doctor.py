"""``make doctor``: what a learner runs (and pastes into a bug report) when something is wrong.

It prints the Python, torch, numpy and jupyter-book versions against the pins in
``requirements.txt``, whether the installed packages agree with each other (``pip
check``), the device and thread count the labs will use, whether Chromium is present
(only the course's own tests need it, so a missing one is a warning) and the free disk
space. It exits 1 after one plain sentence per problem, 0 when there is none.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements.txt"
SUPPORTED_PYTHONS = ((3, 11), (3, 12), (3, 13))  # the Makefile checks the same range
MIN_FREE_GB = 2.0  # a book build, its cache and the slides take well under this
SHOWN_PACKAGES = ("torch", "numpy", "jupyter-book")
PIN = re.compile(r"^\s*([A-Za-z0-9_.\-]+)==([^\s#;]+)")


def pins(requirements: Path = REQUIREMENTS) -> dict[str, str]:
    """``{name: version}`` for every ``name==version`` line (not ``-e .``)."""
    found = {}
    for line in requirements.read_text(encoding="utf-8").splitlines():
        match = PIN.match(line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


@dataclass
class Report:
    """What the doctor saw: lines to print, problems (exit 1) and warnings."""

    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def show(self, label: str, value: str) -> None:
        self.lines.append(f"{label:<14} {value}")


def supported(version: tuple[int, int]) -> bool:
    return version in SUPPORTED_PYTHONS


def check_python(report: Report, version: tuple[int, int] | None = None) -> None:
    version = version or sys.version_info[:2]
    report.show("Python", f"{platform.python_version()} ({sys.executable})")
    if not supported(version):
        names = ", ".join(f"{major}.{minor}" for major, minor in SUPPORTED_PYTHONS)
        report.problems.append(
            f"Python {version[0]}.{version[1]} is not one the course supports ({names}): "
            "delete .venv and run make again with, for example, PYTHON=python3.12."
        )


def installed_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_pins(
    report: Report, wanted: dict[str, str], version_of=installed_version
) -> None:
    """Show the main packages; a problem for every pin that is missing or differs."""
    for name, pinned in wanted.items():
        have = version_of(name)
        if name in SHOWN_PACKAGES:
            report.show(name, f"{have or 'not installed'} (pinned {pinned})")
        if have is None:
            report.problems.append(
                f"{name} is not installed: run make again, or "
                ".venv/bin/pip install -r requirements.txt."
            )
        elif have.split("+")[0] != pinned:  # torch's CPU wheel calls itself 2.13.0+cpu
            report.problems.append(
                f"{name} {have} is installed, but requirements.txt pins {pinned}: "
                ".venv/bin/pip install -r requirements.txt puts the pinned one back."
            )


def check_pip(report: Report, run=subprocess.run) -> None:
    result = run(
        [sys.executable, "-m", "pip", "check"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode == 0:
        report.show("pip check", "no broken requirements")
        return
    first = (result.stdout or result.stderr).strip().splitlines()[:1]
    report.show("pip check", first[0] if first else f"exit code {result.returncode}")
    report.problems.append(
        "pip check found packages whose requirements are not met "
        f"({first[0] if first else 'see pip check'}): reinstall with "
        ".venv/bin/pip install -r requirements.txt."
    )


def check_device(report: Report) -> None:
    try:
        from attention_kit.train import course_threads, get_device
    except ImportError as error:
        report.show("device", "unknown")
        report.problems.append(
            f"The course's own package does not import ({error}): run make again."
        )
        return
    try:
        device = get_device()
    except RuntimeError as error:
        report.show("device", "none")
        report.problems.append(f"{error}.")
    else:
        report.show("device", f"{device} (ATTENTION_KIT_DEVICE=cuda opts in to a GPU)")
    try:
        report.show("torch threads", f"{course_threads()} per notebook (set_threads)")
    except ValueError as error:
        report.problems.append(f"{error}.")


def check_chromium(report: Report, find=None) -> None:
    from course_tools.browser import find_chromium

    path = (find or find_chromium)()
    report.show("Chromium", path or "not found (only the course's own tests need it)")
    if path is None:
        report.warnings.append(
            "Chromium is missing: you do not need it for the labs or the book, only for "
            "make test (Debian and Ubuntu: apt-get install chromium)."
        )


def check_disk(report: Report, folder: Path = ROOT, usage=shutil.disk_usage) -> None:
    free_gb = usage(folder).free / 1e9
    report.show("free disk", f"{free_gb:.1f} GB in {folder}")
    if free_gb < MIN_FREE_GB:
        report.problems.append(
            f"Only {free_gb:.1f} GB of disk is free where the course lives; the book "
            f"build and its cache need about {MIN_FREE_GB:.0f} GB."
        )


def check_environment(report: Report, prefix: str = sys.prefix) -> None:
    if Path(prefix).resolve() != (ROOT / ".venv").resolve():
        report.problems.append(
            f"This is not the course's environment .venv ({prefix}): run make doctor, "
            "or .venv/bin/python -m course_tools.doctor, after make has created .venv."
        )


def examine() -> Report:
    report = Report()
    check_environment(report)
    report.show(
        "system", f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores"
    )
    check_python(report)
    check_pins(report, pins())
    check_pip(report)
    check_device(report)
    check_chromium(report)
    check_disk(report)
    return report


def main(argv: list[str] | None = None) -> int:
    report = examine()
    print("\n".join(report.lines))
    for warning in report.warnings:
        print(f"warning: {warning}")
    if report.problems:
        print(f"\n{len(report.problems)} problem(s):")
        for problem in report.problems:
            print(f"- {problem}")
        return 1
    print("\nNo problems found.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
