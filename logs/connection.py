"""StoreBase: one SQLite connection per thread, and the one way to run an operation on it."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from logs.db import connect, load_sqlite_utils, retrying, wrap

__all__ = ["WORKER_AUTOCHECKPOINT_PAGES", "Clock", "StoreBase", "StoreOptions"]

T = TypeVar("T")
Clock = Callable[[], float]

# About 40 MB of WAL: reached only if no learner has checkpointed for a long while.
WORKER_AUTOCHECKPOINT_PAGES = 10_000


@dataclass(frozen=True, slots=True)
class StoreOptions:
    busy_timeout_seconds: float = 30.0
    synchronous: str = "NORMAL"
    # SQLite's default; web workers raise it to a backstop (WORKER_AUTOCHECKPOINT_PAGES)
    # and leave checkpoints to the learner, off the request path.
    autocheckpoint_pages: int = 1000


class StoreBase:
    """The log's SQLite file: a connection per thread, opened on first use."""

    def __init__(self, path: Path, options: StoreOptions | None = None, *, clock: Clock = time.time):
        self.path = Path(path)
        self.options = options or StoreOptions()
        # Every time the log stamps (feedback, activation) comes from here, so tests can
        # drive time instead of depending on how fast the machine is.
        self.clock = clock
        self._local = threading.local()

    @property
    def conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.retry(
                lambda: connect(
                    self.path,
                    busy_timeout_seconds=self.options.busy_timeout_seconds,
                    synchronous=self.options.synchronous,
                    autocheckpoint_pages=self.options.autocheckpoint_pages,
                )
            )
            self._local.conn = conn
        return conn

    def retry(self, operation: Callable[[], T]) -> T:
        """Run `operation`, retrying while SQLite is busy up to the busy timeout.

        Every read and write of the log goes through here (logs.db.retrying), so a
        locked, full or unreadable log always surfaces as LogUnavailable.
        """
        return retrying(operation, deadline_seconds=self.options.busy_timeout_seconds)

    def migrate(self) -> None:
        """Create or upgrade the schema (the entry point calls this before workers start)."""
        load_sqlite_utils()  # before logs.migrations imports it: without pandas (logs/db.py)
        from logs import migrations

        self.retry(lambda: migrations.apply(wrap(self.conn)))

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @property
    def _deadline(self) -> float:
        return self.options.busy_timeout_seconds
