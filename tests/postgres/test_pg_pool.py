"""The stores' pool hands the last connection given back idle out first (logs/pg_pool.py)."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from logs import pg_pool
from logs.pg_pool import WarmFirstPool


@pytest.fixture
def pool(pg_url: str) -> Iterator[WarmFirstPool]:
    # Three idle connections from the start: a first-in-first-out pool would rotate them.
    opened = WarmFirstPool(pg_url, min_size=3, max_size=4, kwargs={"autocommit": True}, open=True)
    opened.wait(timeout=30)
    yield opened
    opened.close()


def _backend(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    return int(row[0])


def test_a_statement_after_another_runs_on_the_same_connection_and_server_process(
    pool: WarmFirstPool,
) -> None:
    seen = []
    for _ in range(5):
        conn = pool.getconn()
        seen.append((id(conn), _backend(conn)))
        pool.putconn(conn)
    assert len(set(seen)) == 1, seen


def test_concurrent_statements_get_different_connections_and_all_come_back(pool: WarmFirstPool) -> None:
    first, second = pool.getconn(), pool.getconn()
    assert first is not second
    pool.putconn(first)
    pool.putconn(second)
    assert pool.getconn() is second  # the last given back, first out
    assert pool.getconn() is first
    pool.putconn(first)
    pool.putconn(second)


def test_a_connection_left_in_a_transaction_goes_to_the_pool_and_comes_back_clean(
    pool: WarmFirstPool,
) -> None:
    conn = pool.getconn()
    conn.execute("BEGIN")
    conn.execute("SELECT 1")
    pool.putconn(conn)  # the pool rolls it back, in its own time
    for _ in range(4):
        again = pool.getconn()
        assert again.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        pool.putconn(again)


def test_a_broken_connection_is_never_handed_out_again(pool: WarmFirstPool) -> None:
    conn = pool.getconn()
    with psycopg.connect(pool.conninfo, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (_backend(conn),))
    with pytest.raises(psycopg.OperationalError):
        conn.execute("SELECT 1")
    assert conn.broken
    pool.putconn(conn)
    for _ in range(4):
        again = pool.getconn()
        assert again is not conn
        assert again.execute("SELECT 1").fetchone() == (1,)
        pool.putconn(again)


def test_warm_connections_go_back_to_the_pool_once_a_minute(
    pool: WarmFirstPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = pool.getconn()
    pool.putconn(conn)
    assert pool.get_stats()["pool_available"] == 2  # one waits warm, outside the pool
    monkeypatch.setattr(pg_pool, "FLUSH_SECONDS", 0.0)
    pool._flush_at = 0.0  # a minute has passed
    again = pool.getconn()
    pool.putconn(again)  # flushes the stack: every connection is the pool's again
    assert pool.get_stats()["pool_available"] == 3
