"""Every test here runs against a real PostgreSQL server (tests/postgres_fixture.py)."""

from tests.postgres_fixture import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]
