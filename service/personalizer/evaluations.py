"""Offline evaluations over a time range, run in the background and kept in the log.

An evaluation replays the decisions made in [startTime, endTime) that have closed,
with rewards by the live rules, and estimates (SNIPS, 95% normal interval) what
each policy would have earned per decision: the one that served ("Online"), the
baseline (the first candidate not excluded), uniform ("Random") and every policy
the request names, trained progressively on the log (it learns each decision only
after being scored on it). The best named policy, if it beats the online one by
its lower bound, is the ``optimalPolicy``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from logs.evaluation_store import EvaluationRecord, EvaluationStore
from logs.replay import closed_decisions
from logs.store import LogStore
from policies.deciding.baselines import UniformPolicy
from policies.deciding.vw import check_vw_args
from policies.evaluation.candidates import Baseline, Candidate, Fixed, Progressive
from policies.evaluation.dataset import LoggedDecision
from policies.evaluation.estimators import Estimate, Normal, SelfNormalizedIPS
from policies.evaluation.replay import EvaluationOptions, PolicyReport, evaluate
from policies.learning.rewards import RewardRules
from service.personalizer.formats import iso

__all__ = ["load_decisions", "run", "start", "to_body"]

log = logging.getLogger(__name__)
OPTIONS = EvaluationOptions(estimators=(SelfNormalizedIPS(),), interval=Normal(), reward_model=None)


def start(store: LogStore, rules: RewardRules, record: EvaluationRecord) -> threading.Thread:
    """Save the evaluation as Running and run it in a background thread."""
    # Refuse arguments the VW allowlist refuses now, not later in the thread.
    for position, policy in enumerate(record.request.get("policies", [])):
        try:
            check_vw_args(policy["arguments"])
        except ValueError as error:
            raise ValueError(f"policies[{position}].arguments: {error}") from None
    EvaluationStore(store).create(record)
    thread = threading.Thread(
        target=run, args=(store, rules, record), name=f"evaluation-{record.id}", daemon=True
    )
    thread.start()
    return thread


def run(store: LogStore, rules: RewardRules, record: EvaluationRecord) -> None:
    """Evaluate and record the result (or the reason it failed)."""
    evaluations = EvaluationStore(store)
    try:
        decisions = load_decisions(store, rules, record.start_time, record.end_time)
        if not decisions:
            raise ValueError("no closed decisions were made in that time range")
        reports = evaluate(decisions, _candidates(record.request.get("policies", [])), OPTIONS)
        evaluations.finish(record.id, result=_result(reports, record.request.get("policies", [])), error=None)
    except Exception as error:  # an evaluation must end, whatever went wrong
        log.warning("evaluation %s failed: %s", record.id, error)
        evaluations.finish(record.id, result=None, error=str(error))
    finally:
        store.close()  # this thread's connection


def load_decisions(store: LogStore, rules: RewardRules, start: float, end: float) -> list[LoggedDecision]:
    """Return the closed decisions made in [start, end), with their rewards."""
    return closed_decisions(
        store, rules.slot_rewards, closed_before=time.time(), created_from=start, created_to=end
    )


def _candidates(policies: Sequence[dict[str, str]]) -> list[Candidate]:
    # Baseline: each slot's logged baselineAction (single slot: the first action not excluded)
    named: list[Candidate] = [Baseline("Baseline"), Fixed("Random", UniformPolicy())]
    named += [Progressive(f"Custom:{p['name']}", p["arguments"]) for p in policies]
    return named


def _result(reports: Sequence[PolicyReport], policies: Sequence[dict[str, str]]) -> dict[str, Any]:
    arguments = {f"Custom:{p['name']}": p["arguments"] for p in policies}
    rows = []
    for report in reports:
        source = "Online" if report.policy == "logged" else report.policy.split(":")[0]
        name = report.policy.split(":", 1)[1] if source == "Custom" else source
        estimate = report.estimates[0] if report.estimates else None
        rows.append(
            {
                "name": name,
                "arguments": arguments.get(report.policy, ""),
                "policySource": source,
                "n": report.n,
                "expectedReward": None if estimate is None else estimate.value,
                "confidenceInterval": None if estimate is None else [estimate.low, estimate.high],
                "effectiveSampleSize": None if estimate is None else estimate.ess,
                "estimator": None if estimate is None else estimate.estimator,
                "note": report.note or _caution(estimate),
            }
        )
    online = rows[0]
    custom = [r for r in rows if r["policySource"] == "Custom" and r["expectedReward"] is not None]
    best = max(custom, key=lambda r: r["expectedReward"], default=None)
    optimal = None
    if best is not None and best["confidenceInterval"][0] > online["expectedReward"]:
        optimal = best["name"]
    return {"policies": rows, "optimalPolicy": optimal, "decisions": online["n"]}


# Below this effective sample size a normal interval can be far too narrow (all-zero
# rewards on a dozen comparable decisions give [0, 0]); the answer says so.
MIN_RELIABLE_ESS = 30.0


def _caution(estimate: Estimate | None) -> str:
    if estimate is None or estimate.ess >= MIN_RELIABLE_ESS:
        return ""
    return (
        f"only {estimate.ess:.1f} decisions' worth of evidence (effective sample size): "
        "the interval is not reliable"
    )


def to_body(record: EvaluationRecord) -> dict[str, Any]:
    """Return an evaluation as both Personalizer API generations read it.

    v1.0 clients read ``policyResults``; the 2022 preview clients read ``content``.
    Each ignores the other's fields.
    """
    body: dict[str, Any] = {
        "id": record.id,
        "name": record.name,
        "startTime": iso(record.start_time),
        "endTime": iso(record.end_time),
        "creationTime": iso(record.created_at),
        "status": record.status,
        "evaluationType": "Manual",
        "jobId": record.id,
        "description": record.error or "",
    }
    if record.result is not None:
        rows = record.result["policies"]
        body["optimalPolicy"] = record.result["optimalPolicy"]
        body["policyResults"] = [
            {
                "name": r["name"],
                "arguments": r["arguments"],
                "policySource": r["policySource"],
                "summary": [_summary(r, record)],
                "totalSummary": _summary(r, record),
            }
            for r in rows
        ]
        body["content"] = {
            "startTime": body["startTime"],
            "endTime": body["endTime"],
            "intervalInMinutes": max(1, round((record.end_time - record.start_time) / 60)),
            "value": [
                {
                    "name": r["name"],
                    "arguments": r["arguments"],
                    "policySource": r["policySource"],
                    "slotId": "",
                    "summary": {
                        "expectedReward": r["expectedReward"],
                        "confidenceInterval": r["confidenceInterval"],
                        "numberOfEvents": r["n"],
                        "effectiveSampleSize": r["effectiveSampleSize"],
                        "estimator": r["estimator"],
                        "note": r["note"],
                    },
                    "timeseries": {"data": []},
                }
                for r in rows
            ],
        }
    return body


def _summary(row: dict[str, Any], record: EvaluationRecord) -> dict[str, Any]:
    return {
        "timeStamp": iso(record.end_time),
        "numberOfEvents": row["n"],
        "expectedReward": row["expectedReward"],
        "confidenceInterval": row["confidenceInterval"],
        "note": row["note"],
    }
