"""The two packages keep to their audiences: ``attention_kit`` is course material (what
lectures and labs import), ``course_tools`` is the machinery that builds, tests and
serves the course. The tools may import the kit; the kit never imports the tools."""

import ast
import importlib.util
import pkgutil
import subprocess
import sys

import attention_kit
import course_tools
from conftest import ROOT

KIT = ROOT / "attention_kit"
TOOLS = ROOT / "course_tools"


def tool_modules() -> list[str]:
    return [info.name for info in pkgutil.iter_modules(course_tools.__path__)]


def kit_modules() -> list[str]:
    return [
        info.name
        for info in pkgutil.walk_packages(attention_kit.__path__, "attention_kit.")
    ]


def imported_names(path) -> set[str]:
    """Every absolute module name an ``import`` or ``from ... import`` in ``path`` names,
    wherever it sits (inside functions too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_the_tools_are_a_package_of_their_own():
    assert set(tool_modules()) >= {
        "release",
        "book",
        "executed",
        "browser",
        "slides",
        "grading",
        "learner",
        "bench",
    }


def test_no_tool_module_is_importable_from_the_kit():
    for name in tool_modules():
        assert importlib.util.find_spec(f"attention_kit.{name}") is None, name
        assert not (KIT / f"{name}.py").exists(), name


def test_no_kit_file_imports_the_tools():
    for path in sorted(KIT.rglob("*.py")):
        offending = {
            name
            for name in imported_names(path)
            if name.split(".")[0] == "course_tools"
        }
        assert not offending, f"{path.relative_to(ROOT)} imports {sorted(offending)}"


def test_importing_every_kit_module_loads_no_tool():
    modules = kit_modules()
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'course_tools'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    assert result.stdout.strip() == "[]", result.stdout
    assert len(modules) > 10


def test_the_tools_import_the_kit_only_by_its_public_name():
    """No relative import reaches across: ``from .attention import ...`` inside
    course_tools would mean a kit module had been copied into the tools."""
    kit_names = {info.name for info in pkgutil.iter_modules(attention_kit.__path__)}
    for path in sorted(TOOLS.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                assert node.module not in kit_names, (path.name, node.module)
