"""An experiment's results from its per-arm counts: rates with anytime-valid intervals,
lift over the control, and the sample-ratio check.

A pure function of the counts, which are a pure function of the log: the same log
always gives the same results (logs/experiment_store.py counts, this judges).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from policies.experiments.assignment import Arm
from policies.experiments.sequences import Interval, Moments, difference, mean_sequence
from policies.experiments.srm import ALARM_P, check

__all__ = ["ArmCounts", "METRICS", "control_arm", "summarise"]

METRICS = ("click_through", "dismissals", "revenue_per_decision")


@dataclass(frozen=True, slots=True)
class ArmCounts:
    """Per arm, over decisions whose reward window ended: clicks, dismissals, revenue."""

    arm: str
    clicks: Moments
    dismissals: Moments
    revenue: Moments

    def metric(self, name: str) -> Moments:
        return {"click_through": self.clicks, "dismissals": self.dismissals}.get(name, self.revenue)


def control_arm(arms: Sequence[Arm]) -> Arm:
    """The arm every other is compared with: the holdout (no offer) if there is one, else the first."""
    return next((a for a in arms if a.policy == "no-offer"), arms[0])


def summarise(arms: Sequence[Arm], counts: Sequence[ArmCounts], alpha: float) -> dict[str, Any]:
    """Return the results document: per arm, the metrics with intervals and the lift over the control."""
    by_name = {c.arm: c for c in counts}
    control = control_arm(arms)
    base = by_name[control.name]
    ratio = check([by_name[a.name].clicks.n for a in arms], [a.share for a in arms])
    rows = []
    for arm in arms:
        own = by_name[arm.name]
        row: dict[str, Any] = {
            "arm": arm.name,
            "policy": arm.policy,
            "version": arm.version,
            "share": arm.share,
            "decisions": own.clicks.n,
            "metrics": {m: _interval(mean_sequence(own.metric(m), alpha)) for m in METRICS},
        }
        if arm.name != control.name:
            row["lift"] = {m: _interval(difference(own.metric(m), base.metric(m), alpha)) for m in METRICS}
        rows.append(row)
    return {
        "control": control.name,
        "alpha": alpha,
        "arms": rows,
        "sample_ratio": {
            "statistic": ratio.statistic,
            "p_value": ratio.p_value,
            "alarm": ratio.alarm,
            "alarm_below": ALARM_P,
        },
    }


def _interval(found: Interval) -> dict[str, float | None]:
    finite = found.high - found.low < float("inf")
    return {
        "estimate": found.estimate,
        "low": found.low if finite else None,
        "high": found.high if finite else None,
    }
