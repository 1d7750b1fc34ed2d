"""Exactly one learner: a lock file on one box, a PostgreSQL advisory lock across nodes.

Every node runs a learner; all but one wait as standbys. On SQLite the lock is a
flock on a file beside the models (one box, one log). On PostgreSQL it is a
session-level advisory lock held on a dedicated connection: when the holder's process
dies (even kill -9) its socket closes and the server releases the lock at once, and a
standby polling pg_try_advisory_lock takes over within a poll interval. The learner
marks the events it learned in the same transaction that publishes the snapshot, so
the new holder continues from the last snapshot: nothing is learned twice, nothing
never.

While holding, the learner asks `still_held()` now and then: if the connection broke
(the server restarted, the network split) the lock is gone and another node may
already hold it, so this one stops learning and goes back to standby.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import threading
from pathlib import Path
from typing import IO, Any, Protocol

import psycopg

from logs import postgres
from logs.db import LogUnavailable

__all__ = ["AdvisoryLock", "FileLock", "LearnerLock", "advisory_key"]


class LearnerLock(Protocol):
    def try_acquire(self) -> bool: ...
    def still_held(self) -> bool: ...
    def release(self) -> None: ...
    def describe(self) -> str: ...


def advisory_key(name: str = "xsell-learner") -> int:
    """A stable signed 64-bit key for pg_try_advisory_lock (advisory locks are per database)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class FileLock:
    """flock on a file: released by the kernel when the holding process exits."""

    def __init__(self, path: Path):
        self.path = path
        self._file: IO[str] | None = None

    def try_acquire(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = self.path.open("a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def still_held(self) -> bool:
        return self._file is not None

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock
            self._file = None

    def describe(self) -> str:
        return str(self.path)


class AdvisoryLock:
    """pg_try_advisory_lock on a connection of its own (never a pooled one)."""

    def __init__(self, conninfo: str, key: int | None = None):
        self.conninfo = conninfo
        self.key = advisory_key() if key is None else key
        self._conn: psycopg.Connection[dict[str, Any]] | None = None
        self._guard = threading.Lock()  # the watchdog and the learner's thread share the connection

    def try_acquire(self) -> bool:
        """Take the lock if it is free; an unreachable server is "not now", never an error."""
        with self._guard:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = postgres.connect(self.conninfo)
                row = self._conn.execute("SELECT pg_try_advisory_lock(%s) AS held", (self.key,)).fetchone()
            except (LogUnavailable, psycopg.Error):
                self._drop()
                return False
            return bool(row and row["held"])

    def still_held(self) -> bool:
        """Ask the server whether this session still holds the lock (a round trip)."""
        with self._guard:
            if self._conn is None:
                return False
            try:
                row = self._conn.execute(
                    "SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND pid = pg_backend_pid() AND classid::bigint = %s AND objid::bigint = %s"
                    " AND objsubid = 1",
                    ((self.key >> 32) & 0xFFFFFFFF, self.key & 0xFFFFFFFF),
                ).fetchone()
            except psycopg.Error:
                self._drop()
                return False
            return bool(row and row["n"])

    def release(self) -> None:
        with self._guard:
            if self._conn is not None and not self._conn.closed:
                with contextlib.suppress(psycopg.Error):  # closing the session releases it anyway
                    self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
            self._drop()

    def describe(self) -> str:
        return f"PostgreSQL advisory lock {self.key}"

    def _drop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None
