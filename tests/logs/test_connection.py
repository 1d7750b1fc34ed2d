"""The stores' connection contract (logs/connection.py) holds alike on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from pathlib import Path

import psycopg
import pytest

from logs import postgres
from logs.connection import StoreBase
from logs.db import INTEGRITY_ERRORS, LogUnavailable, exclusive, transaction
from logs.dialect import POSTGRESQL, DatabaseUrl
from logs.store import LogStore
from tests.logs.helpers import decision


@pytest.fixture
def base(log_location: Path | DatabaseUrl) -> StoreBase:
    base = StoreBase(log_location)
    base.retry(lambda: base.conn.execute("DROP TABLE IF EXISTS t"))  # PostgreSQL's log database is reused
    base.retry(
        lambda: base.conn.execute(
            base.dialect.ddl(
                "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, k TEXT UNIQUE, x REAL, n INTEGER)"
            )
        )
    )
    return base


def test_rows_answer_by_index_and_by_name(base: StoreBase) -> None:
    conn = base.conn
    conn.execute("INSERT INTO t (k, x, n) VALUES (?, ?, ?)", ("a", 0.5, True))
    row = conn.execute(
        "SELECT k, x, n, sum(n) AS total FROM t WHERE k = ? GROUP BY k, x, n", ("a",)
    ).fetchone()
    assert (row[0], row["x"], row["n"], row["total"]) == ("a", 0.5, 1, 1)
    assert type(row["total"]) is int  # sum() of integers is an int on both backends
    assert list(row.keys()) == ["k", "x", "n", "total"]
    assert tuple(row) == ("a", 0.5, 1, 1)
    with pytest.raises(IndexError):
        row["missing"]
    assert conn.execute("SELECT k FROM t WHERE k = ?", ("zz",)).fetchone() is None


def test_rowcount_executemany_and_iteration(base: StoreBase) -> None:
    conn = base.conn
    assert (
        conn.executemany("INSERT INTO t (k, n) VALUES (?, ?)", ((k, i) for i, k in enumerate("abc"))).rowcount
        == 3
    )
    assert conn.execute("INSERT INTO t (k) VALUES (?) ON CONFLICT DO NOTHING", ("a",)).rowcount == 0
    assert conn.execute("UPDATE t SET n = n + 10 WHERE n >= ?", (1,)).rowcount == 2
    assert [(r["k"], r[1]) for r in conn.execute("SELECT k, n FROM t ORDER BY k")] == [
        ("a", 0),
        ("b", 11),
        ("c", 12),
    ]
    assert conn.execute("SELECT count(*) FROM t WHERE k LIKE 'a%'").fetchall()[0][0] == 1


def test_a_transaction_commits_or_rolls_back_as_a_whole(base: StoreBase) -> None:
    with transaction(base.conn) as conn:
        conn.execute("INSERT INTO t (k) VALUES (?)", ("kept",))
    with pytest.raises(RuntimeError), transaction(base.conn) as conn:
        conn.execute("INSERT INTO t (k) VALUES (?)", ("gone",))
        raise RuntimeError("undo")
    assert [r[0] for r in base.conn.execute("SELECT k FROM t")] == ["kept"]


def test_a_broken_constraint_is_one_exception_on_both_backends(base: StoreBase) -> None:
    base.conn.execute("INSERT INTO t (k) VALUES (?)", ("a",))
    with pytest.raises(INTEGRITY_ERRORS):
        base.conn.execute("INSERT INTO t (k) VALUES (?)", ("a",))
    with pytest.raises(INTEGRITY_ERRORS), transaction(base.conn) as conn:
        conn.execute("INSERT INTO t (k) VALUES (?)", ("b",))
        conn.execute("INSERT INTO t (k) VALUES (?)", ("a",))
    # The transaction rolled back whole, and the connection is usable again.
    assert base.retry(lambda: base.conn.execute("SELECT count(*) FROM t").fetchone()[0]) == 1


def test_exclusive_read_modify_writes_from_many_threads_lose_no_update(base: StoreBase) -> None:
    base.conn.execute("INSERT INTO t (k, n) VALUES (?, ?)", ("counter", 0))

    def bump() -> None:
        with exclusive(base.conn, "counter") as conn:
            value = conn.execute("SELECT n FROM t WHERE k = ?", ("counter",)).fetchone()[0]
            conn.execute("UPDATE t SET n = ? WHERE k = ?", (value + 1, "counter"))

    def worker() -> None:
        for _ in range(25):
            base.retry(bump)
        base.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert base.conn.execute("SELECT n FROM t WHERE k = ?", ("counter",)).fetchone()[0] == 100


def test_a_read_transaction_sees_one_snapshot(base: StoreBase) -> None:
    base.conn.execute("INSERT INTO t (k) VALUES (?)", ("a",))
    reader, writer = base.conn, StoreBase(base.database).conn
    reader.execute("BEGIN")
    try:
        first = reader.execute("SELECT count(*) FROM t").fetchone()[0]
        writer.execute("INSERT INTO t (k) VALUES (?)", ("b",))
        second = reader.execute("SELECT count(*) FROM t").fetchone()[0]
    finally:
        reader.execute("COMMIT")
    assert first == second == 1
    assert reader.execute("SELECT count(*) FROM t").fetchone()[0] == 2


def test_literal_percent_signs_and_quoted_question_marks_are_data(base: StoreBase) -> None:
    base.conn.execute("INSERT INTO t (k) VALUES ('100%?')")
    assert base.conn.execute("SELECT k FROM t WHERE k LIKE '100%'").fetchone()[0] == "100%?"
    assert base.conn.execute("SELECT 7 % 4").fetchone()[0] == 3


def test_a_connection_the_server_dropped_is_replaced_on_retry(pg_log_url: str) -> None:
    store = LogStore(DatabaseUrl(POSTGRESQL, conninfo=pg_log_url))
    store.record_decision(decision("before"))
    with psycopg.connect(pg_log_url, autocommit=True) as admin:  # a server restart, as the pool sees it
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    store.record_decision(decision("after"))
    store.record_feedback("after", "click", None)  # a transaction, on a fresh connection too
    assert store.find_decision("after") is not None
    store.close()


def test_a_read_only_server_makes_the_log_unavailable_at_once(pg_log_url: str, pg_server: str) -> None:
    store = LogStore(DatabaseUrl(POSTGRESQL, conninfo=pg_log_url))
    name = pg_log_url.rsplit("/", 1)[1]
    with psycopg.connect(pg_server, autocommit=True) as admin:  # as a standby would answer
        admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    try:
        with pytest.raises(LogUnavailable, match="read-only"):
            store.check_writable()
        with pytest.raises(LogUnavailable, match="refuses the write"):
            store.record_decision(decision("e1"))
    finally:
        store.close()
        postgres.close_pools(pg_log_url)
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
