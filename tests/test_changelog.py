"""CHANGELOG.md names every change to a lab; the version lives in one place."""

import re
import tomllib

import pytest

import attention_kit
from conftest import ROOT
from course_tools import changelog, learner

TEXT = """# Changelog

## Unreleased

- `02_b`: a clearer hint.

## 1.0.0 (2026-01-01)

- `01_a` and `02_b`: first version.
"""
FIRST = {"01_a": "1", "02_b": "2"}


def test_the_changelog_names_every_change_to_a_lab():
    text = changelog.CHANGELOG.read_text(encoding="utf-8")
    found = changelog.problems(
        text,
        changelog.read_record(),
        changelog.current_labs(),
        attention_kit.__version__,
    )
    assert not found, "\n".join(found)


def test_the_record_hashes_labs_as_make_lab_does():
    lab = next(changelog.LABS.glob("*.ipynb"))
    assert changelog.lab_hash(lab) == learner.file_hash(lab)


def test_a_changed_lab_without_an_entry_is_named():
    record = {"Unreleased": {"01_a": "1", "02_b": "3"}, "1.0.0": FIRST}
    assert changelog.problems(TEXT, record, record["Unreleased"], "1.0.0") == []
    edited = {"01_a": "9", "02_b": "3"}
    (stale,) = changelog.problems(TEXT, record, edited, "1.0.0")
    assert "01_a" in stale and "CHANGELOG.md" in stale
    recorded = {"Unreleased": edited, "1.0.0": FIRST}
    (unnamed,) = changelog.problems(TEXT, recorded, edited, "1.0.0")
    assert "01_a" in unnamed and "Unreleased" in unnamed


def test_the_newest_release_is_the_packages_version():
    record = {"Unreleased": FIRST, "1.0.0": FIRST}
    (wrong,) = changelog.problems(TEXT, record, FIRST, "1.1.0")
    assert "1.0.0" in wrong and "__version__" in wrong


def test_a_tagged_version_is_never_recorded_over(monkeypatch):
    text = TEXT.replace("## Unreleased\n\n- `02_b`: a clearer hint.\n\n", "")
    record = {"1.0.0": FIRST}
    monkeypatch.setattr(changelog, "is_tagged", lambda version: True)
    with pytest.raises(SystemExit, match="Unreleased"):
        changelog.record_current(text, record, {"01_a": "1", "02_b": "5"})
    monkeypatch.setattr(changelog, "is_tagged", lambda version: False)
    assert changelog.record_current(text, record, {"01_a": "1", "02_b": "5"}) == {
        "1.0.0": {"01_a": "1", "02_b": "5"}
    }


def test_the_version_lives_in_the_package_only():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"]
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "attention_kit.__version__"
    }
    assert re.fullmatch(r"\d+\.\d+\.\d+", attention_kit.__version__)


def test_the_licences_are_stated_in_every_place():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["license"] == "MIT AND CC-BY-4.0"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    cc = (ROOT / "LICENSE-CC-BY-4.0").read_text(encoding="utf-8")
    assert "Attribution 4.0 International Public License" in cc
    for page in ("README.md", "intro.md"):
        text = (ROOT / page).read_text(encoding="utf-8")
        assert "CC BY 4.0" in text and "MIT" in text, page


def test_make_lab_points_to_the_changelog_when_a_lab_changed(tmp_path):
    report = learner.CopyReport(changed_upstream=["01_a.ipynb"])
    text = "\n".join(report.lines(tmp_path, 'make lab NEW="{stems}"'))
    assert "CHANGELOG.md" in text
    assert "CHANGELOG.md" not in "\n".join(learner.CopyReport().lines(tmp_path, ""))
