"""What `xsell models rollback` and `xsell config show` print, read as an operator reads it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from policies.deciding.vw import VWPolicy
from scripts.cli import cli
from service.resources import open_log_and_registry
from tests.conftest import make_settings


def _published(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *learned: int) -> None:
    settings = make_settings(tmp_path)
    store, registry = open_log_and_registry(settings)
    registry.ensure_initial(settings.vw_args)
    for events in learned:
        registry.publish(VWPolicy(settings.vw_args, events_learned=events), parent=registry.active().version)
    store.close()
    monkeypatch.setenv("XSELL_DATA_DIR", str(settings.data_dir))


@pytest.mark.parametrize(("learned", "count"), [(1, "(1 event learned)"), (1500, "(1,500 events learned)")])
def test_rollback_says_how_much_the_chosen_version_learned_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, learned: int, count: str
) -> None:
    _published(tmp_path, monkeypatch, learned, 0)  # v2 learned, v3 is a fresh reset
    monkeypatch.setenv("XSELL_ROLLBACK_DEFAULT_SECONDS", "0")
    result = CliRunner().invoke(cli, ["models", "rollback"])
    assert result.exit_code == 0, result.output
    chosen = next(line for line in result.output.splitlines() if line.startswith("chosen:"))
    assert (
        chosen
        == f"chosen: the newest earlier version that learned events and is at least 0 s older than v3 {count}"
    )
    assert len(re.findall(r"\d[\d,]*", chosen.replace("v3", ""))) == 2  # the 0 s and the count, nothing twice


def test_rollback_to_a_named_trained_version_gives_its_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _published(tmp_path, monkeypatch, 12, 0)
    result = CliRunner().invoke(cli, ["models", "rollback", "--to", "v2"])
    assert "chosen: v2 was named (12 events learned)\n" in result.output


def test_config_show_keeps_its_columns_aligned_whatever_the_values(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    long_dir = tmp_path / ("a-data-directory-with-a-long-name-" * 2)
    monkeypatch.setenv("XSELL_DATA_DIR", str(long_dir))
    monkeypatch.setenv("XSELL_VW_ARGS", "--cb_explore_adf --squarecb --gamma_scale 10 -q :: --cb_type mtr")
    result = CliRunner().invoke(cli, ["config", "show"])
    assert result.exit_code == 0, result.output
    table = result.stdout.split("\n\n")[0].splitlines()
    header = next(k for k, line in enumerate(table) if line.startswith("setting "))
    rows = table[header:]
    value_at, source_at = rows[0].index("value"), rows[0].index("source")
    assert len(rows) > 50
    for line in rows[1:]:
        name, value = line[:value_at].rstrip(), line[value_at:source_at].rstrip()
        assert name and " " not in name, line  # the name column holds the name alone
        assert line[source_at - 2 : source_at] == "  ", line  # the value ends before the source column
        assert line[source_at:].split()[0] in {"default", "environment", "live"}, line
        assert value, line
    assert any(str(long_dir) in line for line in rows)
