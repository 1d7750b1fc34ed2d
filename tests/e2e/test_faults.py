"""Kill -9 a gunicorn worker, or the learner, under load: nothing accepted is lost."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from tests.e2e.conftest import RunningService, start_service, stop_service

pytestmark = pytest.mark.e2e

ACTIONS = [{"id": "tripod"}, {"id": "memory_card"}, {"id": "bag"}]


class Load(threading.Thread):
    """Rank and give feedback until stopped; remember every 2xx (what was accepted)."""

    def __init__(self, url: str, seed: int):
        super().__init__(daemon=True)
        self.url, self.rng = url, np.random.default_rng(seed)
        self.decisions: dict[str, str] = {}  # event_id -> model_version answered
        self.feedback: list[str] = []
        self.workers: set[str] = set()
        self.errors = 0
        self.stop = threading.Event()

    def run(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            try:
                response = session.post(
                    f"{self.url}/v1/rank", json={"context": {"s": {"x": "1"}}, "actions": ACTIONS}, timeout=10
                )
                if response.status_code != 200:
                    self.errors += 1
                    continue
                answer = response.json()
                self.decisions[answer["event_id"]] = answer["model_version"]
                self.workers.add(response.headers["X-Xsell-Worker"])
                if self.rng.random() < 0.5:
                    sent = session.post(
                        f"{self.url}/v1/events/{answer['event_id']}/feedback",
                        json={"signal": "click"},
                        timeout=10,
                    )
                    if sent.status_code == 200:
                        self.feedback.append(answer["event_id"])
            except requests.RequestException:
                self.errors += 1  # a connection cut by the kill: not accepted, so not owed
                session = requests.Session()


def run_load(service: RunningService, fault, seconds: float = 6.0) -> list[Load]:
    loads = [Load(service.url, seed) for seed in range(3)]
    for load in loads:
        load.start()
    time.sleep(seconds / 2)
    fault()
    time.sleep(seconds / 2)
    for load in loads:
        load.stop.set()
        load.join(timeout=30)
    return loads


def assert_nothing_accepted_was_lost(service: RunningService, loads: list[Load]) -> sqlite3.Connection:
    db = sqlite3.connect(service.data_dir / "xsell.db")
    logged = dict(db.execute("SELECT event_id, model_version FROM decisions").fetchall())
    with_feedback = {row[0] for row in db.execute("SELECT DISTINCT event_id FROM feedback")}
    for load in loads:
        for event_id, version in load.decisions.items():
            assert logged.get(event_id) == version  # durable, and names who served it
        assert set(load.feedback) <= with_feedback
    assert sum(len(load.decisions) for load in loads) > 100
    assert any(load.feedback for load in loads)  # else the subset check above proves nothing
    return db


def assert_no_event_learned_twice(service: RunningService, db: sqlite3.Connection) -> None:
    """The active model's own count of events learned equals the events its lineage marked."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        models = {
            row[0]: row for row in db.execute("SELECT version, parent, events_learned, state FROM models")
        }
        active = next(v for v, row in models.items() if row[3] == "active")
        lineage, version = set(), active
        while version:
            lineage.add(version)
            version = models[version][1]
        marks = ", ".join("?" * len(lineage))
        marked = db.execute(
            f"SELECT count(*) FROM decisions WHERE learned_in IN ({marks})", list(lineage)
        ).fetchone()[0]
        unlearned = db.execute("SELECT count(*) FROM decisions WHERE learned_in IS NULL").fetchone()[0]
        if unlearned == 0:
            assert models[active][2] == marked
            return
        time.sleep(0.5)
    raise AssertionError("the learner did not catch up within 20 s")


@pytest.fixture
def loaded_service(tmp_path: Path):
    running = start_service(tmp_path, XSELL_REWARD_WINDOW_SECONDS="0.5", XSELL_GUARDRAIL_ENABLED="false")
    yield running
    stop_service(running)


def test_killing_a_worker_loses_no_accepted_decision_or_feedback(loaded_service: RunningService) -> None:
    service = loaded_service
    victims: list[int] = []

    def kill_a_worker() -> None:
        worker = requests.post(f"{service.url}/v1/rank", json={"actions": ACTIONS}, timeout=10).headers[
            "X-Xsell-Worker"
        ]
        victims.append(int(worker))
        os.kill(int(worker), signal.SIGKILL)

    loads = run_load(service, kill_a_worker)
    db = assert_nothing_accepted_was_lost(service, loads)
    # gunicorn replaced the worker and the service kept answering
    assert requests.get(f"{service.url}/readyz", timeout=10).status_code == 200
    seen = set().union(*(load.workers for load in loads))
    assert seen - {str(victims[0])}  # other workers (and the replacement) answered
    assert_no_event_learned_twice(service, db)


def test_killing_the_learner_resumes_from_the_last_snapshot_without_relearning(
    loaded_service: RunningService,
) -> None:
    service = loaded_service
    pid = int(re.search(r"learner pid (\d+)", service.log()).group(1))

    loads = run_load(service, lambda: os.kill(pid, signal.SIGKILL), seconds=8.0)
    db = assert_nothing_accepted_was_lost(service, loads)
    assert "learner exited with -9; restarting" in service.log()
    assert_no_event_learned_twice(service, db)


def test_four_workers_and_64_connections_write_without_loss_or_duplicates(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    service = start_service(tmp_path, XSELL_WORKERS="4", XSELL_GUARDRAIL_ENABLED="false")
    try:

        def client(index: int) -> list[str]:
            session, accepted = requests.Session(), []
            for round_index in range(15):
                event_id = f"c{index}-r{round_index}"
                body = {"event_id": event_id, "context": {"s": {"x": str(index)}}, "actions": ACTIONS}
                assert session.post(f"{service.url}/v1/rank", json=body, timeout=30).status_code == 200
                feedback = session.post(
                    f"{service.url}/v1/events/{event_id}/feedback", json={"signal": "click"}, timeout=30
                )
                assert feedback.status_code == 200, feedback.text
                accepted.append(event_id)
            return accepted

        with ThreadPoolExecutor(max_workers=64) as pool:
            accepted = [e for batch in pool.map(client, range(64)) for e in batch]
        db = sqlite3.connect(service.data_dir / "xsell.db")
        decisions = [row[0] for row in db.execute("SELECT event_id FROM decisions")]
        feedback = [row[0] for row in db.execute("SELECT event_id FROM feedback")]
        assert sorted(decisions) == sorted(accepted)  # none lost, none duplicated
        assert sorted(feedback) == sorted(accepted)
        assert "database is locked" not in service.log()
    finally:
        stop_service(service)
