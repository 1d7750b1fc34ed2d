"""ModelIndex: the `models` table, which says which model version is active."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict

from logs.db import retrying, transaction
from logs.store import LogStore
from policies.learning.registry import ActiveChanged, ModelChange, ModelVersion, UnknownVersion

__all__ = ["SEQ_RESERVED", "ModelIndex"]

# control key: the highest version number handed out so far
SEQ_RESERVED = "model_seq_reserved"


class ModelIndex:
    """Registered model versions, kept in the same SQLite file as the log.

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
            with transaction(self.store.conn) as conn:
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

        return retrying(write, deadline_seconds=self._deadline)

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
            with transaction(self.store.conn) as conn:
                if model.state == "active":
                    current = conn.execute("SELECT version FROM models WHERE state = 'active'").fetchone()
                    if expect_active is not None and (current is None or current[0] != expect_active):
                        raise ActiveChanged(
                            f"active is {current[0] if current else None}, not {expect_active}"
                        )
                    conn.execute("UPDATE models SET state = 'retired' WHERE state = 'active'")
                row = asdict(model)
                columns = ", ".join(row)
                marks = ", ".join(f":{name}" for name in row)
                conn.execute(f"INSERT INTO models ({columns}) VALUES ({marks})", row)
                self.store.mark_learned(conn, learned, model.version)

        retrying(write, deadline_seconds=self._deadline)

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
            with transaction(self.store.conn) as conn:
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

        return retrying(write, deadline_seconds=self._deadline)

    def record_change(self, change: ModelChange) -> None:
        """Append a change that did not switch the active version (an import, a freeze)."""

        def write() -> None:
            with transaction(self.store.conn) as conn:
                row = asdict(change)
                columns = ", ".join(row)
                marks = ", ".join(f":{name}" for name in row)
                conn.execute(f"INSERT INTO model_changes ({columns}) VALUES ({marks})", row)

        retrying(write, deadline_seconds=self._deadline)

    def changes(self, limit: int = 50) -> list[ModelChange]:
        """Return the most recent changes, newest first."""
        rows = retrying(
            lambda: self.store.conn.execute(
                "SELECT at, action, version, previous, actor, reason"
                " FROM model_changes ORDER BY id DESC LIMIT ?",
                (limit,),
            ).fetchall(),
            deadline_seconds=self._deadline,
        )
        return [ModelChange(**dict(r)) for r in rows]

    def find(self, version: str) -> ModelVersion | None:
        """Return one version's record."""
        row = retrying(
            lambda: self.store.conn.execute("SELECT * FROM models WHERE version = ?", (version,)).fetchone(),
            deadline_seconds=self._deadline,
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

        retrying(write, deadline_seconds=self._deadline)

    def update_control(self, key: str, change: Callable[[str | None], str | None]) -> str | None:
        """Set a switch to ``change(current value)``, read and written in one write transaction.

        BEGIN IMMEDIATE takes the log's write lock before the read, so no other process
        can write the switch in between: concurrent partial updates never undo each
        other. `change` may run again on a retry; it must only compute. Returns the value set.
        """

        def write() -> str | None:
            with transaction(self.store.conn) as conn:
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

        return retrying(write, deadline_seconds=self._deadline)

    def control(self, key: str) -> str | None:
        """Return an operator switch's value, or None when unset."""
        row = retrying(
            lambda: self.store.conn.execute("SELECT value FROM control WHERE key = ?", (key,)).fetchone(),
            deadline_seconds=self._deadline,
        )
        return row[0] if row else None

    @property
    def _deadline(self) -> float:
        return self.store.options.busy_timeout_seconds

    def active(self) -> ModelVersion | None:
        """Return the active version, or None before the first model is published."""
        row = retrying(
            lambda: self.store.conn.execute("SELECT * FROM models WHERE state = 'active'").fetchone(),
            deadline_seconds=self.store.options.busy_timeout_seconds,
        )
        return ModelVersion(**dict(row)) if row else None

    def versions(self) -> list[ModelVersion]:
        """Return every registered version, newest first."""
        rows = retrying(
            lambda: self.store.conn.execute("SELECT * FROM models ORDER BY seq DESC").fetchall(),
            deadline_seconds=self.store.options.busy_timeout_seconds,
        )
        return [ModelVersion(**dict(r)) for r in rows]
