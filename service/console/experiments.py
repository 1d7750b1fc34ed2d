"""What the console's Experiments page shows, as plain dicts: experiments, their results, the rules.

Results are `ExperimentStore.results` as of the page's clock (the same figures as
``GET /v1/experiments/ID`` and ``xsell experiments show``), never recomputed here;
this module only adds what an operator reads them by: the decisions still within their
reward window (not counted yet), the observed split, and a verdict on each lift.
"""

from __future__ import annotations

from typing import Any

from logs.experiment_store import Experiment, ExperimentStore, UnknownExperiment
from logs.rollup_queries import RollupReader
from policies.experiments.results import METRICS
from service import business_rules
from service.experiments import UNSHIPPABLE
from service.resources import Resources

__all__ = ["METRIC_NAMES", "detail", "overview", "rules", "verdict"]

METRIC_NAMES = {
    "click_through": "click-through",
    "dismissals": "dismissals",
    "revenue_per_decision": "revenue per decision",
}


def overview(res: Resources, now: float) -> dict[str, Any]:
    """Return every experiment (newest first, at most 100) and the business rules in force."""
    experiments = ExperimentStore(res.store).all()
    return {
        "experiments": [_summary(e) for e in experiments],
        "running": next((e.id for e in experiments if e.status == "running"), None),
        "rules": rules(res, now),
    }


def _summary(experiment: Experiment) -> dict[str, Any]:
    return {
        "id": experiment.id,
        "name": experiment.name,
        "status": experiment.status,
        "created_at": experiment.created_at,
        "ended_at": experiment.ended_at,
        "shipped_arm": experiment.shipped_arm,
        "reason": experiment.reason,
        "alpha": experiment.alpha,
        "arms": [
            {
                "name": a.name,
                "policy": a.policy,
                "share": a.share,
                "version": a.version,
                "shippable": a.policy not in UNSHIPPABLE,
            }
            for a in experiment.arms
        ],
    }


def detail(res: Resources, experiment_id: str, now: float) -> dict[str, Any] | None:
    """Return one experiment with its results as of `now`, or None when there is no such experiment."""
    store = ExperimentStore(res.store)
    try:
        experiment = store.get(experiment_id)
    except UnknownExperiment:
        return None
    results = store.results(experiment, now)
    pending = store.pending(experiment, now)
    counted = sum(a["decisions"] for a in results["arms"])
    arms = []
    for row, arm in zip(results["arms"], _summary(experiment)["arms"], strict=True):
        lift = row.get("lift")
        arms.append(
            row
            | {
                "shippable": arm["shippable"],
                "pending": pending[row["arm"]],
                "observed_share": row["decisions"] / counted if counted else None,
                "verdicts": None if lift is None else {m: verdict(lift[m]) for m in METRICS},
            }
        )
    return {
        "experiment": _summary(experiment),
        "results": results,
        "arms": arms,
        "counted": counted,
        "pending": sum(pending.values()),
        "confidence": 1 - experiment.alpha,
    }


def verdict(lift: dict[str, float | None]) -> dict[str, str]:
    """Say whether a lift's interval excludes zero yet: ``higher``, ``lower``, ``not yet`` or ``no data``."""
    low, high = lift["low"], lift["high"]
    if low is None or high is None:
        return {"kind": "no-data", "text": "no data yet"}
    if low > 0:
        return {"kind": "higher", "text": "higher: the interval excludes zero"}
    if high < 0:
        return {"kind": "lower", "text": "lower: the interval excludes zero"}
    return {"kind": "not-yet", "text": "not yet: the interval includes zero"}


def rules(res: Resources, now: float) -> dict[str, Any]:
    """Return the business rules in force (as ``GET /v1/rules``) and each campaign's current period."""
    operator = business_rules.operator_rules(res)
    found = business_rules.dump(operator)
    periods = {c.name: c.period_start(now) for c in operator.campaigns}
    counts = RollupReader(res.store).campaign_counts(periods)
    progress = {}
    for campaign in operator.campaigns:
        eligible, shown = counts[campaign.name]
        start = periods[campaign.name]
        progress[campaign.name] = {
            "period_start": start,
            "period_end": start + campaign.period_seconds,
            "eligible": eligible,
            "shown": shown,
            "share": shown / eligible if eligible else None,
            "cap_left": None
            if campaign.max_impressions is None
            else max(campaign.max_impressions - shown, 0),
        }
    return {
        "rules": found,
        "progress": progress,
        "empty": not operator,
    }
