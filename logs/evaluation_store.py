"""Offline evaluations and feature importance reports asked for over HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson

from logs.connection import LogConnection
from logs.db import transaction
from logs.store import LogStore

__all__ = ["EvaluationConflict", "EvaluationRecord", "EvaluationStore", "ImportanceStore"]

T = TypeVar("T")
# "No limit" as a number both backends take (SQLite's -1 is an error on PostgreSQL).
NO_LIMIT = 1 << 62


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


class _ReportTable:
    """Rows named by an id the caller chose: insert once, read, delete."""

    table = ""
    what = ""

    def __init__(self, store: LogStore):
        self.store = store

    def _write(self, operation: Callable[[LogConnection], T]) -> T:
        def write() -> T:
            with transaction(self.store.conn) as conn:
                return operation(conn)

        return self.store.retry(write)

    def _insert_new(self, row: dict[str, Any]) -> None:
        """Insert `row`; raise EvaluationConflict if its id is taken."""
        columns = ", ".join(row)
        marks = ", ".join("?" * len(row))
        sql = f"INSERT INTO {self.table} ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING"
        values = tuple(row.values())
        if not self._write(lambda conn: conn.execute(sql, values).rowcount):
            raise EvaluationConflict(f"{self.what} {row['id']!r} exists already")

    def _rows(self, tail: str, params: tuple[object, ...]) -> list[Any]:
        return self.store.retry(
            lambda: self.store.conn.execute(f"SELECT * FROM {self.table} {tail}", params).fetchall()
        )

    def _page(self, skip: int, top: int | None) -> list[Any]:
        limit = NO_LIMIT if top is None else top
        return self._rows("ORDER BY created_at DESC, id LIMIT ? OFFSET ?", (limit, skip))

    def delete(self, row_id: str) -> bool:
        """Delete one row; return whether it existed."""
        sql = f"DELETE FROM {self.table} WHERE id = ?"
        return bool(self._write(lambda conn: conn.execute(sql, (row_id,)).rowcount))


class EvaluationStore(_ReportTable):
    """The ``evaluations`` table."""

    table, what = "evaluations", "evaluation"

    def create(self, record: EvaluationRecord) -> None:
        """Insert a new evaluation; raise EvaluationConflict if its id is taken."""
        self._insert_new(
            {
                "id": record.id,
                "name": record.name,
                "status": record.status,
                "start_time": record.start_time,
                "end_time": record.end_time,
                "created_at": record.created_at,
                "request": orjson.dumps(record.request).decode(),
            }
        )

    def finish(self, evaluation_id: str, *, result: dict[str, Any] | None, error: str | None) -> None:
        """Record the outcome: a result (Succeeded) or an error (Failed)."""
        status = "Failed" if error is not None else "Succeeded"
        blob = None if result is None else orjson.dumps(result, option=orjson.OPT_SERIALIZE_NUMPY).decode()
        self._write(
            lambda conn: conn.execute(
                "UPDATE evaluations SET status = ?, result = ?, error = ? WHERE id = ?",
                (status, blob, error, evaluation_id),
            )
        )

    def find(self, evaluation_id: str) -> EvaluationRecord | None:
        """Return one evaluation, if it exists."""
        rows = self._rows("WHERE id = ?", (evaluation_id,))
        return _evaluation(rows[0]) if rows else None

    def list(self, *, skip: int = 0, top: int | None = None) -> list[EvaluationRecord]:
        """Return evaluations, newest first."""
        return [_evaluation(r) for r in self._page(skip, top)]

    def fail_stale(self, older_than_seconds: float) -> None:
        """Mark evaluations still Running after this long as Failed (their worker died)."""
        cutoff = time.time() - older_than_seconds
        self._write(
            lambda conn: conn.execute(
                "UPDATE evaluations SET status = 'Failed', error = 'the process running it stopped'"
                " WHERE status = 'Running' AND created_at < ?",
                (cutoff,),
            )
        )


def _evaluation(r: Any) -> EvaluationRecord:
    return EvaluationRecord(
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


class ImportanceStore(_ReportTable):
    """The ``feature_importances`` table: one row per report, scores as JSON."""

    table, what = "feature_importances", "feature importance"

    def create(self, row: dict[str, Any]) -> None:
        """Insert a report; raise EvaluationConflict if its id is taken."""
        self._insert_new({**row, "scores": orjson.dumps(row["scores"]).decode()})

    def find(self, importance_id: str) -> dict[str, Any] | None:
        """Return one report, if it exists."""
        rows = self._rows("WHERE id = ?", (importance_id,))
        return _importance(rows[0]) if rows else None

    def list(self, *, skip: int = 0, top: int | None = None) -> list[dict[str, Any]]:
        """Return reports, newest first."""
        return [_importance(r) for r in self._page(skip, top)]


def _importance(r: Any) -> dict[str, Any]:
    return {**dict(r), "scores": orjson.loads(r["scores"])}
