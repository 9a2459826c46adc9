"""Every module imports only from its own layer or the layers below it.

The layers, lowest first, follow the asset graph's direction of dependence: the rules of
money, periods and KPIs know nothing of Dagster runs; the assets know nothing of the
schedules that launch them; only the command line sees everything. Parsed with `ast`, so
the test costs no imports and names the module and the import that break the order.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = "metrics_pipeline"
ROOT = Path(__file__).resolve().parent.parent / PACKAGE

# (layer, module prefixes), lowest first. A module may import its own layer and those below.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("domain", ("metrics_pipeline.domain",)),
    (
        "base",
        (
            "metrics_pipeline.stopping",
            "metrics_pipeline.clock",
            "metrics_pipeline.partitions",
            "metrics_pipeline.env_settings",
            "metrics_pipeline.text",
            "metrics_pipeline.http_bounds",
        ),
    ),
    (
        "adapters",
        (
            "metrics_pipeline.config",
            "metrics_pipeline.meta",
            "metrics_pipeline.warehouse",
            "metrics_pipeline.sandbox",
            "metrics_pipeline.catalog",
            "metrics_pipeline.fx",
        ),
    ),
    ("steps", ("metrics_pipeline.steps", "metrics_pipeline.checks")),
    ("assets", ("metrics_pipeline.assets",)),
    ("automation", ("metrics_pipeline.automation",)),
    ("runner", ("metrics_pipeline.runner",)),
    ("definitions", ("metrics_pipeline.definitions",)),
    ("cli", ("metrics_pipeline.cli",)),
)
ASSET_GROUPS = ("meta", "kpis", "serving", "health", "portfolio")


def layer_of(module: str) -> int | None:
    """Index of the layer `module` belongs to; None for the bare package."""
    for index, (_, prefixes) in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    return None


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, module) for every import of this package in the file, however nested."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            if base == PACKAGE:  # `from metrics_pipeline import stopping`
                found += [(node.lineno, f"{PACKAGE}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, base))
    return [(line, name) for line, name in found if name.split(".")[0] == PACKAGE]


MODULES = sorted(ROOT.rglob("*.py"))


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in map(module_name, MODULES) if m != PACKAGE and layer_of(m) is None]
    assert not unplaced, f"modules missing from LAYERS: {unplaced}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: module_name(p))
def test_no_module_imports_from_a_layer_above_its_own(path: Path) -> None:
    module = module_name(path)
    own = layer_of(module)
    if own is None:
        return
    upward = [
        f"{module} (layer {LAYERS[own][0]}) line {line}: imports {name} (layer {LAYERS[target][0]})"
        for line, name in imported_modules(path, module)
        if (target := layer_of(name)) is not None and target > own
    ]
    assert not upward, "\n".join(upward)


@pytest.mark.parametrize("group", ASSET_GROUPS)
def test_asset_groups_do_not_import_each_other(group: str) -> None:
    """A group receives its upstream assets as arguments, never by importing their module."""
    others = [f"{PACKAGE}.assets.{g}" for g in ASSET_GROUPS if g != group]
    crossing = [
        f"{module_name(path)} line {line}: imports {name}"
        for path in sorted((ROOT / "assets" / group).rglob("*.py"))
        for line, name in imported_modules(path, module_name(path))
        if any(name == o or name.startswith(o + ".") for o in others)
    ]
    assert not crossing, "\n".join(crossing)
