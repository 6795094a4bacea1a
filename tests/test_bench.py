"""make bench's table and command line (the measurements themselves run in make bench)."""

import pytest

from course_tools import bench


def test_table_lines_up_columns(capsys):
    bench.print_table([("a", "bb", "c"), ("dddd", "e", "ff")])
    assert capsys.readouterr().out.splitlines() == ["a     bb  c", "dddd  e   ff"]


def test_unknown_measurement_is_an_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.main(["no-such-measurement"])
    assert exit_info.value.code == 2
    assert "choose from" in capsys.readouterr().err


def test_every_measurement_is_documented():
    for name, measure in bench.MEASUREMENTS.items():
        assert measure.__doc__, f"{name} needs a docstring saying what it measures"
