"""PostgreSQL connections: one pool per process, and the one way trouble becomes LogUnavailable.

A pool is opened lazily and belongs to the process that opened it: gunicorn forks
workers after the entry point has run migrations, and a forked child must never reuse
its parent's sockets, so the pool is keyed by process id.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from logs.db import LogUnavailable

__all__ = ["check_reachable", "close_pools", "connect", "pool", "retrying", "transaction"]

T = TypeVar("T")
CONNECT_TIMEOUT_SECONDS = 5
# Dead peers are noticed within about 15 s even without traffic (a node's cable pulled).
KEEPALIVE: dict[str, Any] = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}
# Statements a process runs at once (gunicorn threads, the learner's threads); more wait.
STORE_POOL_SIZE = 16
# A lock wait (a row another transaction updates, an advisory lock) gives up like SQLite's
# busy timeout does, so a stuck holder surfaces as a retry, then LogUnavailable.
LOCK_TIMEOUT_MS = 30_000
_pools: dict[tuple[int, str, str], ConnectionPool[Any]] = {}
_lock = threading.Lock()


def connect(conninfo: str, *, autocommit: bool = True) -> psycopg.Connection[dict[str, Any]]:
    """One dedicated connection (the learner's election holds its lock on one)."""
    try:
        return psycopg.connect(
            conninfo,
            autocommit=autocommit,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            row_factory=dict_row,
            **KEEPALIVE,
        )
    except psycopg.OperationalError as error:
        raise LogUnavailable(f"PostgreSQL is unreachable: {_first_line(error)}") from error


def pool(
    conninfo: str, *, max_size: int = 8, purpose: str = "models", synchronous: str = "FULL"
) -> ConnectionPool[Any]:
    """This process's pool for `conninfo` (opened on first use; a forked child gets its own).

    ``purpose="stores"`` is the log's statements (logs/pg_connection.py): rows come as
    tuples the wrapper names, and a connection is not probed on every checkout (one
    round trip per statement would double the rank path's); a dead one fails its
    statement, is dropped, and StoreBase.retry runs the statement again on another.

    `synchronous` is XSELL_LOG_SYNCHRONOUS, with SQLite's meaning: ``FULL`` waits for
    each commit to reach the disk (``synchronous_commit=on``); ``NORMAL`` returns once
    the server has the commit (``synchronous_commit=off``): nothing is lost when an xsell
    process dies, as with SQLite's NORMAL, while a crash of the database server or its
    machine may lose the last commits before its WAL writer flushed them (at most three
    ``wal_writer_delay``, 0.6 s by default), never leaving the log inconsistent. The
    flush is most of a rank's time on PostgreSQL (3 ms of 3.2 on this machine).
    """
    key = (os.getpid(), conninfo, f"{purpose}:{synchronous}")
    with _lock:
        found = _pools.get(key)
        if found is None:
            stores = purpose == "stores"
            if stores:
                from logs.pg_connection import configure
            # Stores' rows are named by the wrapper (dict rows for everyone else).
            commit = "off" if synchronous.upper() == "NORMAL" else "on"
            options = f"-c lock_timeout={LOCK_TIMEOUT_MS} -c synchronous_commit={commit}"
            extra = {"options": options} if stores else {"row_factory": dict_row}
            found = ConnectionPool(
                conninfo,
                min_size=1,
                max_size=STORE_POOL_SIZE if stores else max_size,
                kwargs={
                    "autocommit": True,
                    **extra,
                    **KEEPALIVE,
                },
                configure=configure if stores else None,
                timeout=CONNECT_TIMEOUT_SECONDS,
                # A connection the server dropped (restart, failover) is replaced, not handed out.
                check=None if stores else ConnectionPool.check_connection,
                open=True,
            )
            _pools[key] = found
        return found


def close_pools(conninfo: str) -> None:
    """Close this process's pools for `conninfo` (before its database is dropped: tests)."""
    with _lock:
        keys = [key for key in _pools if key[0] == os.getpid() and key[1] == conninfo]
        found = [_pools.pop(key) for key in keys]
    for each in found:
        each.close()


def check_reachable(conninfo: str) -> str:
    """Return the server's version, or raise LogUnavailable saying why (startup's check)."""
    with connect(conninfo) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        return str(row["server_version"]) if row else "?"


@contextmanager
def transaction(conninfo: str) -> Iterator[psycopg.Connection[Any]]:
    """A pooled connection inside one transaction, committed on success."""
    with pool(conninfo).connection() as conn, conn.transaction():
        yield conn


# Serialization failures and deadlocks are safe to retry; the server being away is retried
# until the deadline, then it is the 503 log_unavailable the SQLite backend gives too.
_RETRYABLE = (psycopg.errors.SerializationFailure, psycopg.errors.DeadlockDetected)
# What waiting does not cure (a standby, a full disk): at once, as SQLite's read-only or full disk.
_REFUSED = (psycopg.errors.ReadOnlySqlTransaction, psycopg.errors.DiskFull)


def retrying(operation: Callable[[], T], *, deadline_seconds: float) -> T:
    """Run `operation`, retrying transient failures; raise LogUnavailable when the server is gone."""
    deadline = time.monotonic() + deadline_seconds
    delay = 0.005
    while True:
        try:
            return operation()
        except _RETRYABLE:
            pass
        except _REFUSED as error:
            raise LogUnavailable(f"PostgreSQL refuses the write: {_first_line(error)}") from error
        except (psycopg.OperationalError, psycopg.InterfaceError) as error:  # PoolTimeout too
            if time.monotonic() >= deadline:
                raise LogUnavailable(f"PostgreSQL is unavailable: {_first_line(error)}") from error
        if time.monotonic() >= deadline:
            raise LogUnavailable(f"PostgreSQL stayed busy for {deadline_seconds:.0f}s")
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]
