"""ModelIndex: the `models` table, which says which model version is active."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict

from logs.db import retrying, transaction
from logs.store import LogStore
from policies.registry import ModelVersion

__all__ = ["ModelIndex"]


class ModelIndex:
    """Registered model versions, kept in the same SQLite file as the log.

    Publishing a snapshot and marking the events it learned happen in one
    transaction, so after a crash the log and the models never disagree about
    which events a model has seen.
    """

    def __init__(self, store: LogStore):
        self.store = store

    def next_seq(self) -> int:
        """Return the sequence number the next version will get."""
        row = retrying(
            lambda: self.store.conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM models").fetchone(),
            deadline_seconds=self.store.options.busy_timeout_seconds,
        )
        return int(row[0])

    def publish(self, model: ModelVersion, learned_event_ids: Iterable[str] = ()) -> None:
        """Register `model` as the active version and mark the events it learned."""
        event_ids = list(learned_event_ids)

        def write() -> None:
            with transaction(self.store.conn) as conn:
                conn.execute("UPDATE models SET state = 'retired' WHERE state = 'active'")
                row = asdict(model)
                columns = ", ".join(row)
                marks = ", ".join(f":{name}" for name in row)
                conn.execute(f"INSERT INTO models ({columns}) VALUES ({marks})", row)
                self.store.mark_learned(conn, event_ids, model.version)

        retrying(write, deadline_seconds=self.store.options.busy_timeout_seconds)

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
