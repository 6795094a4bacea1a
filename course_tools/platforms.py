"""``make platforms``: does every pin of requirements.txt have a wheel for the Pythons and
systems learners use?

For each ``name==version`` line of ``requirements.txt`` (not ``-e .``) and each supported
CPython (3.11, 3.12, 3.13) on Linux x86_64 (``manylinux_2_28_x86_64`` and every older
manylinux tag, named one by one: see ``LINUX_TAGS``), macOS on Apple silicon
(``macosx_14_0_arm64``, which pip widens to older macOS tags itself) and Windows
(``win_amd64``), it asks pip which versions have a wheel such a machine could install::

    pip index versions NAME --python-version 3.12 --platform win_amd64 --only-binary=:all:

That reads the index's page for NAME only; no wheel is downloaded. A pure-Python wheel
(``py3-none-any``) counts for every platform. The index is PyPI, whatever the local pip
configuration says (only its certificate bundle is kept), because that is what a learner
installs from. torch's CPU-only build is also looked up in PyTorch's CPU index, the one
that keeps CUDA off a Linux machine (see the README); when that index cannot be reached,
its answers are recorded as network errors and the pins' results are still written.

Every answer is one of ``wheel``, ``no wheel`` (pip reached the index and found no
installable wheel of the pinned version) or ``network error`` (pip could not reach the
index): a network error is never taken for a missing wheel. The result goes to
``platforms.json``, which is committed; ``tests/test_platforms.py`` fails (offline) when
that file does not cover the current pins. Run ``make platforms`` when a pin changes. When
a lookup on PyPI hits a network error the file is left as it was and the exit code is 2;
a pin without a wheel somewhere gives exit code 1 (after writing the file).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from course_tools.doctor import REQUIREMENTS, ROOT, SUPPORTED_PYTHONS, pins

RESULT = ROOT / "platforms.json"
PYPI = "https://pypi.org/simple"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PYTHONS = tuple(f"{major}.{minor}" for major, minor in SUPPORTED_PYTHONS)
PLATFORMS = {
    "manylinux_2_28_x86_64": "Linux x86_64",
    "macosx_14_0_arm64": "macOS arm64",
    "win_amd64": "Windows x86_64",
}
# pip widens an explicit --platform to older tags for macOS (down to 10.x, and universal2)
# and for the old manylinux2014 / 2010 aliases, but not for a PEP 600 manylinux_2_28 tag:
# a wheel tagged manylinux_2_17 (glibc 2.17, which any glibc 2.28 system runs) is only
# found when that tag is named too. So the Linux column asks for every one of them.
LINUX_TAGS = [f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1)] + [
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
]
PLATFORM_TAGS = {
    "manylinux_2_28_x86_64": LINUX_TAGS,
    "macosx_14_0_arm64": ["macosx_14_0_arm64"],
    "win_amd64": ["win_amd64"],
}
WHEEL, NO_WHEEL, NETWORK = "wheel", "no wheel", "network error"
AVAILABLE = re.compile(r"^Available versions:\s*(.*)$", re.MULTILINE)
# What pip prints when it cannot reach an index (urllib3 and requests errors, DNS, TLS).
NETWORK_SIGNS = (
    "Retrying (Retry(",
    "NewConnectionError",
    "Max retries exceeded",
    "ConnectionError",
    "ConnectTimeout",
    "ReadTimeout",
    "Temporary failure in name resolution",
    "Name or service not known",
    "SSLError",
    "Could not fetch URL",
    "ProxyError",
)
NOT_FOUND_SIGNS = ("No matching distribution found", "Could not find a version")


def pip_environment() -> dict[str, str]:
    """The environment for pip: no configuration file and no PIP_* settings (which may
    point at a local mirror), except the certificate bundle."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if "PIP_CERT" in os.environ:
        env["PIP_CERT"] = os.environ["PIP_CERT"]
    return env


def index_command(
    name: str, python: str, platform: str, index: str = PYPI
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "index",
        "versions",
        name,
        "--python-version",
        python,
        *(flag for tag in PLATFORM_TAGS[platform] for flag in ("--platform", tag)),
        "--only-binary=:all:",
        "--index-url",
        index,
        "--retries",
        "2",
        "--timeout",
        "20",
    ]


def classify(version: str, returncode: int, stdout: str, stderr: str) -> str:
    """``wheel``, ``no wheel`` or ``network error`` from what pip printed."""
    text = stdout + stderr
    if any(sign in text for sign in NETWORK_SIGNS):
        return NETWORK
    found = AVAILABLE.search(stdout)
    if returncode == 0 and found:
        versions = {v.strip() for v in found.group(1).split(",")}
        return WHEEL if version in versions else NO_WHEEL
    if any(sign in text for sign in NOT_FOUND_SIGNS):
        return NO_WHEEL
    return NETWORK  # anything else: pip did not get an answer from the index


