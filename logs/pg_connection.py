"""PgConnection: what the stores use of sqlite3.Connection, over this process's PostgreSQL pool.

The stores write SQL once, in SQLite's spelling with ``?`` placeholders, and call
``execute``/``executemany`` and raw ``BEGIN``/``COMMIT`` as they do on sqlite3 (the
contract is in logs/connection.py). Here each statement is translated once (cached)
and run on a pooled connection:

- outside a transaction a statement borrows a connection for itself (autocommit), so
  a process needs as many connections as it runs statements at once, not one per thread;
- ``BEGIN`` pins one connection to this object until ``COMMIT``/``ROLLBACK``.
  SQLite's ``BEGIN IMMEDIATE`` (a writer) becomes a READ COMMITTED transaction; a
  plain ``BEGIN`` (a reader wanting one snapshot) becomes REPEATABLE READ, the
  snapshot SQLite's deferred read transaction gives.

Results are read in full before the connection goes back to the pool; rows answer by
index and by column name, like sqlite3.Row. Constraint violations become
logs.db.IntegrityError, so a store catches ``logs.db.INTEGRITY_ERRORS`` on both backends.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg.adapt import Dumper, Loader
from psycopg_pool import ConnectionPool

from logs import postgres
from logs.db import IntegrityError
from logs.dialect import POSTGRESQL
from logs.election import advisory_key

__all__ = ["PgConnection", "PgCursor", "Row"]

_BEGIN_WRITE = "BEGIN"
_BEGIN_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ"
# Statement kinds: 0 an ordinary statement, 1 starts a transaction, 2 ends one.
_PLAIN, _BEGIN, _END = 0, 1, 2
_TRANSLATED: dict[str, tuple[str, int]] = {}
_CACHE_LIMIT = 4096


def _translate(sql: str) -> tuple[str, int]:
    """The statement in PostgreSQL's spelling and its kind, cached (stores repeat a few hundred)."""
    found = _TRANSLATED.get(sql)
    if found is not None:
        return found
    words = sql.split(None, 2)
    verb = words[0].upper() if words else ""
    if verb == "BEGIN":
        mode = words[1].upper() if len(words) > 1 else "DEFERRED"
        found = (_BEGIN_WRITE if mode in ("IMMEDIATE", "EXCLUSIVE") else _BEGIN_SNAPSHOT, _BEGIN)
    elif verb in ("COMMIT", "END", "ROLLBACK") and len(words) == 1:
        found = ("ROLLBACK" if verb == "ROLLBACK" else "COMMIT", _END)
    else:
        found = (POSTGRESQL.sql(sql), _PLAIN)
    if len(_TRANSLATED) >= _CACHE_LIMIT:  # f-strings with IN (?, ?, ...) of every length
        _TRANSLATED.clear()
    _TRANSLATED[sql] = found
    return found


class Row:
    """One result row: ``row[0]`` and ``row["name"]``, ``keys()``, iteration (as sqlite3.Row)."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]):
        self._values = values
        self._index = index

    def __getitem__(self, key: int | str | slice) -> Any:
        if isinstance(key, str):
            try:
                return self._values[self._index[key]]
            except KeyError:
                # sqlite3.Row's error for a missing name, which the stores already catch
                raise IndexError(f"No item with that key: {key!r}") from None
        return self._values[key]

    def keys(self) -> list[str]:
        return list(self._index)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Row):
            return tuple(self._values) == tuple(other._values) and self._index == other._index
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self._values))

    def __repr__(self) -> str:
        return f"Row({dict(zip(self._index, self._values, strict=True))!r})"


def _row_factory(cursor: Any) -> Any:
    description = cursor.description
    if description is None:
        return tuple
    index = {column.name: i for i, column in enumerate(description)}
    return lambda values: Row(values, index)


class PgCursor:
    """A finished statement: its rows (read in full), rowcount and description."""

    __slots__ = ("_at", "_rows", "description", "rowcount")

    def __init__(self, rows: list[Row], rowcount: int, description: Any = None):
        self._rows = rows
        self._at = 0
        self.rowcount = rowcount
        self.description = description

    def fetchone(self) -> Row | None:
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    def fetchmany(self, size: int = 1) -> list[Row]:
        rows = self._rows[self._at : self._at + size]
        self._at += len(rows)
        return rows

    def fetchall(self) -> list[Row]:
        return self.fetchmany(len(self._rows))

    def __iter__(self) -> Iterator[Row]:
        return iter(self.fetchall())


class _IntegerAsBigint(Dumper):
    """Python bools go in as 0/1: the schema keeps SQLite's INTEGER flags (BIGINT here)."""

    oid = psycopg.adapters.types["int8"].oid

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


