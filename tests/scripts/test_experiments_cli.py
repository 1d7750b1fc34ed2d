"""`xsell experiments ...` against a real log and registry."""

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
    settings = make_settings(tmp_path)
    store, registry = open_log_and_registry(settings)
    registry.ensure_initial(settings.vw_args)
    registry.publish(VWPolicy(settings.vw_args), parent=registry.active().version)
    store.close()
    monkeypatch.setenv("XSELL_DATA_DIR", str(settings.data_dir))
    return settings.data_dir


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["experiments", *args])


def test_start_show_list_and_ship_from_the_command_line(data_dir: Path) -> None:
    started = run(
        "start",
        "spring",
        "--arm",
        "bandit=model:0.5",
        "--arm",
        "old=frozen:0.3:v1",
        "--arm",
        "none=no-offer:0.2",
    )
    assert started.exit_code == 0, started.output
    assert "started spring: bandit model 0.5, old frozen 0.3, none no-offer 0.2" in started.output
    shown = run("show", "spring", "--json")
    assert shown.exit_code == 0, shown.output
    results = json.loads(shown.stdout)
    assert results["control"] == "none" and [a["decisions"] for a in results["arms"]] == [0, 0, 0]
    assert "sample ratio" in run("show", "spring").output
    again = run("start", "other", "--arm", "a=model:0.5", "--arm", "b=no-offer:0.5")
    assert again.exit_code == 1 and "another experiment is running" in again.output
    shipped = run("ship", "spring", "old", "--reason", "it won")
    assert shipped.exit_code == 0, shipped.output
    listed = json.loads(run("list", "--json").stdout)
    assert [(e["id"], e["status"], e["shipped_arm"]) for e in listed] == [("spring", "shipped", "old")]
    history = json.loads(CliRunner().invoke(cli, ["models", "list", "--json"]).stdout)
    assert history["active"] == "v1"
    assert [c["action"] for c in history["changes"]][:3] == [
        "experiment-ship",
        "activate",
        "experiment-start",
    ]


@pytest.mark.parametrize(
    ("arms", "named"),
    [
        (["a=model:0.5", "b=no-offer:0.6"], "arms: Value error, the arms' shares add up to 1.1"),
        (["a=bandit:0.5", "b=no-offer:0.5"], "arms.0.policy"),
        (["a=frozen:0.5:v9", "b=no-offer:0.5"], "arms.0.version: no model version 'v9'"),
    ],
)
def test_bad_arms_are_refused_naming_the_field(data_dir: Path, arms: list[str], named: str) -> None:
    result = run("start", "x", *[f"--arm={a}" for a in arms])
    assert result.exit_code == 1 and named in result.output, result.output
    assert json.loads(run("list", "--json").stdout) == []
