"""XSELL_LOG_SYNCHRONOUS means the same on PostgreSQL as on SQLite (logs.postgres.pool)."""

from __future__ import annotations

import pytest

from logs.connection import StoreOptions
from logs.dialect import POSTGRESQL, DatabaseUrl
from logs.store import LogStore


@pytest.mark.parametrize(("synchronous", "commit"), [("NORMAL", "off"), ("FULL", "on")])
def test_the_log_synchronous_setting_reaches_every_store_connection(
    pg_url: str, synchronous: str, commit: str
) -> None:
    store = LogStore(DatabaseUrl(POSTGRESQL, conninfo=pg_url), StoreOptions(synchronous=synchronous))
    try:
        assert store.conn.execute("SHOW synchronous_commit").fetchone()[0] == commit
        # a transaction's pinned connection too, and the lock timeout beside it
        with store.conn as conn:
            conn.execute("BEGIN IMMEDIATE")
            assert conn.execute("SHOW synchronous_commit").fetchone()[0] == commit
            assert conn.execute("SHOW lock_timeout").fetchone()[0] == "30s"
    finally:
        store.close()
