"""The log's tests run on both backends: `log_location` is a SQLite file, then a PostgreSQL database.

The PostgreSQL runs take a fresh database each on the server tests/postgres_fixture.py
names (never skipped: an unreachable server fails them).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from logs.dialect import POSTGRESQL, DatabaseUrl
from tests.postgres_fixture import pg_server, pg_url

__all__ = ["backend", "log_location", "pg_server", "pg_url"]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def log_location(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Path | DatabaseUrl:
    """Where a test's log lives: a file under tmp_path, or a fresh PostgreSQL database."""
    if backend == "sqlite":
        return tmp_path / "log.db"
    return DatabaseUrl(POSTGRESQL, conninfo=request.getfixturevalue("pg_url"))
