"""Start the real thing: `xsell serve` (gunicorn workers + learner) on a free port."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scripts.devtools.service_process import RunningService, free_port, stop_service
from scripts.devtools.service_process import start_service as start_xsell

__all__ = ["RunningService", "free_port", "start_service", "stop_service"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test here slow: each starts real gunicorn workers and a learner (5-20 s)."""
    here = Path(__file__).parent
    for item in items:
        if here in item.path.parents:
            item.add_marker(pytest.mark.slow)


def start_service(tmp_path: Path, **env: str) -> RunningService:
    """Start `xsell serve` on tmp_path/var with quick polls and snapshots; XSELL_* overrides in `env`."""
    quick = {
        "XSELL_WORKERS": "2",
        "XSELL_MODEL_POLL_SECONDS": "0.2",
        "XSELL_SNAPSHOT_INTERVAL_SECONDS": "0.5",
        "XSELL_LEARNER_GRACE_SECONDS": "0.2",
    }
    return start_xsell(tmp_path / "var", tmp_path / "service.log", env={**quick, **env}, port=free_port())


@pytest.fixture
def service(tmp_path: Path) -> Iterator[RunningService]:
    running = start_service(tmp_path, XSELL_REWARD_WINDOW_SECONDS="0.5")
    yield running
    stop_service(running)


def wait_for(condition: Callable[[], object], what: str, seconds: float = 120.0) -> None:
    """Wait until `condition()` is true, or fail naming `what` (never a fixed sleep: a
    loaded machine only takes longer)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")
