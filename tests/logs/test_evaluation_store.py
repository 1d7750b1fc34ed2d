"""Evaluation and feature importance reports on SQLite and PostgreSQL (tests/logs/conftest.py)."""

from __future__ import annotations

import time

import pytest

from logs.evaluation_store import EvaluationConflict, EvaluationRecord, EvaluationStore, ImportanceStore
from logs.store import LogStore


def _evaluation(evaluation_id: str, created_at: float) -> EvaluationRecord:
    return EvaluationRecord(evaluation_id, "n", "Running", 0.0, 10.0, created_at, {"q": 1}, None, None)


def test_evaluations_are_created_once_paged_finished_and_deleted(store: LogStore) -> None:
    evaluations = EvaluationStore(store)
    now = time.time()
    for k in range(3):
        evaluations.create(_evaluation(f"ev{k}", now + k))
    with pytest.raises(EvaluationConflict):
        evaluations.create(_evaluation("ev0", now))
    assert [e.id for e in evaluations.list()] == ["ev2", "ev1", "ev0"]
    assert [e.id for e in evaluations.list(skip=1)] == ["ev1", "ev0"]
    assert [e.id for e in evaluations.list(skip=1, top=1)] == ["ev1"]
    evaluations.finish("ev1", result={"ips": 0.5}, error=None)
    evaluations.finish("ev2", result=None, error="boom")
    found = evaluations.find("ev1")
    assert found is not None and (found.status, found.result, found.request) == (
        "Succeeded",
        {"ips": 0.5},
        {"q": 1},
    )
    evaluations.create(_evaluation("old", now - 3600))
    evaluations.fail_stale(60.0)
    assert [(e.id, e.status) for e in evaluations.list()] == [
        ("ev2", "Failed"),
        ("ev1", "Succeeded"),
        ("ev0", "Running"),
        ("old", "Failed"),
    ]
    assert evaluations.delete("ev0") and not evaluations.delete("ev0")
    assert evaluations.find("ev0") is None


def test_importance_reports_keep_their_scores(store: LogStore) -> None:
    reports = ImportanceStore(store)
    row = {"id": "fi", "name": "n", "start_time": 0.0, "end_time": 1.0, "created_at": 2.0}
    scores = [{"namespace": "shopper", "featureName": "device=mobile", "score": 0.25}]
    reports.create({**row, "scores": scores})
    with pytest.raises(EvaluationConflict):
        reports.create({**row, "scores": []})
    assert reports.find("fi") == {**row, "scores": scores}
    assert reports.list(top=5) == [{**row, "scores": scores}]