def lookup(
    name: str, version: str, python: str, platform: str, index: str = PYPI, run=None
) -> str:
    run = run or subprocess.run
    try:
        result = run(
            index_command(name, python, platform, index),
            capture_output=True,
            text=True,
            env=pip_environment(),
            timeout=120,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return NETWORK
    return classify(version, result.returncode, result.stdout, result.stderr)


def run_lookups(tasks: list[tuple], jobs: int, run=None) -> dict:
    """``{pin: {python: {platform: answer}}}`` for tasks ``(pin, name, version, python,
    platform, index)``."""
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        answers = list(pool.map(lambda task: lookup(*task[1:], run=run), tasks))
    results: dict[str, dict] = {}
    for (pin, _name, _version, python, platform, _index), answer in zip(
        tasks, answers, strict=True
    ):
        results.setdefault(pin, {}).setdefault(python, {})[platform] = answer
    return results


def check_pins(wanted: dict[str, str], jobs: int = 4, run=None) -> dict:
    """Every pin on every supported Python and platform, from PyPI."""
    tasks = [
        (f"{name}=={version}", name, version, python, platform, PYPI)
        for name, version in wanted.items()
        for python in PYTHONS
        for platform in PLATFORMS
    ]
    return run_lookups(tasks, jobs, run)


def check_torch_cpu(torch_version: str, jobs: int = 4, run=None) -> dict:
    """torch's CPU-only build (``+cpu``) in PyTorch's CPU index, Linux and Windows."""
    cpu = f"{torch_version}+cpu"
    tasks = [
        (f"torch=={cpu}", "torch", cpu, python, platform, TORCH_CPU_INDEX)
        for python in PYTHONS
        for platform in ("manylinux_2_28_x86_64", "win_amd64")
    ]
    return run_lookups(tasks, jobs, run)


def pip_version() -> str:
    from importlib.metadata import version

    return version("pip")


def document(pins_found: dict, torch_cpu: dict, wanted: dict[str, str]) -> dict:
    return {
        "about": (
            "Written by make platforms (course_tools/platforms.py): for every pin of "
            "requirements.txt, whether PyPI has a wheel of that version for each CPython "
            "and platform (pip index versions --only-binary=:all:), and the same for "
            "torch's CPU build in PyTorch's CPU index. "
            "Each answer is 'wheel', 'no wheel' or 'network error' (index not reached)."
        ),
        "checked": datetime.date.today().isoformat(),
        "pip": pip_version(),
        "pythons": list(PYTHONS),
        "platforms": PLATFORMS,
        "platform_tags": PLATFORM_TAGS,
        "index": PYPI,
        "requirements": [f"{name}=={version}" for name, version in wanted.items()],
        "pins": pins_found,
        "torch_cpu_index": {"index": TORCH_CPU_INDEX, "wheels": torch_cpu},
    }


def not_wheels(results: dict) -> list[str]:
    """``pin on Python X, platform: answer`` for every answer that is not ``wheel``."""
    return [
        f"{pin} on Python {python}, {PLATFORMS[platform]}: {answer}"
        for pin, by_python in results.items()
        for python, answers in by_python.items()
        for platform, answer in answers.items()
        if answer != WHEEL
    ]


def format_table(results: dict) -> str:
    columns = [(p, k) for p in PYTHONS for k in PLATFORMS]
    header = ["pin"] + [f"{p} {PLATFORMS[k].split()[0]}" for p, k in columns]
    marks = {WHEEL: "yes", NO_WHEEL: "NO", NETWORK: "?"}
    rows = [header]
    for pin, by_python in results.items():
        rows.append(
            [pin] + [marks.get(by_python.get(p, {}).get(k), "-") for p, k in columns]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--write", type=Path, default=None, help="the JSON file to write"
    )
    parser.add_argument("--jobs", type=int, default=4, help="lookups at once")
    args = parser.parse_args(argv)
    wanted = pins(REQUIREMENTS)
    found = check_pins(wanted, args.jobs)
    torch_cpu = check_torch_cpu(wanted["torch"], args.jobs) if "torch" in wanted else {}
    print(
        format_table(
            {**found, **{f"{pin} (CPU index)": v for pin, v in torch_cpu.items()}}
        )
    )
    print("(yes: a wheel; NO: none; ?: the index could not be reached; -: not asked)")
    problems = not_wheels(found)
    unreachable = [line for line in problems if line.endswith(NETWORK)]
    if unreachable:
        print(
            f"\n{len(unreachable)} lookup(s) could not reach PyPI (a network error, not a "
            "missing wheel), so nothing was written. The first: " + unreachable[0]
        )
        return 2
    cpu_unreachable = [line for line in not_wheels(torch_cpu) if line.endswith(NETWORK)]
    if cpu_unreachable:
        print(
            f"\nPyTorch's CPU index ({TORCH_CPU_INDEX}) could not be reached from here: "
            "its answers are recorded as network errors, not as missing wheels."
        )
    if args.write:
        doc = document(found, torch_cpu, wanted)
        args.write.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
        print(f"\nwrote {args.write}")
    for line in problems:
        print(f"no wheel: {line}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
