"""The student edition: the course without its solutions, for an instructor to hand out.

``make student-edition`` runs ``python -m course_tools.edition _build/student-edition``,
which writes

- the folder ``_build/student-edition/``: the lectures, the student labs
  (``notebooks/``), the kit, the tools, the tests, the book's pages and settings, the
  changelog and the licences, with a table of contents without the Solutions part and
  a README written for learners; and
- the archive ``_build/student-edition-<version>.zip`` of that folder.

What it leaves out: ``solutions/`` (every answer), ``CONTRIBUTING.md`` and the course's
own README (both written for the people who make the course, about ``solutions/``).
The files copied are listed in ``INCLUDE``, so that nothing new reaches learners
unless someone adds it there.

In the edition, ``make lab`` and ``make progress`` work as in the course (they read
``notebooks/`` only), ``make book`` builds the book without solutions, and ``make
test`` skips the tests that need ``solutions/`` (marked ``solutions``; see
``conftest.py``): the release sync, nbgrader, the solutions under nbval.
``tests/test_edition.py`` builds an edition and checks all of this from inside it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import yaml

from attention_kit import __version__
from course_tools.book import read_toc, without_solutions

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "student-edition"
INCLUDE = [
    "attention_kit",
    "course_tools",
    "lectures",
    "notebooks",
    "tests",
    ".ci",
    "conftest.py",
    "pyproject.toml",
    "requirements.txt",
    "Makefile",
    "_config.yml",
    "intro.md",
    "syllabus.md",
    "CHANGELOG.md",
    "lab_versions.json",
    "LICENSE",
    "LICENSE-CC-BY-4.0",
    ".gitignore",
]
IGNORE = shutil.ignore_patterns(
    "__pycache__", "*.egg-info", ".ipynb_checkpoints", "*.pyc", ".pytest_cache"
)

README = """# Attention, Step by Step (student edition, version {version})

An open course on the attention mechanism of large language models: ten units, each a
lecture and a lab, from a soft dictionary lookup to a small transformer that trains on
a laptop CPU in under a minute, and what its attention maps show and do not show. This
copy is the one to work from as a learner: the labs' exercises are yours to fill in,
and every exercise has a check that tells you at once whether your answer is right and,
if not, what to look at.

## Start

You need Python 3.11 and `make`. The first command creates a virtual environment
(`.venv`) with every package the course pins in `requirements.txt`:

```bash
make lab        # copies the labs into my_labs/ and opens JupyterLab there
make progress   # runs your labs and prints the status of every exercise
make book       # the lectures and labs as a book, in _build/html (open index.html)
```

**Your work lives in `my_labs/`.** `make lab` copies each lab there once and never
overwrites it; to start a lab over, delete your copy and run `make lab` again. When a
newer edition changes a lab you already have, `make lab` says so, leaves your copy
alone, and `make lab NEW=<lab>` puts the new version beside yours. `CHANGELOG.md` says
what changed in each lab. `make lab OPEN=no` copies without starting JupyterLab.

`make progress` runs each of your labs from top to bottom, headless, and prints one
table: ✅ done, ⏳ not attempted yet, ❌ wrong (with the check's hint), 💥 the lab
stopped with an error before the check (with the cell), ✍️ a written answer. It changes
none of your files.

Start with `syllabus.md` (also a page of the book): the order of the units and an
estimate of the time each lecture and lab takes.

## What is here

```
lectures/        the lectures (theory, maths, figures)
notebooks/       the labs, as you receive them (make lab copies them to my_labs/)
attention_kit/   the course's reference code, which the labs import, and the checks
course_tools/    the machinery behind make lab, make progress, make book
tests/           the course's own tests (make test)
```

`make test` runs the course's tests and every notebook; the tests that need the
instructor's solutions, which this edition leaves out, are skipped.

## Licence

The text and figures of the course are under CC BY 4.0 (`LICENSE-CC-BY-4.0`), its code
under the MIT licence (`LICENSE`).
"""


def write_toc(out: Path) -> dict:
    toc = without_solutions(read_toc())
    (out / "_toc.yml").write_text(
        "# The student edition's table of contents (course_tools.edition): the course's\n"
        "# _toc.yml without its Solutions part.\n"
        + yaml.safe_dump(toc, sort_keys=False),
        encoding="utf-8",
    )
    return toc


def write_edition(out: Path = OUT, archive: bool = True) -> Path:
    """Write the student edition into ``out`` (replacing it); return ``out``."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for name in INCLUDE:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, out / name, ignore=IGNORE)
        elif source.exists():
            shutil.copy2(source, out / name)
    write_toc(out)
    (out / "README.md").write_text(README.format(version=__version__), encoding="utf-8")
    if archive:
        name = out.parent / f"{out.name}-{__version__}"
        shutil.make_archive(str(name), "zip", root_dir=out.parent, base_dir=out.name)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, nargs="?", default=OUT)
    parser.add_argument("--no-archive", action="store_true", help="only the folder")
    args = parser.parse_args(argv)
    out = write_edition(args.out, archive=not args.no_archive)
    print(f"wrote the student edition {__version__} into {out}")
    if not args.no_archive:
        print(f"and the archive {out.parent / f'{out.name}-{__version__}.zip'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
