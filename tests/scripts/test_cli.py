from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from scripts.cli import cli
from service.settings import Settings

README = (Path(__file__).parents[2] / "README.md").read_text()


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_help_with_an_example_and_is_in_the_readme(command: str) -> None:
    result = CliRunner().invoke(cli, [command, "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output
    assert f"`xsell {command}`" in README


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_every_setting_is_in_the_readme_configuration_table(name: str) -> None:
    assert re.search(rf"^\| `XSELL_{name.upper()}` \|", README, re.MULTILINE)


def test_simulate_compares_exploration_settings(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "simulate",
            "--rounds",
            "300",
            "--seeds",
            "1",
            "--json",
            "--vw-args",
            "--cb_explore_adf --epsilon 0.1",
        ],
    )
    assert result.exit_code == 0, result.output
    [row] = json.loads(result.output)
    assert row["vw_args"] == "--cb_explore_adf --epsilon 0.1"
    assert row["uniform_value"] < row["best_value"]
    assert 0.0 <= row["online_reward"] <= 1.0


def test_invalid_configuration_is_a_usage_error_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XSELL_VW_ARGS", "--cb_explore_adf -f /tmp/out.vw")
    result = CliRunner().invoke(cli, ["learn"])
    assert result.exit_code == 2
    assert "invalid configuration" in result.output
    assert "Traceback" not in result.output


def test_bench_estimators_prints_a_row_per_estimator_against_the_baseline() -> None:
    result = CliRunner().invoke(
        cli, ["bench", "estimators", "--events", "5000", "--repeats", "1", "--replay-events", "300"]
    )
    assert result.exit_code == 0, result.output
    rows = {line.split()[0] for line in result.output.splitlines() if line}
    assert {"baseline:", "IPS", "SNIPS", "DM", "DR", "SNDR", "replay"} <= rows
