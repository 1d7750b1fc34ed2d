"""The log's tests run on both backends: `store` is a migrated LogStore on SQLite, then on PostgreSQL.

The PostgreSQL runs take a fresh database each on the server tests/postgres_fixture.py
names (never skipped: an unreachable server fails them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from logs.dialect import POSTGRESQL, DatabaseUrl
from logs.store import LogStore
from tests.postgres_fixture import pg_log_database, pg_log_url, pg_server, pg_url

__all__ = ["backend", "log_location", "pg_log_database", "pg_log_url", "pg_server", "pg_url", "store"]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def log_location(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path | DatabaseUrl:
    """Where a test's log lives: a file under tmp_path, or a fresh PostgreSQL database.

    The PostgreSQL one has the schema already (migrating again finds nothing to do).
    """
    if backend == "sqlite":
        return tmp_path / "log.db"
    return DatabaseUrl(POSTGRESQL, conninfo=request.getfixturevalue("pg_log_url"))


@pytest.fixture
def store(log_location: Path | DatabaseUrl) -> Iterator[LogStore]:
    """A migrated log on each backend in turn."""
    store = LogStore(log_location)
    store.migrate()
    yield store
    store.close()
