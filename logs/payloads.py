"""Payloads: what decisions repeat (candidate sets, contexts), stored once by content hash.

A decision row names its candidates and its context by a 16-byte BLAKE2b digest of
their exact JSON bytes (``actions_ref``, ``context_ref``); the bytes live once in
``payloads``. `/v1/offers` draws candidates from the catalog, so a few thousand sets
serve millions of decisions. Bytes are hashed as written, never re-serialised, so a
decision reads back exactly what the policy saw. A payload is never changed in
place: erasure writes the anonymised context as a new payload and drops the old one
only when no decision refers to it any more (copy-on-erase).

What stops a payload being deleted under a decision being written: on SQLite the
foreign keys from `decisions` (one writer at a time, so checking them is an index
lookup). On PostgreSQL a foreign key check locks the referenced row (``FOR KEY
SHARE``), and every decision names one of a few shared payloads, so those locks were
measured to cost a tenth of the rank throughput; migration m016 drops them there.
Instead a decision's insert checks that its payloads exist in the same statement
(``INSERT ... SELECT ... WHERE EXISTS``, a plain read; logs/store.py), and every
transaction that deletes payloads first takes `hold_decisions`: a table lock that
waits for the inserts in flight and holds new ones back until it commits. An insert
that waited then reads, in its own snapshot taken after the wait, that the payload is
gone, inserts nothing, and its writer stores the payload again.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from logs.db import LogUnavailable

if TYPE_CHECKING:
    from logs.connection import LogConnection
    from logs.dialect import Dialect

__all__ = [
    "DECISION_COLUMNS",
    "HOLD_TIMEOUT_MS",
    "DecisionWritersBusy",
    "DECISION_SELECT",
    "PAYLOAD_JOINS",
    "KnownDigests",
    "digest",
    "hold_decisions",
    "put",
    "read",
    "release",
    "unreferenced",
]

DIGEST_BYTES = 16
# zlib costs tens of microseconds; only what is this large is worth it (a set of ten
# offers of ten features shrinks from ~1.5 KB to ~0.4 KB), and a shared payload pays once.
COMPRESS_OVER_BYTES = 512
RAW, ZLIB = 0, 1

# Every read of decisions goes through this, so old rows (inline JSON, refs NULL) and
# new rows (refs to payloads) read alike.
DECISION_COLUMNS = (
    "d.*, pa.codec AS actions_codec, pa.body AS actions_body,"
    " pc.codec AS context_codec, pc.body AS context_body"
)
PAYLOAD_JOINS = (
    " LEFT JOIN payloads pa ON pa.digest = d.actions_ref LEFT JOIN payloads pc ON pc.digest = d.context_ref"
)
DECISION_SELECT = f"SELECT {DECISION_COLUMNS} FROM decisions d{PAYLOAD_JOINS}"


def digest(data: bytes) -> bytes:
    """Return the content hash naming `data`."""
    return hashlib.blake2b(data, digest_size=DIGEST_BYTES).digest()


def put(conn: LogConnection, key: bytes, data: bytes) -> None:
    """Store `data` under `key` unless it is stored already."""
    codec, body = RAW, data
    if len(data) > COMPRESS_OVER_BYTES:
        packed = zlib.compress(data, 6)
        if len(packed) < len(data):
            codec, body = ZLIB, packed
    conn.execute(
        "INSERT INTO payloads (digest, codec, body) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (key, codec, body),
    )


def read(row: Any, column: str) -> str | bytes:
    """Return a decision's JSON for `column` (context or actions), inline or shared."""
    try:
        ref = row[f"{column}_ref"]
    except (IndexError, KeyError):  # a row from before migration m010, or a plain mapping
        ref = None
    if ref is None:
        return row[column]  # type: ignore[no-any-return]
    body = row[f"{column}_body"]
    if body is None:
        raise ValueError(f"its {column} payload is missing")
    return zlib.decompress(body) if row[f"{column}_codec"] == ZLIB else bytes(body)


class DecisionWritersBusy(LogUnavailable):
    """A long transaction writing decisions holds them: deleting payloads waits for a later run."""


# How long a deleting transaction may queue for its lock: while it queues, new decision
# inserts queue behind it, so a long transaction writing decisions (a relearn, a large
# learned mark, an autovacuum, a session idle in a transaction) must not keep it there.
HOLD_TIMEOUT_MS = 100


def hold_decisions(conn: LogConnection, dialect: Dialect) -> None:
    """Make this transaction safe for deleting payloads: call it before any write in it.

    PostgreSQL: ``SHARE ROW EXCLUSIVE`` on `decisions` waits for every transaction writing
    decisions to end and keeps new ones waiting until this one ends; it conflicts with
    itself, so two deleting transactions run one after the other (taken before any write,
    it is never held while waiting for a row). It gives up after HOLD_TIMEOUT_MS, raising
    DecisionWritersBusy (the chores try again on their next run; an erasure answers 503,
    and its caller retries). SQLite's write lock already does all of this.
    """
    if dialect.name == "sqlite":
        return
    import psycopg  # only here: psycopg stays out of a SQLite worker

    from logs.postgres import LOCK_TIMEOUT_MS

    conn.execute(f"SET LOCAL lock_timeout = {HOLD_TIMEOUT_MS}")
    try:
        conn.execute("LOCK TABLE decisions IN SHARE ROW EXCLUSIVE MODE")
    except psycopg.errors.LockNotAvailable as error:
        raise DecisionWritersBusy(
            f"a transaction writing decisions held them for over {HOLD_TIMEOUT_MS} ms;"
            " payloads are deleted on a later run"
        ) from error
    conn.execute(f"SET LOCAL lock_timeout = {LOCK_TIMEOUT_MS}")  # the connection's own, for the rest


def release(conn: LogConnection, keys: Iterable[bytes]) -> int:
    """Delete these payloads where no decision refers to them any more; return how many.

    In a transaction that began with `hold_decisions`.
    """
    removed = 0
    for key in set(keys):
        removed += conn.execute(
            "DELETE FROM payloads WHERE digest = ?"
            " AND NOT EXISTS (SELECT 1 FROM decisions WHERE actions_ref = ?)"
            " AND NOT EXISTS (SELECT 1 FROM decisions WHERE context_ref = ?)",
            (key, key, key),
        ).rowcount
    return removed


def unreferenced(conn: LogConnection, *, limit: int) -> list[bytes]:
    """Up to `limit` payloads no decision refers to now (read before `hold_decisions`:
    the scan runs without holding writers back; `release` checks each one again)."""
    rows = conn.execute(
        "SELECT p.digest FROM payloads p"
        " WHERE NOT EXISTS (SELECT 1 FROM decisions WHERE actions_ref = p.digest)"
        " AND NOT EXISTS (SELECT 1 FROM decisions WHERE context_ref = p.digest) LIMIT ?",
        (limit,),
    ).fetchall()
    return [bytes(r[0]) for r in rows]


class KnownDigests:
    """Digests this process has seen stored, so a repeated payload costs no statement.

    Bounded: past `limit` entries it starts again empty (a miss only costs an
    insert that does nothing). A digest pruned meanwhile makes the decision's insert fail
    its foreign key (SQLite) or insert nothing (PostgreSQL); the store then forgets what
    it knew and writes the payload again.
    """

    def __init__(self, limit: int = 4096):
        self.limit = limit
        self._known: set[bytes] = set()

    def __contains__(self, key: bytes) -> bool:
        return key in self._known

    def add(self, key: bytes) -> None:
        if len(self._known) >= self.limit:
            self._known.clear()
        self._known.add(key)

    def clear(self) -> None:
        self._known.clear()
