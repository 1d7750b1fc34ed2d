"""What the PostgreSQL end-to-end tests read from the server, and how they wait for it."""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg

from logs.election import advisory_key

__all__ = ["lock_holders", "query", "wait_until"]


def wait_until(check: Callable[[], object], seconds: float, what: str) -> None:
    """Poll `check` until it is true; fail after `seconds` (a bound on failure, not a timing)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds:.0f}s: {what}")


def query(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return list(conn.execute(sql, params).fetchall())


def lock_holders(url: str) -> int:
    """Sessions holding the learner's advisory lock in `url`'s database (one leads, or none)."""
    key = advisory_key()
    rows = query(
        url,
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND classid::bigint = %s AND objid::bigint = %s AND objsubid = 1"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        ((key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF),
    )
    return int(rows[0][0])  # type: ignore[call-overload]
