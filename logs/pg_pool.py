"""The stores' pool: the connection a statement gave back last is the next one handed out.

psycopg_pool hands its idle connections out in turn (first in, first out), so a worker
running one statement at a time sends each to a different connection, and with it to a
different PostgreSQL server process, woken cold. Handing back the connection that ran
the last statement was measured to save the client about 80 µs of CPU on a rank's
insert (72-109 µs against 157-201 through logs/pg_connection.py, one process on this
2-core machine, alternating rounds of 3,000), and the server's process stays warm too.

So a few connections given back idle wait on a stack in front of the pool, last in
first out; everything else (opening, closing, growing and shrinking, resetting a
connection left in a transaction, dropping a broken one, serving a client that waits)
is the pool's. Once a minute (at the next connection given back) the stack is emptied
into the pool, so its upkeep (``max_lifetime``, ``max_idle``) reaches those connections
too; the stores' pool has no ``reset`` callback, which parking would skip.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg
from psycopg import pq
from psycopg_pool import ConnectionPool

__all__ = ["WARM_CONNECTIONS", "WarmFirstPool"]

WARM_CONNECTIONS = 4  # statements a process runs at once, mostly: one per gunicorn thread
FLUSH_SECONDS = 60.0
_IDLE = pq.TransactionStatus.IDLE


class WarmFirstPool(ConnectionPool[Any]):
    """A ConnectionPool whose last idle connections given back are handed out first."""

    def __init__(self, *args: Any, **kwargs: Any):
        self._warm: list[psycopg.Connection[Any]] = []
        self._warm_lock = threading.Lock()
        self._warm_closed = False
        self._flush_at = time.monotonic() + FLUSH_SECONDS
        super().__init__(*args, **kwargs)

    def getconn(self, timeout: float | None = None) -> psycopg.Connection[Any]:
        with self._warm_lock:
            if self._warm and not self._warm_closed:
                return self._warm.pop()
        return super().getconn(timeout)  # PoolClosed once closed

    def putconn(self, conn: psycopg.Connection[Any]) -> None:
        # The pool's own check that `conn` is one of its own (psycopg_pool 3.x), which
        # parking would otherwise skip; and a connection given back twice is refused.
        self._check_pool_putconn(conn)
        idle = not (conn.closed or conn.broken) and conn.info.transaction_status == _IDLE
        flushed: list[psycopg.Connection[Any]] = []
        with self._warm_lock:
            if any(each is conn for each in self._warm):
                raise ValueError("a connection was given back to the pool twice")
            now = time.monotonic()
            if now >= self._flush_at:
                flushed, self._warm = self._warm, []
                self._flush_at = now + FLUSH_SECONDS
            # Never while a client waits for a connection: the pool hands it straight
            # over (`_waiting`, psycopg_pool 3.x; absent, parking goes on as usual).
            elif idle and self._may_park():
                self._warm.append(conn)
                return
        for each in [*flushed, conn]:
            super().putconn(each)

    def _may_park(self) -> bool:
        """Room on the stack, the pool open and no client waiting (under `_warm_lock`)."""
        waiting = getattr(self, "_waiting", None)
        return len(self._warm) < WARM_CONNECTIONS and not self._warm_closed and not waiting

    def close(self, timeout: float = 5.0) -> None:
        with self._warm_lock:
            self._warm_closed = True  # a connection given back from now on goes to the pool
            warm, self._warm = self._warm, []
        for conn in warm:
            super().putconn(conn)
        super().close(timeout)
