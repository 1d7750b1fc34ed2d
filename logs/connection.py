"""StoreBase: the log's connection per thread (SQLite or PostgreSQL) and the one way to use it.

The contract every store relies on, on both backends
----------------------------------------------------
A store holds a StoreBase (``LogStore``, usually as ``self.store``) and uses only this:

``store.conn``
    This thread's connection: a sqlite3.Connection on SQLite (nothing in between,
    so the rank path pays nothing), a logs.pg_connection.PgConnection on PostgreSQL.
    ``conn.execute(sql, params)`` and ``conn.executemany(sql, seq_of_params)`` take
    SQL in SQLite's spelling with ``?`` placeholders and a sequence of parameters
    (no ``:name`` ones); the returned cursor has ``fetchone()``, ``fetchall()``,
    ``rowcount`` and iteration. A row answers ``row[0]`` and ``row["column"]`` and
    ``row.keys()``. Python bools go in as 0/1; ``sum()`` of integers comes back an
    int, as on SQLite.
``store.dialect``
    logs.dialect.Dialect; ``.name`` is ``"sqlite"`` or ``"postgresql"``. Branch on it
    only for what has no common spelling (``PRAGMA``, ``sqlite_master``, ``rowid``,
    ``json_extract``, ``INSERT OR IGNORE/REPLACE``: write ``ON CONFLICT ... DO
    NOTHING`` / ``DO UPDATE SET x = excluded.x`` instead, the same in both).
``store.retry(operation)``
    Run a zero-argument callable, retrying while the database is busy (SQLite's lock,
    PostgreSQL's serialization failures, deadlocks and lost connections) until the
    busy timeout, then LogUnavailable. Every read and write goes through it; the
    callable must be safe to run again from the start (open its transaction inside).
``logs.db.transaction(conn)``
    ``with transaction(store.conn) as conn:`` an atomic write: BEGIN IMMEDIATE on
    SQLite (writers serialised), a READ COMMITTED transaction on PostgreSQL
    (writers run side by side; a statement sees what others committed before it).
``logs.db.exclusive(conn, *names)``
    The read-modify-write helper: a transaction as above that, on PostgreSQL, also
    holds a transaction-scoped advisory lock per name, so two callers naming the same
    thing run one after the other (``exclusive(conn, "model_seq")``,
    ``exclusive(conn, f"decision:{event_id}")``). Use it wherever the SQLite code
    relied on BEGIN IMMEDIATE to read a value and write something depending on it.
Raw ``conn.execute("BEGIN")`` ... ``"COMMIT"``
    Still works: a read of several statements in one snapshot (REPEATABLE READ on
    PostgreSQL). An error inside a PostgreSQL transaction aborts it: retry the whole
    operation (store.retry does) rather than carrying on after catching.
``logs.db.INTEGRITY_ERRORS``
    Catch this tuple, not sqlite3.IntegrityError: a broken unique or foreign key on
    either backend.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from logs.db import connect, load_sqlite_utils, retrying, sqlite_file, wrap
from logs.dialect import SQLITE, DatabaseUrl, Dialect

__all__ = [
    "WORKER_AUTOCHECKPOINT_PAGES",
    "Clock",
    "LogConnection",
    "LogCursor",
    "StoreBase",
    "StoreOptions",
]

T = TypeVar("T")
Clock = Callable[[], float]

# About 40 MB of WAL: reached only if no learner has checkpointed for a long while.
WORKER_AUTOCHECKPOINT_PAGES = 10_000


class LogCursor(Protocol):
    """What a store reads from a statement's result (sqlite3.Cursor or PgCursor)."""

    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class LogConnection(Protocol):
    """What a store calls on a connection (sqlite3.Connection or PgConnection)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> LogCursor: ...
    def executemany(self, sql: str, parameters: Iterable[Any], /) -> LogCursor: ...


@dataclass(frozen=True, slots=True)
class StoreOptions:
    busy_timeout_seconds: float = 30.0
    synchronous: str = "NORMAL"
    # SQLite's default; web workers raise it to a backstop (WORKER_AUTOCHECKPOINT_PAGES)
    # and leave checkpoints to the learner, off the request path.
    autocheckpoint_pages: int = 1000


class StoreBase:
    """The log's database: a connection per thread, opened on first use.

    `location` is the SQLite file's path, or a logs.dialect.DatabaseUrl (either backend).
    """

    def __init__(
        self,
        location: Path | str | DatabaseUrl,
        options: StoreOptions | None = None,
        *,
        clock: Clock = time.time,
    ):
        # A missing path fails here, not as a file named "None" in the working directory.
        if isinstance(location, DatabaseUrl):
            url = location
            if url.conninfo is None:
                sqlite_file(url.path)
        else:
            url = DatabaseUrl(SQLITE, path=sqlite_file(location))
        self.database = url
        self.dialect: Dialect = url.dialect
        # The SQLite file; None on PostgreSQL, where no file of the log is on this machine.
        self.path: Path | None = url.path
        self.options = options or StoreOptions()
        # Every time the log stamps (feedback, activation) comes from here, so tests can
        # drive time instead of depending on how fast the machine is.
        self.clock = clock
        self._local = threading.local()

    @property
    def is_postgresql(self) -> bool:
        return self.database.conninfo is not None

    @property
    def conn(self) -> LogConnection:
        conn: LogConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        return conn

    def _open(self) -> LogConnection:
        conninfo = self.database.conninfo
        if conninfo is not None:
            from logs.pg_connection import PgConnection

            return PgConnection(conninfo, self.options.synchronous)
        path = self.sqlite_path
        return self.retry(
            lambda: connect(
                path,
                busy_timeout_seconds=self.options.busy_timeout_seconds,
                synchronous=self.options.synchronous,
                autocheckpoint_pages=self.options.autocheckpoint_pages,
            )
        )

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file; a programming error on PostgreSQL (check `is_postgresql` first)."""
        if self.path is None:
            raise TypeError(f"{self.database.redacted()} is not a SQLite file")
        return self.path

    def retry(self, operation: Callable[[], T]) -> T:
        """Run `operation`, retrying while the database is busy up to the busy timeout.

        Every read and write of the log goes through here (logs.db.retrying,
        logs.postgres.retrying), so a locked, full, unreachable or unreadable log
        always surfaces as LogUnavailable.
        """
        if self.database.conninfo is not None:
            from logs import postgres  # psycopg stays out of a SQLite worker

            return postgres.retrying(operation, deadline_seconds=self.options.busy_timeout_seconds)
        return retrying(operation, deadline_seconds=self.options.busy_timeout_seconds)

    def migrate(self) -> None:
        """Create or upgrade the schema (the entry point calls this before workers start)."""
        conninfo = self.database.conninfo
        if conninfo is not None:
            from logs import pg_migrations

            self.retry(lambda: pg_migrations.apply(conninfo))
            return
        load_sqlite_utils()  # before logs.migrations imports it: without pandas (logs/db.py)
        from logs import migrations

        conn = self.conn
        assert isinstance(conn, sqlite3.Connection)
        self.retry(lambda: migrations.apply(wrap(conn)))

    def close(self) -> None:
        """Close this thread's connection (on PostgreSQL: give back one left in a transaction)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @property
    def _deadline(self) -> float:
        return self.options.busy_timeout_seconds
