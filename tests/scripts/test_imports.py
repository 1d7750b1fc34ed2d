"""What the shipped code imports: no developer tool on a user's path.

The installed `xsell` has only the runtime dependencies; `requests`, `obp`, `pytest`
and the like come with the dev extras. Parsing the imports (rather than importing
every module in a bare virtualenv) keeps this fast and exact.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
DEV_ONLY = {"requests", "obp", "schemathesis", "pytest", "hypothesis", "azure", "ruff", "mypy"}
RUNTIME_DIRS = ("service", "logs", "policies", "scripts")


def _modules(*folders: str) -> list[Path]:
    found = sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py"))
    assert found, f"no modules under {folders}"
    return found


def _imports(path: Path, *, top_level_only: bool = False) -> Iterator[tuple[int, str]]:
    """Yield (line, top-level package) for every absolute import in `path`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name.split(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.lineno, node.module.split(".")[0]


def _runtime_modules() -> list[Path]:
    devtools = ROOT / "scripts" / "devtools"
    return [p for p in _modules(*RUNTIME_DIRS) if devtools not in p.parents]


@pytest.mark.parametrize("path", _runtime_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_runtime_modules_never_import_a_dev_only_package(path: Path) -> None:
    found = [f"line {line}: {name}" for line, name in _imports(path) if name in DEV_ONLY]
    assert not found, f"{path.relative_to(ROOT)} imports a dev-only package: {found}"


@pytest.mark.parametrize("path", _modules("scripts/devtools"), ids=lambda p: str(p.relative_to(ROOT)))
def test_dev_tools_load_without_the_dev_extras(path: Path) -> None:
    # `xsell bench`, `xsell faults` and `xsell simulate` import these; an optional
    # reference (reward_model_check --obp) may import a dev package where it is used.
    found = [f"line {line}: {name}" for line, name in _imports(path, top_level_only=True) if name in DEV_ONLY]
    assert not found, f"{path.relative_to(ROOT)} imports a dev-only package at load: {found}"


def test_the_user_commands_never_import_a_dev_tool() -> None:
    commands = _modules("scripts/commands")
    user = [p for p in commands if p.stem not in {"bench", "faults", "simulate"}]
    assert len(user) >= 6
    for path in user:
        tree = ast.parse(path.read_text())
        modules = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
        assert not [m for m in modules if m.startswith("scripts.devtools")], path.name
