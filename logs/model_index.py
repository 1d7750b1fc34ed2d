"""ModelIndex: the `models` table, which says which model version is active."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict

from logs.connection import LogConnection
from logs.db import exclusive, transaction
from logs.store import LogStore
from policies.learning.registry import ActiveChanged, ModelChange, ModelVersion, UnknownVersion

__all__ = ["SEQ_RESERVED", "ModelIndex"]

# control key: the highest version number handed out so far
SEQ_RESERVED = "model_seq_reserved"
# Names for logs.db.exclusive: what a read-modify-write below reads before it writes.
_SEQ_LOCK = "model_seq"
_ACTIVE_LOCK = "models_active"


class ModelIndex:
    """Registered model versions, kept in the same database as the log.

    Publishing a snapshot and marking the events it learned happen in one
    transaction, so after a crash the log and the models never disagree about
    which events a model has seen.
    """

    def __init__(self, store: LogStore):
        self.store = store

    def reserve_seq(self) -> int:
        """Return a sequence number no other version will ever get, reserved under the log's write lock.

        Reading ``MAX(seq) + 1`` let two processes (the learner and a model reset)
        pick the same number, write the same file and fail on the second insert. The
        highest number handed out is kept in ``control``, so a reserved number that is
        never published (a refused import) is skipped, not reused.
        """

        def write() -> int:
            with exclusive(self.store.conn, _SEQ_LOCK) as conn:
                row = conn.execute("SELECT value FROM control WHERE key = ?", (SEQ_RESERVED,)).fetchone()
                published = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM models").fetchone()[0]
                seq = max(int(row[0]) if row else 0, int(published)) + 1
                conn.execute(
                    "INSERT INTO control (key, value, updated_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (key) DO UPDATE"
                    " SET value = excluded.value, updated_at = excluded.updated_at",
                    (SEQ_RESERVED, str(seq), time.time()),
                )
                return seq

        return self.store.retry(write)

    def publish(
        self,
        model: ModelVersion,
        learned_event_ids: Iterable[str] | Mapping[str, Sequence[int] | None] = (),
        *,
        expect_active: str | None = None,
    ) -> None:
        """Register `model` and mark the events it learned, in one transaction.

        An ``active`` model replaces the active one, but only if the active one is
        still `expect_active` (when given): a learner must not publish on top of a
        model an operator has just rolled back. A ``candidate`` (a shadow) is added
        beside the active one.

        Raises
        ------
        ActiveChanged
            The active version is no longer `expect_active`.
        """
        # Event id -> the feedback rows it was learned with (None: all of them).
        learned = (
            dict(learned_event_ids)
            if isinstance(learned_event_ids, Mapping)
            else dict.fromkeys(learned_event_ids, None)
        )

        def write() -> None:
            # The active version is read, then replaced: no other publish or activation between.
            with exclusive(self.store.conn, _ACTIVE_LOCK) as conn:
                if model.state == "active":
                    current = conn.execute("SELECT version FROM models WHERE state = 'active'").fetchone()
                    if expect_active is not None and (current is None or current[0] != expect_active):
                        raise ActiveChanged(
                            f"active is {current[0] if current else None}, not {expect_active}"
                        )
                    conn.execute("UPDATE models SET state = 'retired' WHERE state = 'active'")
                _insert(conn, "models", asdict(model))
                self.store.mark_learned(conn, learned, model.version)

        self.store.retry(write)

    def activate(
        self, version: str, *, action: str, actor: str, reason: str | None, relearn: bool = False
    ) -> str | None:
        """Make `version` the active one and record who did it and why; return the previous active.

        With `relearn`, events learned by versions registered after `version` are
        marked unlearned in the same transaction, so the restored model learns them.

        Raises
        ------
        UnknownVersion
            No version of that name is registered.
        """

        def write() -> str | None:
            with exclusive(self.store.conn, _ACTIVE_LOCK) as conn:
                if conn.execute("SELECT 1 FROM models WHERE version = ?", (version,)).fetchone() is None:
                    raise UnknownVersion(f"no model version {version!r}")
                current = conn.execute("SELECT version FROM models WHERE state = 'active'").fetchone()
                previous = current[0] if current else None
                conn.execute("UPDATE models SET state = 'retired' WHERE state = 'active'")
                conn.execute("UPDATE models SET state = 'active' WHERE version = ?", (version,))
                if relearn:
                    # Decisions and corrections alike: what the discarded versions learned.
                    for table in ("decisions", "feedback"):
                        conn.execute(
                            f"UPDATE {table} SET learned_in = NULL WHERE learned_in IN (SELECT version"
                            " FROM models WHERE seq > (SELECT seq FROM models WHERE version = ?))",
                            (version,),
                        )
                conn.execute(
                    "INSERT INTO model_changes (at, action, version, previous, actor, reason)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (time.time(), action, version, previous, actor, reason),
                )
                return previous

        return self.store.retry(write)

    def record_change(self, change: ModelChange) -> None:
        """Append a change that did not switch the active version (an import, a freeze)."""

        def write() -> None:
            with transaction(self.store.conn) as conn:
                _insert(conn, "model_changes", asdict(change))

        self.store.retry(write)

    def changes(self, limit: int = 50) -> list[ModelChange]:
        """Return the most recent changes, newest first."""
        rows = self.store.retry(
            lambda: self.store.conn.execute(
                "SELECT at, action, version, previous, actor, reason"
                " FROM model_changes ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall()
        )
        return [ModelChange(**dict(r)) for r in rows]

    def find(self, version: str) -> ModelVersion | None:
        """Return one version's record."""
        row = self.store.retry(
            lambda: self.store.conn.execute("SELECT * FROM models WHERE version = ?", (version,)).fetchone()
        )
        return ModelVersion(**dict(row)) if row else None

    def set_control(self, key: str, value: str | None) -> None:
        """Set (or clear, with None) an operator switch such as ``learning_frozen``."""

        def write() -> None:
            with transaction(self.store.conn) as conn:
                if value is None:
                    conn.execute("DELETE FROM control WHERE key = ?", (key,))
                else:
                    conn.execute(
                        "INSERT INTO control (key, value, updated_at) VALUES (?, ?, ?)"
                        " ON CONFLICT (key) DO UPDATE"
                        " SET value = excluded.value, updated_at = excluded.updated_at",
                        (key, value, time.time()),
                    )

        self.store.retry(write)

    def update_control(self, key: str, change: Callable[[str | None], str | None]) -> str | None:
        """Set a switch to ``change(current value)``, read and written in one write transaction.

        The read and the write hold the key's lock (logs.db.exclusive), so no other
        process can write the switch in between: concurrent partial updates never undo
        each other. `change` may run again on a retry; it must only compute. Returns the value set.
        """

        def write() -> str | None:
            with exclusive(self.store.conn, f"control:{key}") as conn:
                row = conn.execute("SELECT value FROM control WHERE key = ?", (key,)).fetchone()
                value = change(row[0] if row else None)
                if value is None:
                    conn.execute("DELETE FROM control WHERE key = ?", (key,))
                else:
                    conn.execute(
                        "INSERT INTO control (key, value, updated_at) VALUES (?, ?, ?)"
                        " ON CONFLICT (key) DO UPDATE"
                        " SET value = excluded.value, updated_at = excluded.updated_at",
                        (key, value, time.time()),
                    )
                return value

        return self.store.retry(write)

    def control(self, key: str) -> str | None:
        """Return an operator switch's value, or None when unset."""
        row = self.store.retry(
            lambda: self.store.conn.execute("SELECT value FROM control WHERE key = ?", (key,)).fetchone()
        )
        return row[0] if row else None

    def active(self) -> ModelVersion | None:
        """Return the active version, or None before the first model is published."""
        row = self.store.retry(
            lambda: self.store.conn.execute("SELECT * FROM models WHERE state = 'active'").fetchone()
        )
        return ModelVersion(**dict(row)) if row else None

    def versions(self) -> list[ModelVersion]:
        """Return every registered version, newest first."""
        rows = self.store.retry(
            lambda: self.store.conn.execute("SELECT * FROM models ORDER BY seq DESC").fetchall()
        )
        return [ModelVersion(**dict(r)) for r in rows]


def _insert(conn: LogConnection, table: str, row: dict[str, object]) -> None:
    """Insert a record's fields as one row (positional placeholders: the shared spelling)."""
    marks = ", ".join("?" * len(row))
    conn.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({marks})", tuple(row.values()))
