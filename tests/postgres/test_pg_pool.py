"""The stores' pool hands the last connection given back idle out first (logs/pg_pool.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psycopg
import pytest
from psycopg_pool import PoolClosed

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
    pool.putconn(conn)  # to the pool, which rolls it back
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


def test_a_client_waiting_for_a_connection_gets_the_one_given_back(pool: WarmFirstPool) -> None:
    held = [pool.getconn() for _ in range(4)]  # max_size: the next getconn waits
    got: list[psycopg.Connection] = []
    waiter = threading.Thread(target=lambda: got.append(pool.getconn(timeout=30)))
    waiter.start()
    deadline = time.monotonic() + 30
    while not pool.get_stats().get("requests_waiting"):
        assert time.monotonic() < deadline, "the client never waited"
        time.sleep(0.01)
    pool.putconn(held[0])  # idle, but a client waits: straight to it, not onto the stack
    waiter.join(timeout=30)
    assert got == [held[0]]
    for conn in [*held[1:], *got]:
        pool.putconn(conn)


def test_a_connection_given_back_twice_is_refused(pool: WarmFirstPool) -> None:
    conn = pool.getconn()
    pool.putconn(conn)
    with pytest.raises(ValueError):
        pool.putconn(conn)


def test_a_closed_pool_hands_out_nothing_and_closes_what_comes_back(pg_url: str) -> None:
    opened = WarmFirstPool(pg_url, min_size=2, max_size=4, kwargs={"autocommit": True}, open=True)
    warm, out = opened.getconn(), opened.getconn()
    opened.putconn(warm)  # parked on the stack
    opened.close()
    assert warm.closed  # the stack's connections are closed with the pool
    with pytest.raises(PoolClosed):
        opened.getconn()
    opened.putconn(out)  # given back after the close: closed, never parked
    assert out.closed
