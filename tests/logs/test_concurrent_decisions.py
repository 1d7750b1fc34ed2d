"""Processes recording the same event ids at once: one row per id, retries answered, reuse refused."""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from logs.dialect import DatabaseUrl, parse_database_url
from logs.records import EventConflict
from logs.store import LogStore
from tests.logs.helpers import decision

PROCESSES, PER_KIND = 4, 40


def _location(text: str) -> Path | DatabaseUrl:
    return parse_database_url(text, Path("unused")) if text.startswith("postgresql://") else Path(text)


def _record(location: str, worker: int, start: Any, results: Any) -> None:
    store = LogStore(_location(location))
    outcomes: list[tuple[str, str, float]] = []
    start.wait(60)  # every process begins at once, so the same ids collide
    for i in range(PER_KIND):
        # a retry of one request from every process
        stored, new = store.record_decision(decision(f"same-{i}", fingerprint="same"))
        outcomes.append((stored.event_id, "new" if new else "stored", stored.created_at))
        # one event id reused by every process for its own request
        try:
            stored, new = store.record_decision(decision(f"reused-{i}", fingerprint=f"req-{worker}"))
            outcomes.append((stored.event_id, "new" if new else "stored", stored.created_at))
        except EventConflict:
            outcomes.append((f"reused-{i}", "conflict", 0.0))
        # an id of its own
        stored, new = store.record_decision(decision(f"own-{worker}-{i}"))
        outcomes.append((stored.event_id, "new" if new else "stored", stored.created_at))
    store.close()
    results.put(outcomes)


@pytest.mark.slow
def test_processes_inserting_one_event_id_at_once_get_one_row_and_the_same_answer(store: LogStore) -> None:
    context = multiprocessing.get_context("spawn")
    start, results = context.Event(), context.Queue()
    location = store.database.conninfo or str(store.path)
    workers = [context.Process(target=_record, args=(location, w, start, results)) for w in range(PROCESSES)]
    for process in workers:
        process.start()
    start.set()
    outcomes = [item for _ in workers for item in results.get(timeout=120)]
    for process in workers:
        process.join(timeout=60)
    assert [p.exitcode for p in workers] == [0] * PROCESSES

    rows = store.conn.execute("SELECT event_id, created_at FROM decisions").fetchall()
    created = {row[0]: row[1] for row in rows}
    assert len(rows) == len(created) == PER_KIND * (2 + PROCESSES)  # exactly one row per id
    by_id: dict[str, list[tuple[str, float]]] = {}
    for event_id, outcome, at in outcomes:
        by_id.setdefault(event_id, []).append((outcome, at))
    for i in range(PER_KIND):
        same = by_id[f"same-{i}"]
        # one process wrote it; every other one got the stored decision back
        assert sorted(o for o, _ in same) == ["new"] + ["stored"] * (PROCESSES - 1)
        assert {at for _, at in same} == {created[f"same-{i}"]}
        reused = by_id[f"reused-{i}"]
        assert sorted(o for o, _ in reused) == ["conflict"] * (PROCESSES - 1) + ["new"]
        assert [at for o, at in reused if o == "new"] == [created[f"reused-{i}"]]
    assert all(o == "new" for event_id, o, _ in outcomes if event_id.startswith("own-"))
