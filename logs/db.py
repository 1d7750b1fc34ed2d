"""Open the SQLite file the way every process must: WAL, busy timeout, retries.

Also what the stores use on either backend: `transaction`, `exclusive` (read-modify-
write) and INTEGRITY_ERRORS (logs/connection.py has the whole contract).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import time
import types
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    import sqlite_utils

__all__ = [
    "INTEGRITY_ERRORS",
    "IntegrityError",
    "LogUnavailable",
    "connect",
    "exclusive",
    "in_chunks",
    "load_sqlite_utils",
    "retrying",
    "sqlite_file",
    "transaction",
    "wrap",
]

T = TypeVar("T")


class _Executes(Protocol):
    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...


C = TypeVar("C", bound=_Executes)
# What a WAL file keeps on disk after a checkpoint reset it; without a limit it stays
# as large as it ever grew (the disk budget leaves it out: logs/footprint.py).
WAL_LIMIT_BYTES = 64 << 20


class LogUnavailable(Exception):
    """The log cannot be written right now (read-only or full disk, or locked too long)."""


class IntegrityError(Exception):
    """A statement broke a constraint (unique, foreign key, not null) on PostgreSQL."""


# What a store catches for a broken constraint on either backend: SQLite raises its own
# sqlite3.IntegrityError (nothing is wrapped on the rank path), PostgreSQL's
# connection (logs/pg_connection.py) raises IntegrityError above.
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError, IntegrityError)


def in_chunks(values: Sequence[T], size: int = 500) -> Iterator[tuple[list[T], str]]:
    """Yield `values` in chunks with their ``?, ?, ...`` marks, for ``IN (...)`` lists.

    500 stays far below SQLite's limit on bound parameters and lets one statement do
    the work of hundreds (each statement is a round trip and a plan on PostgreSQL).
    """
    for start in range(0, len(values), size):
        chunk = list(values[start : start + size])
        yield chunk, ", ".join("?" * len(chunk))


def sqlite_file(location: object) -> Path:
    """Return the SQLite file `location` names, refusing None and any path named "None".

    A PostgreSQL store's ``path`` is None, and ``str(None)`` is "None": handed on as a
    path (to a child process, say) it would quietly create a log called None in the
    working directory. That is always a bug, so it stops here, by name.
    """
    if location is None:
        raise ValueError("the SQLite log's path is None (a PostgreSQL store has no file: pass its URL)")
    if not isinstance(location, str | os.PathLike):
        raise TypeError(f"the SQLite log's path must be a path, not {type(location).__name__}")
    path = Path(location)
    if path.name == "None":
        raise ValueError(
            f"refusing to open a SQLite log at {str(path)!r}: that is str(None), a missing path "
            "(a PostgreSQL store has no file: pass its URL)"
        )
    return path


def connect(
    path: Path, *, busy_timeout_seconds: float, synchronous: str, autocheckpoint_pages: int = 1000
) -> sqlite3.Connection:
    """Return an autocommit connection in WAL mode; transactions are opened explicitly.

    `autocheckpoint_pages`: the commit that takes the WAL past this many pages copies
    it back into the database (with an fsync). Web workers set it high so that work
    stays off the request path; the learner checkpoints instead (``checkpoint``).
    """
    path = sqlite_file(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Shopper data lives here: owner only, whatever the umask. SQLite gives the -wal and
    # -shm files the database file's mode, so creating it 0600 covers all three.
    with contextlib.suppress(FileExistsError):  # an existing log keeps its mode (serve fixes it)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    conn = sqlite3.connect(path, timeout=busy_timeout_seconds, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_seconds * 1000)}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode.lower() != "wal":
        raise LogUnavailable(f"{path}: could not switch to WAL mode (got {mode})")
    conn.execute(f"PRAGMA synchronous = {synchronous.upper()}")
    conn.execute("PRAGMA foreign_keys = ON")
    # Deleted or rewritten rows are zeroed, not left in free space (shopper erasure); the
    # rank path only inserts, so this costs it nothing measurable (docs/offers.md).
    conn.execute("PRAGMA secure_delete = ON")
    conn.execute(f"PRAGMA wal_autocheckpoint = {int(autocheckpoint_pages)}")
    conn.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}")
    return conn


def wrap(conn: sqlite3.Connection) -> sqlite_utils.Database:
    """Return a sqlite-utils view of an open connection (for schema work)."""
    return load_sqlite_utils().Database(conn)


def load_sqlite_utils() -> types.ModuleType:
    """Import sqlite-utils without the pandas it imports whenever pandas is installed.

    sqlite-utils uses pandas only for DataFrame helpers xsell never calls, but importing
    it (and pyarrow with it, from the `archive` extra) costs every worker and the
    learner 60 to 100 MB of memory: with `pandas` unimportable for that one import,
    sqlite-utils falls back to what it does without it. A pandas someone else
    imported first is left as it is.
    """
    if "sqlite_utils" in sys.modules or "pandas" in sys.modules:
        import sqlite_utils

        return sqlite_utils
    sys.modules["pandas"] = None  # type: ignore[assignment]  # `import pandas` raises ImportError
    try:
        import sqlite_utils
    finally:
        del sys.modules["pandas"]
    return sqlite_utils


@contextmanager
def transaction(conn: C) -> Iterator[C]:
    """Run a write transaction that takes the write lock up front.

    BEGIN IMMEDIATE waits (busy timeout) for the lock instead of failing later when
    a read transaction tries to upgrade, which is what makes "database is locked"
    appear under concurrent writers. On PostgreSQL it is a READ COMMITTED
    transaction (logs/pg_connection.py): atomic, but writers run side by side, so a
    read-modify-write takes `exclusive` instead.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


@contextmanager
def exclusive(conn: C, *names: str) -> Iterator[C]:
    """Run a write transaction no other `exclusive` transaction on the same name runs beside.

    For a read-modify-write (read a counter, write it plus one; check a row, then
    change it): on SQLite BEGIN IMMEDIATE already serialises every writer; on
    PostgreSQL each name is a transaction-scoped advisory lock, taken in a fixed
    order (no deadlock between two callers naming the same locks), held until
    COMMIT. Name what is read, e.g. ``"model_seq"`` or ``f"decision:{event_id}"``;
    a name locks even what does not exist yet, which ``SELECT ... FOR UPDATE`` cannot.
    """
    with transaction(conn):
        lock = getattr(conn, "advisory_lock", None)  # PostgreSQL only: logs/pg_connection.py
        if lock is not None:
            for name in sorted(set(names)):
                lock(name)
        yield conn


def retrying(operation: Callable[[], T], *, deadline_seconds: float) -> T:
    """Run `operation`, retrying while SQLite is busy; raise LogUnavailable on disk trouble."""
    deadline = time.monotonic() + deadline_seconds
    delay = 0.005
    while True:
        try:
            return operation()
        except sqlite3.OperationalError as error:
            message = str(error).lower()
            if "locked" in message or "busy" in message:
                if time.monotonic() >= deadline:
                    raise LogUnavailable(f"the log stayed locked for {deadline_seconds:.0f}s") from error
                time.sleep(delay)
                delay = min(delay * 2, 0.2)
                continue
            raise LogUnavailable(f"the log cannot be written: {error}") from error
        except sqlite3.IntegrityError:
            raise  # a broken constraint is the caller's to handle (INTEGRITY_ERRORS), not the disk's
        except sqlite3.DatabaseError as error:
            raise LogUnavailable(f"the log is unreadable: {error}") from error
