"""Keep CHANGELOG.md honest about the labs: every change to a lab has an entry.

``CHANGELOG.md`` has one section per version, newest first, headed ``## X.Y.Z (date)``
(or ``## Unreleased`` while changes pile up), and names each lab it changed by its stem
(``06_positional_encoding``). ``lab_versions.json`` records, per section, the SHA-256 of
every student lab in ``notebooks/`` as that version hands it out: the same hash that
``make lab`` stores in ``my_labs/.course_versions.json``, so "the course changed this
lab" there and an entry here are about the same bytes.

``python -m course_tools.changelog`` records the current labs under the newest section
and prints what is missing; ``tests/test_changelog.py`` fails when

- a lab in ``notebooks/`` differs from the record of the newest section (it changed
  and nobody recorded it),
- a section's record differs from the section before it in a lab that the section does
  not name (a change without an entry),
- the newest released section is not ``attention_kit.__version__``.

A released section (one whose git tag ``vX.Y.Z`` exists) is never recorded over: to
change a lab after a release, add ``## Unreleased`` at the top and name the lab there.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHANGELOG = ROOT / "CHANGELOG.md"
RECORD = ROOT / "lab_versions.json"
LABS = ROOT / "notebooks"
UNRELEASED = "Unreleased"
SECTION = re.compile(r"^## +(\S+)", re.MULTILINE)


def lab_hash(path: Path) -> str:
    """The SHA-256 of a lab file (as ``course_tools.learner.file_hash``)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def current_labs(labs: Path = LABS) -> dict[str, str]:
    """Each student lab's stem and hash."""
    return {p.stem: lab_hash(p) for p in sorted(labs.glob("*.ipynb"))}


def sections(text: str) -> dict[str, str]:
    """Each version's heading word (``0.1.0``, ``Unreleased``) and its text, newest first."""
    found = list(SECTION.finditer(text))
    ends = [m.start() for m in found[1:]] + [len(text)]
    return {m.group(1): text[m.end() : end] for m, end in zip(found, ends, strict=True)}


def read_record(path: Path = RECORD) -> dict[str, dict[str, str]]:
    if not path.exists():
        return {}
    return json.loads(path.read_text(encoding="utf-8"))["versions"]


def write_record(record: dict[str, dict[str, str]], path: Path = RECORD) -> None:
    data = {
        "about": (
            "Written by python -m course_tools.changelog: the SHA-256 of each student lab "
            "in notebooks/ as each version of CHANGELOG.md hands it out, newest first."
        ),
        "versions": record,
    }
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def named_in(body: str, stem: str) -> bool:
    return re.search(rf"\b{re.escape(stem)}\b", body) is not None


def problems(
    text: str, record: dict[str, dict[str, str]], labs: dict[str, str], version: str
) -> list[str]:
    """What the changelog, its record and the labs disagree on (empty when all agree)."""
    found = sections(text)
    if list(found) != list(record):
        return [
            f"CHANGELOG.md has sections {list(found)} but lab_versions.json records "
            f"{list(record)}: run python -m course_tools.changelog"
        ]
    out = []
    newest = next(iter(record), None)
    if newest is not None and record[newest] != labs:
        changed = sorted(
            s
            for s in labs.keys() | record[newest].keys()
            if labs.get(s) != record[newest].get(s)
        )
        out.append(
            f"notebooks/ changed since the record of '{newest}' ({', '.join(changed)}): "
            "name each of these labs, with what changed, in the newest section of "
            "CHANGELOG.md (add '## Unreleased' at the top if the newest is released), "
            "then run python -m course_tools.changelog"
        )
    names = list(record)
    for position, name in enumerate(names):
        before = record[names[position + 1]] if position + 1 < len(names) else {}
        now = record[name]
        changed = sorted(
            s for s in now.keys() | before.keys() if now.get(s) != before.get(s)
        )
        missing = [s for s in changed if not named_in(found[name], s)]
        if missing:
            out.append(
                f"the labs {', '.join(missing)} changed in '{name}' but its section of "
                "CHANGELOG.md does not name them"
            )
    released = [n for n in names if n != UNRELEASED]
    if released and released[0] != version:
        out.append(
            f"the newest released section is {released[0]} but attention_kit.__version__ "
            f"is {version}: they must agree (the version lives in attention_kit/__init__.py)"
        )
    return out


def is_tagged(version: str) -> bool:
    """Whether the git tag ``v<version>`` exists (the version was handed out)."""
    result = subprocess.run(
        ["git", "tag", "--list", f"v{version}"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    return bool(result.stdout.strip())


def record_current(
    text: str, record: dict[str, dict[str, str]], labs: dict[str, str]
) -> dict[str, dict[str, str]]:
    """The record with the newest section set to ``labs`` (refused for a version that
    is tagged and recorded with other hashes)."""
    found = list(sections(text))
    if not found:
        raise SystemExit("CHANGELOG.md has no '## <version>' section")
    newest = found[0]
    released = newest != UNRELEASED and is_tagged(newest)
    if released and newest in record and record[newest] != labs:
        raise SystemExit(
            f"{newest} is tagged (v{newest}) with other labs: add '## {UNRELEASED}' at the top of "
            "CHANGELOG.md, name the changed labs there, and run this again"
        )
    updated = {newest: labs}
    for name in found[1:]:
        if name not in record:
            raise SystemExit(
                f"no record of the labs of {name}: it cannot be made up now"
            )
        updated[name] = record[name]
    return updated


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="only report, do not record"
    )
    args = parser.parse_args(argv)
    from attention_kit import __version__

    text = CHANGELOG.read_text(encoding="utf-8")
    record, labs = read_record(), current_labs()
    if not args.check:
        record = record_current(text, record, labs)
        write_record(record)
        print(
            f"recorded {len(labs)} labs under '{next(iter(record))}' in {RECORD.name}"
        )
    found = problems(text, record, labs, __version__)
    for problem in found:
        print(problem)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
