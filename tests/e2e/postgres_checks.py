"""What the PostgreSQL end-to-end tests read from the server."""

from __future__ import annotations

import psycopg

from logs.election import advisory_key

__all__ = ["lock_holders", "query"]


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
