"""Numbers read right after traffic are not inflated by the feedback that came first.

Against real gunicorn workers and the learner: decisions made, evaluated at once
(some still within their reward window) and again after every window ended.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from scripts.cli import cli
from tests.e2e.conftest import RunningService, start_service, stop_service

pytestmark = pytest.mark.e2e

WINDOW_SECONDS = 10.0
CONTEXT = {"shopper": {"segment": "pro", "device": "mobile"}}
ACTIONS = [{"id": "tripod"}, {"id": "memory_card"}, {"id": "bag"}]


@pytest.fixture
def long_window(tmp_path: Path) -> Iterator[RunningService]:
    running = start_service(tmp_path, XSELL_REWARD_WINDOW_SECONDS=str(WINDOW_SECONDS))
    yield running
    stop_service(running)


def _traffic(url: str, prefix: str, count: int) -> int:
    """Rank `count` times; the shopper clicks whenever the bag is offered. Return the clicks."""
    clicks = 0
    for i in range(count):
        answer = requests.post(
            f"{url}/v1/rank",
            json={"event_id": f"{prefix}-{i}", "context": CONTEXT, "actions": ACTIONS},
            timeout=10,
        ).json()
        if answer["chosen"] == ["bag"]:
            requests.post(f"{url}/v1/events/{prefix}-{i}/feedback", json={"signal": "click"}, timeout=10)
            clicks += 1
    return clicks


def _evaluate(service: RunningService) -> dict:
    log = service.data_dir / "xsell.db"
    result = CliRunner().invoke(
        cli, ["evaluate", "--log", str(log), "--policy", "uniform", "--no-reward-model", "--json"]
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output[result.output.index("{") :])


def _closed(service: RunningService) -> int:
    """How many decisions in the log have ended their reward window by now."""
    conn = sqlite3.connect(f"file:{service.data_dir / 'xsell.db'}?mode=ro", uri=True)
    try:
        return int(
            conn.execute("SELECT count(*) FROM decisions WHERE closes_at <= ?", (time.time(),)).fetchone()[0]
        )
    finally:
        conn.close()


def _logged(evaluation: dict) -> dict:
    [logged] = [p for p in evaluation["policies"] if p["policy"] == "logged"]
    [estimate] = logged["estimates"]
    return estimate


def test_an_early_evaluation_is_not_above_the_late_one(long_window: RunningService) -> None:
    _traffic(long_window.url, "a", 90)
    time.sleep(WINDOW_SECONDS + 1)  # every decision of the first batch has closed
    clicked_late = _traffic(long_window.url, "b", 90)
    assert clicked_late > 0  # else the test shows nothing

    closed_before = _closed(long_window)
    early = _evaluate(long_window)
    closed_after = _closed(long_window)
    # Only the decisions whose window ended count (the first batch, and on a slow machine
    # perhaps the second's first few): the answered decisions of the second do not count
    # before their window ends, just as its silent ones do not, and the answer says so.
    assert closed_before >= 90 and closed_before <= early["decisions"] <= closed_after
    assert early["open_events"] == 180 - early["decisions"] > 0
    time.sleep(WINDOW_SECONDS + 1)
    late = _evaluate(long_window)
    assert late["decisions"] == 180 and late["open_events"] == 0
    early_value, late_value = _logged(early), _logged(late)
    # Before feedback stopped closing windows early, the early figure counted every
    # clicked decision of the second batch but none of its silent ones.
    assert early_value["value"] <= late_value["high"], (early_value, late_value)
