"""On PostgreSQL a decision's payloads are checked by its insert, not by foreign keys: a
payload pruned while a worker writes a decision naming it is written again, never lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from logs import payloads
from logs.connection import LogConnection
from logs.db import transaction
from logs.dialect import POSTGRESQL, DatabaseUrl
from logs.payloads import DecisionWritersBusy
from logs.store import LogStore
from tests.logs.helpers import decision
from tests.postgres_fixture import pg_log_database, pg_log_url

__all__ = ["pg_log_database", "pg_log_url"]


@pytest.fixture
def stores(pg_log_url: str) -> Iterator[tuple[LogStore, LogStore]]:
    location = DatabaseUrl(POSTGRESQL, conninfo=pg_log_url)
    worker, learner = LogStore(location), LogStore(location)
    yield worker, learner
    worker.close()
    learner.close()


def test_decisions_have_no_foreign_keys_to_payloads_on_postgresql(pg_log_url: str) -> None:
    with psycopg.connect(pg_log_url) as conn:
        found = conn.execute(
            "SELECT count(*) FROM pg_constraint WHERE contype = 'f'"
            " AND conrelid = 'decisions'::regclass AND confrelid = 'payloads'::regclass"
        ).fetchone()
    assert found == (0,)


def test_an_insert_waiting_on_a_pruning_writes_the_pruned_payloads_again(
    stores: tuple[LogStore, LogStore], pg_log_url: str
) -> None:
    worker, learner = stores
    worker.record_decision(decision("first"))  # the worker now knows its payloads are stored
    written: list[object] = []
    writer = threading.Thread(target=lambda: written.append(worker.record_decision(decision("second"))))
    with transaction(learner.conn) as conn:  # the learner prunes "first" and its payloads
        payloads.hold_decisions(conn, learner.dialect)
        refs = list(conn.execute("SELECT actions_ref, context_ref FROM decisions", ()).fetchone())
        conn.execute("DELETE FROM decisions WHERE event_id = 'first'")
        assert payloads.release(conn, refs) == 2
        writer.start()
        waiting = _waiting_on_a_lock(pg_log_url)
        assert waiting, "the worker's insert waits for the pruning to end"
        assert not written
    writer.join(timeout=30)
    assert written and written[0][1] is True  # type: ignore[index]
    stored = worker.find_decision("second")
    assert stored is not None and stored.context == decision("second").context
    count = learner.conn.execute("SELECT count(*) FROM payloads", ()).fetchone()[0]
    assert count == 2  # written again by the worker


def test_a_pruning_waits_for_a_decision_being_written(
    stores: tuple[LogStore, LogStore], pg_log_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(payloads, "HOLD_TIMEOUT_MS", 60_000)  # wait for the writer, however slow
    worker, learner = stores
    worker.record_decision(decision("first"))
    with transaction(worker.conn) as conn:  # a decision in flight names the same payloads
        _insert_raw(conn, "second")
        conn.execute("DELETE FROM decisions WHERE event_id = 'first'")
        pruned: list[int] = []

        def prune() -> None:
            with transaction(learner.conn) as other:
                found = payloads.unreferenced(other, limit=10)  # "first" is still there: none
                payloads.hold_decisions(other, learner.dialect)
                pruned.append(payloads.release(other, [*found, *_refs(other)]))

        pruning = threading.Thread(target=prune)
        pruning.start()
        assert _waiting_on_a_lock(pg_log_url), "the pruning waits for the decision's transaction"
    pruning.join(timeout=30)
    assert pruned == [0]  # it saw "second" naming both payloads: nothing deleted
    stored = learner.find_decision("second")
    assert stored is not None and stored.context == decision("second").context


def test_a_long_decision_writer_makes_a_pruning_give_up_not_stall_the_rank_path(
    stores: tuple[LogStore, LogStore], pg_log_url: str
) -> None:
    worker, learner = stores
    ranker = LogStore(worker.database)
    try:
        worker.record_decision(decision("first"))
        with transaction(worker.conn) as conn:  # a long transaction writing decisions
            _insert_raw(conn, "slow")
            with pytest.raises(DecisionWritersBusy), transaction(learner.conn) as other:
                payloads.hold_decisions(other, learner.dialect)
            # The pruning gave up and let go: a rank decision goes through at once.
            done: list[object] = []
            ranking = threading.Thread(target=lambda: done.append(ranker.record_decision(decision("ranked"))))
            ranking.start()
            ranking.join(timeout=30)
            assert done, "a decision insert was held back by a pruning that had given up"
    finally:
        ranker.close()
    assert learner.find_decision("slow") is not None


def _insert_raw(conn: LogConnection, event_id: str) -> None:
    row, _ = decision(event_id).to_row()
    conn.execute(
        f"INSERT INTO decisions ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
        tuple(row.values()),
    )


def _refs(conn: LogConnection) -> list[bytes]:
    return [bytes(r[0]) for r in conn.execute("SELECT digest FROM payloads", ()).fetchall()]


def _waiting_on_a_lock(url: str, timeout: float = 10.0) -> bool:
    """Whether a session of this database waits on a lock, within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            ).fetchone()
            if row and row[0]:
                return True
            time.sleep(0.02)
    return False
