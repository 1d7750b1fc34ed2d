"""ExperimentStore on SQLite and PostgreSQL (tests/logs/conftest.py): one running, holdouts, counts."""

from __future__ import annotations

import dataclasses

import pytest

from logs.experiment_store import (
    ASSIGNS_WITHIN_SECONDS,
    CLOCK_SKEW_SECONDS,
    Experiment,
    ExperimentExists,
    ExperimentStore,
    UnknownExperiment,
    pending_sql,
    per_arm_sql,
)
from logs.store import LogStore
from policies.experiments.assignment import Arm
from tests.logs.helpers import decision

ARMS = (Arm("model", "model", 0.5), Arm("holdout", "none", 0.5))


def _experiment(experiment_id: str, at: float = 10.0) -> Experiment:
    return Experiment(experiment_id, "test", ARMS, 0.05, "running", at)


def test_one_experiment_runs_at_a_time_and_ids_are_never_reused(store: LogStore) -> None:
    experiments = ExperimentStore(store)
    experiments.create(_experiment("x1"))
    with pytest.raises(ExperimentExists, match="another experiment is running"):
        experiments.create(_experiment("x2"))
    ended = experiments.end("x1", status="stopped", at=20.0, arm=None, reason="done")
    assert (ended.status, ended.ended_at, ended.reason) == ("stopped", 20.0, "done")
    with pytest.raises(ExperimentExists, match="already ended"):
        experiments.end("x1", status="shipped", at=21.0, arm="model", reason=None)
    with pytest.raises(ExperimentExists, match="already used"):
        experiments.create(_experiment("x1"))
    experiments.create(_experiment("x2", at=30.0))
    assert experiments.running() == _experiment("x2", at=30.0)
    assert [e.id for e in experiments.all()] == ["x2", "x1"]
    with pytest.raises(UnknownExperiment):
        experiments.get("x3")


def test_arm_counts_come_from_the_log_alone(store: LogStore) -> None:
    store.clock = lambda: 103.0  # feedback inside every window
    experiments = ExperimentStore(store)
    experiment = _experiment("x1")
    experiments.create(experiment)
    for k, clicks in enumerate(("click", "purchase", None)):
        record = decision(f"e{k}", created_at=100.0 + k, window=10.0)
        store.record_decision(
            dataclasses.replace(record, experiment={"id": "x1", "arm": "model", "unit": "shopper"})
        )
        if clicks == "click":
            store.record_feedback(f"e{k}", "click", None, action_id="a")
            store.record_feedback(f"e{k}", "dismiss", None, action_id="a", dedupe_key="d")
        elif clicks == "purchase":
            store.record_feedback(f"e{k}", "purchase", 30.0, action_id="a")
    experiments.record_holdout("h1", "x1", "holdout", "shopper", created_at=100.0, closes_at=110.0)
    experiments.record_holdout("h1", "x1", "holdout", "shopper", created_at=100.0, closes_at=110.0)
    assert experiments.is_holdout("h1") and not experiments.is_holdout("e0")
    model, holdout = experiments.arm_counts(experiment, now=200.0)
    assert (model.clicks.n, model.clicks.total, model.dismissals.total) == (3, 1, 1)
    assert (model.revenue.total, model.revenue.squares) == (30.0, 900.0)
    assert (holdout.clicks.n, holdout.revenue.total) == (1, 0.0)
    early, _ = experiments.arm_counts(experiment, now=110.5)  # e1 and e2 have not closed yet
    assert early.clicks.n == 1


def test_pending_is_what_the_counts_leave_out_until_each_window_ends(store: LogStore) -> None:
    experiments = ExperimentStore(store)
    experiment = _experiment("x1")
    experiments.create(experiment)
    for k in range(3):  # windows end at 110, 111 and 112
        record = decision(f"e{k}", created_at=100.0 + k, window=10.0)
        store.record_decision(
            dataclasses.replace(record, experiment={"id": "x1", "arm": "model", "unit": "shopper"})
        )
    store.record_decision(decision("outside", created_at=100.0, window=10.0))  # in no experiment
    experiments.record_holdout("h1", "x1", "holdout", "shopper", created_at=100.0, closes_at=110.0)
    for now, pending in (
        (105.0, {"model": 3, "holdout": 1}),
        (110.5, {"model": 2, "holdout": 0}),
        (200.0, {}),
    ):
        assert experiments.pending(experiment, now) == {"model": 0, "holdout": 0} | pending
        counted = {c.arm: c.clicks.n for c in experiments.arm_counts(experiment, now)}
        assert {arm: counted[arm] + n for arm, n in experiments.pending(experiment, now).items()} == {
            "model": 3,
            "holdout": 1,
        }


def test_results_read_the_decisions_made_in_the_experiments_span_by_the_time_index(store: LogStore) -> None:
    experiments = ExperimentStore(store)
    experiment = dataclasses.replace(_experiment("x1", at=10_000.0), status="stopped", ended_at=20_000.0)
    made_at = {"before": 10_000.0 - CLOCK_SKEW_SECONDS - 1, "first": 10_000.0 - CLOCK_SKEW_SECONDS}
    made_at |= {"last": 20_000.0 + ASSIGNS_WITHIN_SECONDS + CLOCK_SKEW_SECONDS}
    made_at |= {"after": made_at["last"] + 1}
    for event_id, at in made_at.items():
        record = decision(event_id, created_at=at, window=10.0)
        store.record_decision(
            dataclasses.replace(record, experiment={"id": "x1", "arm": "model", "unit": "e"})
        )
    model, _ = experiments.arm_counts(experiment, now=99_999.0)
    assert model.clicks.n == 2  # "first" and "last": a worker cannot have assigned the others
    if store.dialect.name == "sqlite":  # unanalysed, it would rather scan every decision
        for sql in (per_arm_sql(store.dialect), pending_sql(store.dialect)):
            plan = " ".join(str(tuple(r)) for r in store.conn.execute(f"EXPLAIN QUERY PLAN {sql}", (0,) * 4))
            assert "decisions_created" in plan, plan
