"""Every command finds the service's log by one rule, from any directory, and says which it used."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from logs.catalog_store import CatalogStore
from scripts.cli import cli
from service.resources import open_log_and_registry
from tests.conftest import make_settings

# Commands that never open a log: benchmarks and simulations make their own.
NO_LOG = {"simulate", "bench serve", "bench estimators", "bench learning", "bench console", "faults disk"}
PRODUCTS = "sku,title,category,price,family,tags,stock\ncam-9,Test camera,camera,99,photo,photo,3\n"


def leaf_commands(group: click.Group = cli, prefix: str = "") -> dict[str, click.Command]:
    found: dict[str, click.Command] = {}
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            found |= leaf_commands(command, f"{path} ")
        else:
            found[path] = command
    return found


@pytest.fixture
def service_dir(tmp_path: Path) -> Path:
    """The data directory of a service that has made its log."""
    settings = make_settings(tmp_path / "srv")
    store, registry = open_log_and_registry(settings)
    registry.ensure_initial(settings.vw_args)
    store.close()
    return settings.data_dir


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Another working directory, with no XSELL_* variable naming the data directory."""
    directory = tmp_path / "elsewhere"
    directory.mkdir()
    monkeypatch.chdir(directory)
    monkeypatch.delenv("XSELL_DATA_DIR", raising=False)
    monkeypatch.delenv("XSELL_LOG_PATH", raising=False)
    (directory / "products.csv").write_text(PRODUCTS)
    return directory


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def products_in(data_dir: Path) -> list[str]:
    store, _ = open_log_and_registry(make_settings(data_dir.parent))
    try:
        return [p.sku for p in CatalogStore(store).page(category=None, offset=0, limit=100)[0]]
    finally:
        store.close()


def test_every_command_that_uses_a_log_takes_data_dir_and_log() -> None:
    commands = leaf_commands()
    assert {"models list", "catalog import", "relations review", "logs purge", "config show"} <= set(commands)
    for name, command in commands.items():
        options = {opt for param in command.params for opt in getattr(param, "opts", [])}
        if name in NO_LOG:
            assert "--data-dir" not in options, name
        else:
            assert {"--data-dir", "--log"} <= options, name


def test_catalog_import_from_another_directory_reaches_the_service_log(
    service_dir: Path, elsewhere: Path
) -> None:
    result = run("catalog", "import", "products.csv", "--data-dir", str(service_dir))
    assert result.exit_code == 0, result.output
    assert "imported 1 products" in result.stdout
    assert f"using log {service_dir.absolute() / 'xsell.db'}" in result.stderr
    assert products_in(service_dir) == ["cam-9"]
    assert not (elsewhere / "var").exists()


def test_the_data_dir_variable_is_the_same_rule(
    service_dir: Path, elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XSELL_DATA_DIR", str(service_dir))
    result = run("catalog", "import", "products.csv")
    assert result.exit_code == 0, result.output
    assert products_in(service_dir) == ["cam-9"]


def test_a_log_file_can_be_named_instead(service_dir: Path, elsewhere: Path) -> None:
    result = run(
        "models", "list", "--json", "--log", str(service_dir / "xsell.db"), "--data-dir", str(service_dir)
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["active"] == "v1"
    assert f"using log {service_dir / 'xsell.db'}" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["catalog", "import", "products.csv"],
        ["models", "list"],
        ["models", "freeze"],
        ["relations", "review"],
        ["logs", "purge", "--older-than", "90d", "--dry-run"],
        ["config", "set", "default_reward=-0.1"],
        ["evaluate"],
    ],
)
def test_without_a_log_where_it_looks_a_command_refuses_and_creates_nothing(
    elsewhere: Path, args: list[str]
) -> None:
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert f"no xsell log at {elsewhere / 'var' / 'xsell.db'}" in result.stderr
    assert "--data-dir" in result.stderr
    assert not (elsewhere / "var").exists()


@pytest.mark.parametrize(
    "args",
    [
        ["models", "list"],
        ["relations", "review"],
        ["logs", "purge", "--older-than", "90d", "--dry-run"],
        ["config", "show"],
    ],
)
def test_every_command_says_which_log_it_used(service_dir: Path, elsewhere: Path, args: list[str]) -> None:
    result = run(*args, "--data-dir", str(service_dir))
    assert result.exit_code == 0, result.output
    assert result.stderr.splitlines()[0] == f"using log {service_dir.absolute() / 'xsell.db'}"


