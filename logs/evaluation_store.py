"""Offline evaluations and feature importance reports asked for over HTTP."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from logs.db import retrying, transaction
from logs.store import LogStore

__all__ = ["EvaluationConflict", "EvaluationRecord", "EvaluationStore", "ImportanceStore"]


class EvaluationConflict(Exception):
    """An evaluation with this id exists already."""


@dataclass(frozen=True, slots=True)
class EvaluationRecord:
    id: str
    name: str
    status: str  # Running, Succeeded, Failed
    start_time: float
    end_time: float
    created_at: float
    request: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None


class EvaluationStore:
    """The ``evaluations`` table."""

    def __init__(self, store: LogStore):
        self.store = store

    def create(self, record: EvaluationRecord) -> None:
        """Insert a new evaluation; raise EvaluationConflict if its id is taken."""

        def write() -> None:
            with transaction(self.store.conn) as conn:
                inserted = conn.execute(
                    "INSERT INTO evaluations"
                    " (id, name, status, start_time, end_time, created_at, request, result, error)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL) ON CONFLICT DO NOTHING",
                    (
                        record.id,
                        record.name,
                        record.status,
                        record.start_time,
                        record.end_time,
                        record.created_at,
                        orjson.dumps(record.request).decode(),
                    ),
                ).rowcount
            if not inserted:
                raise EvaluationConflict(f"evaluation {record.id!r} exists already")

        retrying(write, deadline_seconds=self.store.options.busy_timeout_seconds)

    def finish(self, evaluation_id: str, *, result: dict[str, Any] | None, error: str | None) -> None:
        """Record the outcome: a result (Succeeded) or an error (Failed)."""
        status = "Failed" if error is not None else "Succeeded"
        blob = None if result is None else orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY).decode()

        def write() -> None:
            with transaction(self.store.conn) as conn:
                conn.execute(
                    "UPDATE evaluations SET status = ?, result = ?, error = ? WHERE id = ?",
                    (status, blob, error, evaluation_id),
                )

        retrying(write, deadline_seconds=self.store.options.busy_timeout_seconds)

    def find(self, evaluation_id: str) -> EvaluationRecord | None:
        """Return one evaluation, if it exists."""
        rows = self._select("WHERE id = ?", (evaluation_id,))
        return rows[0] if rows else None

    def list(self, *, skip: int = 0, top: int | None = None) -> list[EvaluationRecord]:
        """Return evaluations, newest first."""
        limit = -1 if top is None else top
        return self._select("ORDER BY created_at DESC, id LIMIT ? OFFSET ?", (limit, skip))

    def delete(self, evaluation_id: str) -> bool:
        """Delete an evaluation; return whether it existed."""

        def write() -> bool:
            with transaction(self.store.conn) as conn:
                return conn.execute("DELETE FROM evaluations WHERE id = ?", (evaluation_id,)).rowcount > 0

        return retrying(write, deadline_seconds=self.store.options.busy_timeout_seconds)

    def fail_stale(self, older_than_seconds: float) -> None:
        """Mark evaluations still Running after this long as Failed (their worker died)."""
        cutoff = time.time() - older_than_seconds

        def write() -> None:
            with transaction(self.store.conn) as conn:
                conn.execute(
                    "UPDATE evaluations SET status = 'Failed', error = 'the process running it stopped'"
                    " WHERE status = 'Running' AND created_at < ?",
                    (cutoff,),
                )

        retrying(write, deadline_seconds=self.store.options.busy_timeout_seconds)

    def _select(self, tail: str, params: tuple[object, ...]) -> list[EvaluationRecord]:
        rows = retrying(
            lambda: self.store.conn.execute(f"SELECT * FROM evaluations {tail}", params).fetchall(),
            deadline_seconds=self.store.options.busy_timeout_seconds,
        )
        return [
            EvaluationRecord(
                id=r["id"],
                name=r["name"],
                status=r["status"],
                start_time=r["start_time"],
                end_time=r["end_time"],
                created_at=r["created_at"],
                request=orjson.loads(r["request"]),
                result=None if r["result"] is None else orjson.loads(r["result"]),
                error=r["error"],
            )
            for r in rows
        ]


class ImportanceStore:
    """The ``feature_importances`` table: one row per report, scores as JSON."""

    def __init__(self, store: LogStore):
        self.store = store

    def create(self, row: dict[str, Any]) -> None:
        """Insert a report; raise EvaluationConflict if its id is taken."""

        def write() -> None:
            with transaction(self.store.conn) as conn:
                inserted = conn.execute(
                    "INSERT INTO feature_importances (id, name, start_time, end_time, created_at, scores)"
                    " VALUES (:id, :name, :start_time, :end_time, :created_at, :scores)"
                    " ON CONFLICT DO NOTHING",
                    {**row, "scores": orjson.dumps(row["scores"]).decode()},
                ).rowcount
            if not inserted:
                raise EvaluationConflict(f"feature importance {row['id']!r} exists already")

        retrying(write, deadline_seconds=self.store.options.busy_timeout_seconds)

    def find(self, importance_id: str) -> dict[str, Any] | None:
        """Return one report, if it exists."""
        rows = self._select("WHERE id = ?", (importance_id,))
        return rows[0] if rows else None

    def list(self, *, skip: int = 0, top: int | None = None) -> list[dict[str, Any]]:
        """Return reports, newest first."""
        return self._select(
            "ORDER BY created_at DESC, id LIMIT ? OFFSET ?", (-1 if top is None else top, skip)
        )

    def delete(self, importance_id: str) -> bool:
        """Delete a report; return whether it existed."""

        def write() -> bool:
            with transaction(self.store.conn) as conn:
                return (
                    conn.execute("DELETE FROM feature_importances WHERE id = ?", (importance_id,)).rowcount
                    > 0
                )

        return retrying(write, deadline_seconds=self.store.options.busy_timeout_seconds)

    def _select(self, tail: str, params: tuple[object, ...]) -> list[dict[str, Any]]:
        rows = retrying(
            lambda: self.store.conn.execute(f"SELECT * FROM feature_importances {tail}", params).fetchall(),
            deadline_seconds=self.store.options.busy_timeout_seconds,
        )
        return [{**dict(r), "scores": orjson.loads(r["scores"])} for r in rows]
