"""The disk budget: what the log takes, days until the budget, pruning that keeps what matters."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from logs.db import transaction
from logs.dialect import POSTGRESQL, DatabaseUrl
from logs.footprint import DAY_SECONDS, NO_BUDGET, LogFootprint, describe
from logs.store import LogStore
from scripts.learn import build_learner
from service.app import create_app
from tests.conftest import make_settings
from tests.logs.helpers import decision

NOW = 1_800_000_000.0


def _log(store: LogStore, prefix: str, n: int, *, at: float, window: float, learned: bool) -> list[str]:
    ids = [f"{prefix}-{k:04d}" for k in range(n)]
    for k, event_id in enumerate(ids):
        store.record_decision(decision(event_id, created_at=at + k, window=window))
    if learned:
        with transaction(store.conn) as conn:
            store.mark_learned(conn, dict.fromkeys(ids), "v1")
    return ids


def _remaining(store: LogStore) -> set[str]:
    return {r[0] for r in store.conn.execute("SELECT event_id FROM decisions")}


@pytest.fixture
def clocked(log_location: Path | DatabaseUrl) -> Iterator[LogStore]:
    store = LogStore(log_location, clock=lambda: NOW)
    store.migrate()
    yield store
    store.close()


def test_pruning_never_drops_an_open_or_unlearned_decision(clocked: LogStore) -> None:
    learned = _log(clocked, "learned", 300, at=NOW - 9000, window=60, learned=True)
    unlearned = _log(clocked, "unlearned", 100, at=NOW - 5000, window=60, learned=False)
    still_open = _log(clocked, "open", 100, at=NOW - 100, window=3600, learned=True)
    # learned, but a click it got on time is not learned yet (a correction is due)
    clocked.conn.execute(
        "INSERT INTO feedback (event_id, action_id, signal, value, dedupe_key, received_at, on_time)"
        " VALUES (?, 'a', 'click', NULL, 'click', ?, 1)",
        (learned[-1], NOW - 100),
    )
    removed = clocked.prune_to_budget(1, batch=50)  # a budget nothing fits in
    assert removed == len(learned) - 1
    assert _remaining(clocked) == set(unlearned) | set(still_open) | {learned[-1]}
    # when nothing learns (logging only), unlearned closed decisions may go too; open ones never
    clocked.prune_to_budget(1, keep_unlearned=False)
    assert _remaining(clocked) == set(still_open)


def test_pruning_takes_the_oldest_until_the_log_is_under_budget(clocked: LogStore) -> None:
    ids = _log(clocked, "d", 2000, at=NOW - 90000, window=60, learned=True)
    used = clocked.used_bytes()
    budget = used // 2
    for _ in range(20):  # each call goes on where the last stopped
        if not clocked.prune_to_budget(budget, batch=100, max_batches=3):
            break
    assert clocked.used_bytes() <= budget
    kept = sorted(_remaining(clocked))
    assert kept and kept == ids[-len(kept) :]  # the newest stay
    assert clocked.prune_to_budget(budget) == 0  # under budget: nothing more goes


def test_pruning_releases_payloads_no_decision_uses(clocked: LogStore) -> None:
    _log(clocked, "d", 10, at=NOW - 9000, window=60, learned=True)
    clocked.prune_to_budget(1)
    assert clocked.conn.execute("SELECT count(*) FROM payloads").fetchone()[0] == 0


def test_days_until_budget_follow_the_last_days_rate(clocked: LogStore) -> None:
    _log(clocked, "old", 100, at=NOW - 3 * DAY_SECONDS, window=60, learned=True)
    _log(clocked, "today", 200, at=NOW - DAY_SECONDS / 2, window=60, learned=True)
    found = clocked.footprint(10**9)
    assert found.decisions == 300
    assert found.decisions_per_day == pytest.approx(200)
    per = found.used_bytes / 300
    assert found.days_until_budget == pytest.approx((10**9 - found.used_bytes) / (per * 200))
    assert "days until the budget is reached" in describe(found)
    assert LogFootprint(100, 10, 0.0, 1000).days_until_budget is None  # no growth: never
    assert LogFootprint(2000, 10, 5.0, 1000).days_until_budget == 0.0


def test_the_default_budget_leaves_half_the_free_space(tmp_path: Path) -> None:
    import shutil

    store = LogStore(tmp_path / "log.db", clock=lambda: NOW)
    store.migrate()
    found = store.footprint()
    free = shutil.disk_usage(tmp_path).free
    assert found.used_bytes < found.budget_bytes <= found.used_bytes + free // 2 + (1 << 20)
    store.close()


def test_on_postgresql_only_a_configured_budget_prunes(pg_log_url: str) -> None:
    store = LogStore(DatabaseUrl(POSTGRESQL, conninfo=pg_log_url), clock=lambda: NOW)
    _log(store, "d", 20, at=NOW - 9000, window=60, learned=True)
    found = store.footprint()  # the server's disk is not this machine's: no default budget
    assert found.budget_bytes == NO_BUDGET and found.days_until_budget is None
    assert "no budget set" in describe(found)
    assert store.prune_to_budget() == 0
    assert store.prune_to_budget(1) == 20
    store.close()


def test_the_learner_prunes_to_the_configured_budget(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, reward_window_seconds=0.001, log_budget_mb=0.001)
    app = create_app(settings)
    client = app.test_client()
    for _ in range(30):
        assert (
            client.post("/v1/rank", json={"context": {}, "actions": [{"id": "a"}, {"id": "b"}]}).status_code
            == 200
        )
    learner, store = build_learner(settings)
    learner.start()
    learner.step(now=time.time() + 1)  # learns (and publishes) all 30
    assert store.conn.execute("SELECT count(*) FROM decisions WHERE learned_in IS NULL").fetchone()[0] == 0
    [prune] = [job for _, job in learner.chores if getattr(job, "__name__", "") == "prune"]
    prune()
    assert store.conn.execute("SELECT count(*) FROM decisions").fetchone()[0] < 30
    metrics = client.get("/metrics").get_data(as_text=True)
    for name in ("xsell_log_bytes ", "xsell_log_budget_bytes 1000.0", "xsell_log_days_until_budget "):
        assert name in metrics
    app.extensions["xsell"].store.close()
