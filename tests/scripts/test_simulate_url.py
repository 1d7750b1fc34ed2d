"""`xsell simulate --url` reports every round it drove, over real HTTP to the real app."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from werkzeug.serving import make_server

from scripts.cli import cli
from scripts.http import JsonClient
from service.app import create_app
from tests.conftest import make_settings


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    app = create_app(make_settings(tmp_path))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join()
        app.extensions["xsell"].store.close()


def test_fewer_rounds_than_a_window_still_report_their_click_rate(url: str) -> None:
    result = CliRunner().invoke(cli, ["simulate", "--url", url, "--rounds", "120"])

    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rounds      1-120    click rate ")


def test_the_last_shorter_window_is_reported_with_its_own_range(url: str) -> None:
    result = CliRunner().invoke(cli, ["simulate", "--url", url, "--rounds", "620", "--json"])

    assert result.exit_code == 0, result.output
    rates = json.loads(result.output)["click_rate_per_500"]
    assert len(rates) == 2 and all(0 <= rate <= 1 for rate in rates)


def test_an_event_id_used_before_is_one_line_naming_the_way_out(url: str) -> None:
    taken = JsonClient(url)
    taken.post("/v1/rank", {"event_id": "sim-0-0", "actions": [{"id": "someone-else"}]})
    taken.close()

    refused = CliRunner().invoke(cli, ["simulate", "--url", url, "--rounds", "5"])
    other_seed = CliRunner().invoke(cli, ["simulate", "--url", url, "--rounds", "5", "--seed", "1"])

    assert refused.exit_code == 1 and isinstance(refused.exception, SystemExit)
    assert "event_conflict" in refused.output and "pass another --seed" in refused.output
    assert "Traceback" not in refused.output
    assert other_seed.exit_code == 0 and other_seed.output.startswith("rounds      1-5 ")
