"""Feature importance reports over a time range (the 2022 preview API), kept in the log."""

from __future__ import annotations

import time
from typing import Any

from logs.evaluation_store import ImportanceStore
from policies.evaluation.feature_importance import feature_scores
from service.errors import NotFound
from service.personalizer.evaluations import load_decisions
from service.personalizer.formats import iso
from service.resources import Resources

__all__ = ["create", "delete", "find", "list_all"]


def create(res: Resources, importance_id: str, name: str, start: float, end: float) -> dict[str, Any]:
    """Score the features of the closed decisions made in [start, end) and keep the report."""
    decisions = load_decisions(res.store, res.live_rules(), start, end)
    scores = [
        {"namespace": s.namespace, "featureName": s.name, "score": s.score} for s in feature_scores(decisions)
    ]
    row = {"id": importance_id, "name": name, "start_time": start, "end_time": end, "created_at": time.time()}
    ImportanceStore(res.store).create({**row, "scores": scores})
    return _body({**row, "scores": scores})


def find(res: Resources, importance_id: str) -> dict[str, Any]:
    """Return one report; raise NotFound if there is none."""
    row = ImportanceStore(res.store).find(importance_id)
    if row is None:
        raise NotFound("featureImportanceId", f"no feature importance {importance_id!r}")
    return _body(row)


def list_all(res: Resources, *, skip: int | None, top: int | None) -> list[dict[str, Any]]:
    """Return reports, newest first."""
    return [_body(r) for r in ImportanceStore(res.store).list(skip=skip or 0, top=top)]


def delete(res: Resources, importance_id: str) -> None:
    """Delete a report; raise NotFound if there is none."""
    if not ImportanceStore(res.store).delete(importance_id):
        raise NotFound("featureImportanceId", f"no feature importance {importance_id!r}")


def _body(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "startTime": iso(row["start_time"]),
        "endTime": iso(row["end_time"]),
        "creationTime": iso(row["created_at"]),
        "status": "Succeeded",
        "featureScores": row["scores"],
    }
