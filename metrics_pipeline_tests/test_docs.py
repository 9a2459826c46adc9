"""What the README and docs/ tell a reader holds: every test they name exists, and every
command they give to paste runs from a fresh clone, where nothing activated the virtual
environment. Read as text, without running anything."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
TESTS = Path(__file__).parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# `test_x.py::test_name[param]`, `test_x.py`, and `::test_name` naming another test of the
# file named before it on the line (`test_x.py::test_a`, `::test_b`).
REFERENCE = re.compile(r"(?<!\w)(?P<file>test_\w+\.py)?(?:::(?P<name>test_\w+))?")
# A test named alone, in backticks: `test_name` or `test_name[param]`.
BARE_NAME = re.compile(r"`(?P<name>test_\w+)(?:\[[^\]`]*\])?`")
# The console scripts the install puts in .venv/bin and nowhere else.
VENV_SCRIPTS = {"metrics-pipeline", "dagster", "dagster-webserver", "dagster-daemon", "dg"}
VENV_SCRIPTS |= {"pytest", "ruff"}


def _defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
    }


def references(text: str) -> list[tuple[int, str | None, str | None]]:
    """(line, test file, test name) for every test `text` names: the file None for a name
    given alone, the name None for a whole file."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        current = None
        for match in REFERENCE.finditer(line):
            if match["file"]:
                current = match["file"]
            elif not match["name"]:
                continue
            found.append((number, current or "(no file before it)", match["name"]))
        found += [(number, None, m["name"]) for m in BARE_NAME.finditer(line)]
    return found


def _all_references() -> list[tuple[str, int, str | None, str | None]]:
    return [(doc.name, *ref) for doc in DOCS for ref in references(doc.read_text())]


ALL_TESTS = {path.name: _defined_tests(path) for path in sorted(TESTS.glob("test_*.py"))}


@pytest.mark.parametrize(
    ("doc", "line", "file", "name"),
    _all_references(),
    ids=[f"{d}:{n}:{f or ''}::{t or ''}" for d, n, f, t in _all_references()],
)
def test_every_test_the_docs_name_exists(doc, line, file, name):
    if file is None:  # a test named alone: some test file defines it
        assert any(name in names for names in ALL_TESTS.values()), (
            f"{doc}:{line} names {name}: no test file defines it"
        )
        return
    assert file in ALL_TESTS, f"{doc}:{line} names {file}, which does not exist"
    if name:
        assert name in ALL_TESTS[file], f"{doc}:{line} names {file}::{name}: no such test"


def test_the_reference_reader_finds_every_form():
    """The reader itself, on the forms the docs use (a reader that found nothing would pass
    every document)."""
    text = (
        "`test_cli.py::test_a[2]` and `[15]`, `::test_b`; `test_docs.py`, "
        "`metrics_pipeline_tests/test_pacing.py -k once`; `test_c[sqlite]`; latest_x.py"
    )
    assert references(text) == [
        (1, "test_cli.py", "test_a"),
        (1, "test_cli.py", "test_b"),
        (1, "test_docs.py", None),
        (1, "test_pacing.py", None),
        (1, None, "test_c"),
    ]
    assert len(_all_references()) > 80


def _bash_commands(doc: Path) -> list[tuple[int, str]]:
    """(line, command) for each command of the document's ```bash blocks, comments
    removed, split at `&&`, `||`, `;`, `|` and `&`."""
    commands, inside = [], False
    for number, line in enumerate(doc.read_text().splitlines(), start=1):
        if line.startswith("```"):
            inside = line.strip() == "```bash"
            continue
        if inside:
            code = re.split(r"\s#", line, maxsplit=1)[0]
            commands += [(number, part.strip()) for part in re.split(r"&&|\|\||;|\||&", code)]
    return [(n, c) for n, c in commands if c]


def _program(command: str) -> str | None:
    """The program a command runs: past `VAR=value` assignments; None for `export`."""
    words = command.split()
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S*", words[0]):
        words.pop(0)
    if not words or words[0] in ("export", "source", "cd"):
        return None
    return words[0]


def test_every_readme_command_runs_without_activating_the_virtual_environment():
    """The README installs into .venv and never activates it: a pasted `metrics-pipeline`
    or `dagster` is "command not found" there. Each of its commands names the script by its
    path (or activates the environment first, in the same block)."""
    readme = ROOT / "README.md"
    commands = _bash_commands(readme)
    assert len(commands) >= 5
    wrong = []
    for line, command in commands:
        program = _program(command) or ""
        script = Path(program).name
        if script in VENV_SCRIPTS and program != f".venv/bin/{script}":
            wrong.append(f"README.md:{line}: {command}")
    assert wrong == []


def test_the_command_reader_sees_a_bare_script_behind_assignments():
    assert _program("DAGSTER_HOME=$PWD/x dagster dev") == "dagster"
    assert _program("DAGSTER_HOME=$PWD/x .venv/bin/dagster dev") == ".venv/bin/dagster"
    assert _program("export META_API_BASE_URL=http://127.0.0.1:8765") is None
