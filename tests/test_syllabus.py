"""The syllabus page: every unit planned once per plan, its table computed from the notebooks."""

import re

from conftest import ROOT
from course_tools import syllabus
from course_tools.book import read_toc, toc_files

UNITS = sorted(p.stem[:2] for p in (ROOT / "lectures").glob("*.ipynb"))
TEXT = (ROOT / "syllabus.md").read_text(encoding="utf-8")


def plan(heading: str) -> str:
    return TEXT.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]


def test_the_syllabus_is_a_page_of_the_book():
    assert "syllabus" in toc_files(read_toc())


def test_each_plan_covers_every_unit_once():
    for heading, weeks in (("A 10-week term", 10), ("A 5-week course", 5)):
        rows = re.findall(r"^\| (\d+) \|([\d, ]*)\|", plan(heading), re.MULTILINE)
        assert [int(week) for week, _ in rows] == list(range(1, weeks + 1)), heading
        planned = [u for _, units in rows for u in re.findall(r"\d\d", units)]
        assert planned == UNITS, (heading, planned)


def test_the_table_of_times_and_points_is_up_to_date():
    assert syllabus.main(["--check"]) == 0, "run python -m course_tools.syllabus"
    table = TEXT.split(syllabus.BEGIN)[1].split(syllabus.END)[0]
    rows = [line for line in table.splitlines() if re.match(r"\| \d\d ", line)]
    assert [row[2:4] for row in rows] == UNITS


def test_the_default_points_are_those_of_the_grading_policy():
    lab = syllabus.lab_summary(ROOT / "notebooks" / "04_self_attention.ipynb")
    assert lab["points"] == 2 * lab["code"] + lab["written"]
    assert "**2 points**" in TEXT and "**1 point**" in TEXT


def test_a_labs_time_is_the_total_the_lab_states():
    import nbformat

    for lab in sorted((ROOT / "notebooks").glob("*.ipynb")):
        stated = syllabus.stated_total(nbformat.read(lab, as_version=4))
        if stated is not None:
            assert syllabus.lab_summary(lab)["minutes"] == stated, lab.name
    first = nbformat.v4.new_markdown_cell(
        "*Estimated time for this lab: about 1 h 5 min: x*"
    )
    assert syllabus.stated_total(nbformat.v4.new_notebook(cells=[first])) == 65
