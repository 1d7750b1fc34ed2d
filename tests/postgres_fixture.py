"""A real PostgreSQL for the tests: the server `make test` installs and starts, a fresh database each.

XSELL_TEST_DATABASE names the server (any database on it; default the local one on
127.0.0.1:5432). A test that asks for `pg_url` gets a new, empty
database there, dropped afterwards (XSELL_TEST_DATABASE defaults to the role
`make postgres` creates). An unreachable server fails the test with what
to do: it is never skipped.
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
