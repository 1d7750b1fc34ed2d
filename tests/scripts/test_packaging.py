"""What an installation gets: every import declared, bounds on what the service runs on,
matplotlib only for `xsell evaluate --report`, and the license the metadata names."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from click.testing import CliRunner

from scripts.cli import cli
from tests.obd_fixture import write_obd

ROOT = Path(__file__).parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
FIRST_PARTY = {"service", "logs", "policies", "scripts", "tests"}
DEVTOOLS = ROOT / "scripts" / "devtools"


def _name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def _declared(*groups: str) -> set[str]:
    names = {_name(r) for r in PROJECT["dependencies"]} if "runtime" in groups else set()
    for group in groups:
        names |= {_name(r) for r in PROJECT["optional-dependencies"].get(group, [])}
    return names


@cache
def _distributions() -> dict[str, list[str]]:
    return dict(packages_distributions())  # reads every installed distribution: once


def _third_party(path: Path, *, lazy: bool) -> set[str]:
    """Return the third-party distributions `path` imports: at load only, or everywhere (`lazy`)."""
    tree = ast.parse(path.read_text())
    modules: set[str] = set()
    for node in ast.walk(tree) if lazy else tree.body:
        if isinstance(node, ast.Import):
            modules |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module.split(".")[0])
    modules -= FIRST_PARTY | set(sys.stdlib_module_names) | {"__future__"}
    distributions = _distributions()
    unknown = sorted(m for m in modules if m not in distributions)
    assert not unknown, (
        f"{path.relative_to(ROOT)} imports {unknown}, which no installed distribution provides"
    )
    return {_name(d) for m in modules for d in distributions[m]}


def _shipped() -> list[Path]:
    found = sorted(
        p for folder in ("service", "logs", "policies", "scripts") for p in (ROOT / folder).rglob("*.py")
    )
    assert len(found) > 50
    return found


@pytest.mark.parametrize("path", _shipped(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_import_of_the_shipped_code_is_declared(path: Path) -> None:
    # What a module needs to load is a runtime dependency; what one function reaches for
    # may be an optional extra (report, archive), and for a developer tool a dev package.
    at_load = _third_party(path, lazy=False) - _declared("runtime")
    assert not at_load, f"{path.relative_to(ROOT)} needs {sorted(at_load)} to load: declare them"
    extras = set(PROJECT["optional-dependencies"]) - ({"dev"} if DEVTOOLS not in path.parents else set())
    undeclared = _third_party(path, lazy=True) - _declared("runtime", *extras)
    assert not undeclared, f"{path.relative_to(ROOT)} imports {sorted(undeclared)}: declare them"


def test_matplotlib_is_the_report_extra_not_a_runtime_dependency() -> None:
    assert "matplotlib" not in _declared("runtime")
    assert "matplotlib" in _declared("report")


@pytest.mark.parametrize("requirement", PROJECT["dependencies"])
def test_what_the_service_runs_on_has_an_upper_bound(requirement: str) -> None:
    assert re.search(r"<\s*[0-9]", requirement), f"{requirement}: give it an upper bound (<next major)"


def test_the_license_file_is_the_license_the_metadata_declares() -> None:
    assert PROJECT["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Permission is hereby granted, free of charge" in text


def test_evaluate_report_without_matplotlib_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    obd = write_obd(tmp_path / "random" / "all", rows=50)
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # what an installation without the extra sees
    report = tmp_path / "report"
    result = CliRunner().invoke(cli, ["evaluate", "--obd", str(obd), "--report", str(report)])
    assert result.exit_code == 1, result.output
    assert "pip install 'xsell[report]'" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not report.exists()