class _Number(Loader):
    """numeric (sum() of integers, avg()) as int when whole, else float, as SQLite gives them."""

    def load(self, data: Any) -> Any:
        text = bytes(data)
        if text.lstrip(b"-").isdigit():
            return int(text)
        return float(text)


def configure(conn: psycopg.Connection[Any]) -> None:
    """Give a pooled connection SQLite's types for what the stores pass and read."""
    conn.adapters.register_dumper(bool, _IntegerAsBigint)
    conn.adapters.register_loader("numeric", _Number)


class PgConnection:
    """The stores' connection on PostgreSQL; one per thread, like a sqlite3 connection.

    Raises psycopg's errors (StoreBase.retry turns them into retries or LogUnavailable),
    except constraint violations, which are logs.db.IntegrityError.
    """

    def __init__(self, conninfo: str, synchronous: str = "NORMAL"):
        self.conninfo = conninfo
        self.synchronous = synchronous  # XSELL_LOG_SYNCHRONOUS (logs.postgres.pool)
        self._pid = -1
        self._pool: ConnectionPool[Any] | None = None
        self._pinned: psycopg.Connection[Any] | None = None

    @property
    def in_transaction(self) -> bool:
        return self._pinned is not None

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> PgCursor:
        text, kind = _translate(sql)
        conn = self._pinned
        if kind == _BEGIN:
            if conn is not None:
                raise psycopg.ProgrammingError("cannot start a transaction within a transaction")
            conn = self._pinned = self._get_pool().getconn()
            try:
                self._run(conn, text, ())
            except BaseException:
                self._release()  # no transaction began: nothing will end it
                raise
            return PgCursor([], -1)
        if kind == _END:
            if conn is not None:
                try:
                    self._run(conn, text, ())
                finally:
                    self._release()
            return PgCursor([], -1)  # nothing open (a failed statement already released it)
        if conn is not None:
            return self._run(conn, text, parameters)
        return self._borrowing(text, parameters)

    def executemany(self, sql: str, seq_of_parameters: Iterable[Sequence[Any]]) -> PgCursor:
        text, _ = _translate(sql)
        batch = list(seq_of_parameters)
        if not batch:
            return PgCursor([], 0)
        if self._pinned is not None:
            return self._run(self._pinned, text, batch, many=True)
        return self._borrowing(text, batch, many=True)

    def advisory_lock(self, name: str) -> None:
        """Hold the lock `name` until this transaction ends (logs.db.exclusive)."""
        if self._pinned is None:
            raise psycopg.ProgrammingError("an advisory lock needs an open transaction")
        self._run(self._pinned, "SELECT pg_advisory_xact_lock(%s)", (advisory_key(f"xsell-rmw:{name}"),))

    def __enter__(self) -> PgConnection:
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        """As sqlite3's ``with conn:``: end an open transaction, committed unless an error ends the block."""
        if self._pinned is not None:
            self.execute("ROLLBACK" if kind is not None else "COMMIT")

    def close(self) -> None:
        """Give back a connection left pinned (its transaction rolls back)."""
        if self._pinned is not None:
            self._release()

    def _borrowing(self, text: str, parameters: Any, *, many: bool = False) -> PgCursor:
        """Run one statement outside a transaction on a connection lent for it alone.

        getconn/putconn rather than the pool's ``connection()`` block: on an autocommit
        connection its commit at the end has nothing to do, at a cost on every rank.
        """
        pool = self._get_pool()
        borrowed = pool.getconn()
        try:
            return self._run(borrowed, text, parameters, many=many)
        finally:
            pool.putconn(borrowed)  # the pool drops a broken one

    def _run(
        self, conn: psycopg.Connection[Any], text: str, parameters: Any, *, many: bool = False
    ) -> PgCursor:
        cursor = conn.cursor(row_factory=_row_factory)
        try:
            if many:
                cursor.executemany(text, parameters)
            else:
                cursor.execute(text, parameters)  # () too: psycopg reads %% only with parameters
            # psycopg builds the description anew on each access: read it once
            description = cursor.description
            rows = cursor.fetchall() if description is not None else []
        except psycopg.IntegrityError as error:
            raise IntegrityError(str(error).strip()) from error
        except psycopg.Error:
            if conn is self._pinned and (conn.broken or conn.closed):
                self._release()
            raise
        return PgCursor(rows, cursor.rowcount, description)

    def _release(self) -> None:
        conn, self._pinned = self._pinned, None
        if conn is not None:
            # The pool rolls back a transaction left open and drops a broken connection.
            self._get_pool().putconn(conn)

    def _get_pool(self) -> ConnectionPool[Any]:
        pid = os.getpid()
        if self._pid != pid:  # a forked child never uses its parent's sockets
            self._pool = postgres.pool(self.conninfo, purpose="stores", synchronous=self.synchronous)
            self._pid = pid
            self._pinned = None
        assert self._pool is not None
        return self._pool
