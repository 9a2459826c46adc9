"""The dependency floors docs/reliability.md lists are the ones pyproject.toml declares, and
what is installed is at or above them."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).parents[1]


def documented_floors() -> dict[str, str]:
    text = (ROOT / "docs" / "reliability.md").read_text()
    section = text.split("## Dependency floors", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| ([a-z0-9_.-]+) \| ([0-9.]+) \| ", section, flags=re.MULTILINE)
    return dict(rows)


def declared_floors() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    lines = [
        *project["build-system"]["requires"],
        *project["project"]["dependencies"],
        *(line for extra in project["project"]["optional-dependencies"].values() for line in extra),
    ]
    floors = {}
    for line in lines:
        requirement = Requirement(line)
        for spec in requirement.specifier:
            if spec.operator == ">=":
                floors[requirement.name.lower()] = spec.version
    return floors


def test_every_documented_floor_is_declared_and_installed():
    documented = documented_floors()
    assert len(documented) == 8
    declared = declared_floors()
    assert {name: declared.get(name) for name in documented} == documented
    below = {
        name: version(name)
        for name, floor in documented.items()
        if name != "setuptools" and Version(version(name)) < Version(floor)
    }
    assert below == {}