def test_evaluate_says_which_log_it_read(service_dir: Path, elsewhere: Path) -> None:
    result = run("evaluate", "--data-dir", str(service_dir))
    assert f"using log {service_dir / 'xsell.db'}" in result.stderr
    assert "log is empty" in result.output  # it read the service's (still empty) log


def test_loading_data_starts_a_new_log_only_when_asked(elsewhere: Path) -> None:
    result = run("catalog", "import", "products.csv", "--create")
    assert result.exit_code == 0, result.output
    assert f"created a new, empty log at {elsewhere / 'var' / 'xsell.db'}" in result.stderr
    assert products_in(elsewhere / "var") == ["cam-9"]


def test_config_set_from_another_directory_is_what_the_service_runs_with(
    service_dir: Path, elsewhere: Path
) -> None:
    from service.app import create_app

    result = run(
        "config", "set", "default_reward=-0.05", "learning_mode=apprentice", "--data-dir", str(service_dir)
    )
    assert result.exit_code == 0, result.output
    assert "default_reward" in result.stdout and "live" in result.stdout
    shown = json.loads(run("config", "show", "--json", "--data-dir", str(service_dir)).stdout)
    assert shown["settings"]["default_reward"]["source"] == "live"
    app = create_app(make_settings(service_dir.parent, admin_api_keys="k"))
    try:
        body = app.test_client().get("/v1/config", headers={"Authorization": "Bearer k"}).get_json()
        assert body["settings"]["default_reward"] == shown["settings"]["default_reward"]
        assert body["settings"]["learning_mode"]["value"] == "apprentice"
        assert body["reward_rules"]["default_reward"] == -0.05
    finally:
        app.extensions["xsell"].store.close()
    reset = run("config", "reset", "default_reward", "--data-dir", str(service_dir))
    assert reset.exit_code == 0, reset.output
    shown = json.loads(run("config", "show", "--json", "--data-dir", str(service_dir)).stdout)
    assert shown["settings"]["default_reward"]["source"] == "default"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["default_reward"], "write KEY=VALUE"),
        (["vw_args=--cb_explore_adf"], "vw_args: not a live setting"),
        (["exploration_share=2"], "exploration_share: must be between 0 and 1"),
        (["learning_mode=sometimes"], "learning_mode"),
        (["log_retention_days=1.5"], "log_retention_days"),
    ],
)
def test_config_set_refuses_a_bad_assignment_and_changes_nothing(
    service_dir: Path, elsewhere: Path, args: list[str], message: str
) -> None:
    result = run("config", "set", *args, "--data-dir", str(service_dir))
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    shown = json.loads(run("config", "show", "--json", "--data-dir", str(service_dir)).stdout)
    assert shown["updated_at"] is None


def test_a_real_process_in_another_directory_uses_the_log_it_is_given(
    service_dir: Path, elsewhere: Path
) -> None:
    xsell = Path(sys.executable).with_name("xsell")
    command = [str(xsell)] if xsell.exists() else [sys.executable, "-m", "scripts"]
    done = subprocess.run(
        [*command, "catalog", "import", "products.csv", "--data-dir", str(service_dir)],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert f"using log {service_dir / 'xsell.db'}" in done.stderr
    assert "imported 1 products" in done.stdout
    assert products_in(service_dir) == ["cam-9"]
    refused = subprocess.run(
        [*command, "models", "list"], cwd=elsewhere, capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 1
    assert f"no xsell log at {elsewhere / 'var' / 'xsell.db'}" in refused.stderr
    assert not (elsewhere / "var").exists()


def test_config_show_without_a_log_shows_the_environment_and_creates_nothing(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XSELL_DEFAULT_REWARD", "-0.3")
    result = run("config", "show", "--json")
    assert result.exit_code == 0, result.output
    assert f"no log at {elsewhere / 'var' / 'xsell.db'}" in result.stderr
    shown = json.loads(result.stdout)
    assert shown["settings"]["default_reward"] == {
        "value": -0.3,
        "source": "environment",
        "live": True,
        "variable": "XSELL_DEFAULT_REWARD",
    }
    assert not (elsewhere / "var").exists()
