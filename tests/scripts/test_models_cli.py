"""`xsell models ...` against a real log and registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from policies.deciding.vw import VWPolicy
from scripts.cli import cli
from service.resources import open_log_and_registry
from tests.conftest import make_settings


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory with three published versions, v3 active."""
    settings = make_settings(tmp_path)
    store, registry = open_log_and_registry(settings)
    registry.ensure_initial(settings.vw_args)
    for _ in range(2):
        registry.publish(VWPolicy(settings.vw_args), parent=registry.active().version)
    store.close()
    monkeypatch.setenv("XSELL_DATA_DIR", str(settings.data_dir))
    return settings.data_dir


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["models", *args])


def test_list_shows_every_version_and_the_active_one(data_dir: Path) -> None:
    result = run("list", "--json")
    assert result.exit_code == 0, result.output
    overview = json.loads(result.stdout)
    assert overview["active"] == "v3"
    assert [r["version"] for r in overview["versions"]] == ["v3", "v2", "v1"]
    table = run("list").output
    assert "active: v3" in table and "learning: on" in table


def test_rollback_activate_and_freeze_are_recorded(data_dir: Path) -> None:
    result = run("rollback", "--to", "v1", "--reason", "offers went wrong", "--freeze")
    assert result.exit_code == 0, result.output
    assert "rollback: v1 is active (was v3)" in result.output
    overview = json.loads(run("list", "--json").stdout)
    assert overview["active"] == "v1" and overview["learning_frozen"]
    assert overview["changes"][0]["reason"] == "offers went wrong"
    assert run("unfreeze").exit_code == 0
    assert run("activate", "v2").exit_code == 0
    assert json.loads(run("list", "--json").stdout)["active"] == "v2"


def test_export_and_import_between_installations(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    exported = tmp_path / "v2.xsell-model"
    result = run("export", "v2", str(exported))
    assert result.exit_code == 0, result.output
    other = make_settings(tmp_path / "other")
    store, _ = open_log_and_registry(other)  # the other installation's service made its log
    store.close()
    monkeypatch.setenv("XSELL_DATA_DIR", str(other.data_dir))
    result = run("import", str(exported))
    assert result.exit_code == 0, result.output
    overview = json.loads(run("list", "--json").stdout)
    imported = next(r for r in overview["versions"] if r["state"] == "candidate")
    assert "v2" in imported["note"]
    assert run("promote", imported["version"]).exit_code == 0
    assert json.loads(run("list", "--json").stdout)["active"] == imported["version"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("activate", "v99"), "no model version 'v99'"),
        (("promote", "v1"), "not a candidate"),
        (("rollback", "--to", "v3"), "already active"),
        (("export", "v99", "out.tar"), "no model version 'v99'"),
        (("import", "missing.tar"), "cannot read the export"),
    ],
)
def test_bad_requests_print_one_error_line(data_dir: Path, args, message) -> None:
    result = run(*args)
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)
    assert message in result.output
    assert "Traceback" not in result.output
