"""An experiment against real gunicorn workers: every worker serves it, and a shopper's
arm is the same whichever worker answers (the keyed hash uses the one server secret)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import start_service, stop_service

pytestmark = pytest.mark.e2e

ADMIN = {"Authorization": "Bearer e2e-admin"}
ACTIONS = [{"id": "tripod"}, {"id": "memory_card"}, {"id": "bag"}]
ARMS = [
    {"name": "bandit", "policy": "model", "share": 0.5},
    {"name": "holdout", "policy": "no-offer", "share": 0.5},
]


def test_every_worker_serves_the_experiment_and_arms_stick_across_workers(tmp_path: Path) -> None:
    running = start_service(
        tmp_path,
        XSELL_WORKERS="3",
        XSELL_ADMIN_API_KEYS="e2e-admin",
        XSELL_SHOPPER_ID_SECRET="e2e-experiments",
    )
    try:
        url = running.url
        started = requests.post(
            f"{url}/v1/experiments", headers=ADMIN, json={"id": "e2e", "arms": ARMS}, timeout=10
        )
        assert started.status_code == 201, started.text

        # Every worker reads the running experiment within its poll interval, and workers
        # take connections as they come: ask on many concurrent connections until the
        # answers come from several workers and every shopper's arm is settled (a
        # condition with a deadline, not a pause).
        def rank(k: int) -> tuple[str, str, bool]:
            shopper = f"shopper-{k % 12}"
            answer = requests.post(
                f"{url}/v1/rank", json={"actions": ACTIONS, "shopper_id": shopper}, timeout=10
            )
            assert answer.status_code == 200, answer.text
            return shopper, answer.headers["X-Xsell-Worker"], bool(answer.json()["chosen"])

        deadline = time.monotonic() + 120
        arms: dict[str, dict[str, set[bool]]] = {}  # shopper -> worker -> offered?
        workers: set[str] = set()
        while time.monotonic() < deadline:
            arms.clear()
            workers.clear()
            with ThreadPoolExecutor(max_workers=12) as pool:
                for shopper, worker, offered in pool.map(rank, range(120)):
                    workers.add(worker)
                    arms.setdefault(shopper, {}).setdefault(worker, set()).add(offered)
            settled = all(len({o for seen in by.values() for o in seen}) == 1 for by in arms.values())
            if settled and len(workers) >= 2:
                break
            time.sleep(0.2)
        assert len(workers) >= 2, "the answers came from more than one worker"
        for shopper, by_worker in arms.items():
            offered = {o for seen in by_worker.values() for o in seen}
            assert len(offered) == 1, f"{shopper} switched arms across workers {by_worker}"
        assert {next(iter({o for s in by.values() for o in s})) for by in arms.values()} == {True, False}
        stopped = requests.post(f"{url}/v1/experiments/e2e/stop", headers=ADMIN, json={}, timeout=10)
        assert stopped.status_code == 200, stopped.text
    finally:
        stop_service(running)
