"""A real PostgreSQL for the tests: the server `make test` installs and starts, a fresh database each.

XSELL_TEST_DATABASE names the server (any database on it; default the local one on
127.0.0.1:5432, with the role `make postgres` creates). A test that asks for `pg_url`
gets a new, empty database there, dropped afterwards; `pg_log_url` one holding the
log's schema and no rows (migrated once per test process and emptied before each
test: creating and migrating a database takes seconds). An unreachable server fails
the test with what to do: it is never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from logs import postgres

# The role `make postgres` creates (CREATEDB, password auth: Debian's default for TCP).
DEFAULT_SERVER = "postgresql://xsell_test:xsell_test@127.0.0.1:5432/postgres"


def server_url() -> str:
    return os.environ.get("XSELL_TEST_DATABASE") or DEFAULT_SERVER


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def pg_server() -> str:
    """The server's URL, checked reachable once per session."""
    url = server_url()
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as error:
        pytest.fail(
            f"PostgreSQL at {url} is unreachable ({error}); `make test` installs and starts it "
            "(make postgres), or set XSELL_TEST_DATABASE=postgresql://…",
            pytrace=False,
        )
    return url


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty database on the test server; dropped (with its sessions) afterwards."""
    name = f"xsell_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(pg_server, name)
    try:
        yield url
    finally:
        postgres.close_pools(url)  # the stores' pools and the models' (their threads end)
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_log_database(pg_server: str) -> Iterator[str]:
    """One database per test process with every migration applied, emptied for each `pg_log_url`."""
    from logs import pg_migrations

    name = f"xsell_test_log_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = with_database(pg_server, name)
    try:
        pg_migrations.apply(url)
        yield url
    finally:
        postgres.close_pools(url)
        with psycopg.connect(pg_server, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_log_url(pg_log_database: str) -> Iterator[str]:
    """A database holding the log's schema and no rows (as `store.migrate()` leaves a new one).

    Creating and migrating a database takes seconds; emptying this process's one takes
    milliseconds: every table but the migrations' record is truncated, ids restarted.
    """
    _empty(pg_log_database)
    try:
        yield pg_log_database
    finally:
        postgres.close_pools(pg_log_database)  # no connection of this test outlives it


def _empty(url: str) -> None:
    from logs import pg_migrations

    with psycopg.connect(url, autocommit=True) as conn:
        # A session a test left behind (a killed child's) would hold locks the deletes wait for.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND tablename <> %s",
                (pg_migrations.TABLE,),
            )
        }
        parents: dict[str, set[str]] = {table: set() for table in tables}
        for child, parent in conn.execute(
            "SELECT conrelid::regclass::text, confrelid::regclass::text"
            " FROM pg_constraint WHERE contype = 'f'"
        ):
            if child != parent and child in parents:
                parents[child].add(parent)
        # DELETE, not TRUNCATE: a few rows go in milliseconds; TRUNCATE swaps every file.
        with conn.transaction():
            while parents:
                # Children first: a table nothing left still refers to.
                ready = sorted(t for t in parents if not any(t in p for c, p in parents.items() if c != t))
                for table in ready:
                    conn.execute(f'DELETE FROM "{table}"')
                    del parents[table]
            for (sequence,) in conn.execute(
                "SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()"
            ).fetchall():
                conn.execute(f'ALTER SEQUENCE "{sequence}" RESTART')
