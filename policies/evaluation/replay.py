"""Replay a log through candidate policies and estimate what each would have earned."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from policies.evaluation.candidates import Candidate
from policies.evaluation.dataset import LoggedDecision
from policies.evaluation.estimators import ALL_ESTIMATORS, Estimate, EvalBatch, InvalidLog, Normal
from policies.evaluation.estimators.intervals import Interval
from policies.evaluation.reward_model import RewardModelOptions, RewardModelQuality, fit

__all__ = [
    "Evaluation",
    "EvaluationOptions",
    "PolicyReport",
    "check_decisions",
    "evaluate",
    "evaluate_log",
    "on_policy",
]

MODEL_BASED = {"DM", "DR", "SNDR"}
PROGRESS_STEP = 1000  # decisions between progress reports


@dataclass(frozen=True, slots=True)
class PolicyReport:
    """Every estimate for one policy, over the decisions it could be judged on."""

    policy: str
    estimates: tuple[Estimate, ...]
    n: int
    note: str = ""


@dataclass(frozen=True, slots=True)
class EvaluationOptions:
    estimators: tuple = ALL_ESTIMATORS
    interval: Interval = field(default_factory=Normal)
    # None skips DM, DR and SNDR (no reward model is fitted)
    reward_model: RewardModelOptions | None = field(default_factory=RewardModelOptions)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Every policy's report, and how well the reward model behind DM, DR and SNDR predicted."""

    reports: list[PolicyReport]
    reward_model: RewardModelQuality | None


def check_decisions(decisions: Sequence[LoggedDecision]) -> None:
    """Refuse a log no estimate could be honest about, naming the first bad event."""
    if not decisions:
        raise InvalidLog("no closed decisions to evaluate: the log is empty")
    for decision in decisions:
        event = decision.event
        if not event.choices:
            raise InvalidLog(f"event {event.event_id!r}: no offer was chosen")
        for choice in event.choices:
            p = choice.probability
            if p is None or not math.isfinite(p) or not 0 < p <= 1:
                raise InvalidLog(
                    f"event {event.event_id!r}: propensity {p!r} of slot {choice.slot + 1} is outside (0, 1]"
                )
        for reward in decision.rewards:
            if reward is None or not math.isfinite(reward):
                raise InvalidLog(f"event {event.event_id!r}: reward {reward!r} is missing or not finite")


def on_policy(decisions: Sequence[LoggedDecision], interval: Interval | None = None) -> PolicyReport:
    """Return what the logging policy itself earned: the mean reward, no weighting needed."""
    check_decisions(decisions)
    rewards = np.array([sum(d.rewards) for d in decisions], dtype=np.float64)
    ones = np.ones_like(rewards)
    batch = EvalBatch.single_slot(rewards, ones, ones)
    low, high = (interval or Normal()).interval(batch, lambda b: b.reward[:, 0], rewards)
    value = float(rewards.mean())
    estimate = Estimate(
        "on-policy", value, low, high, len(rewards), float(len(rewards)), (interval or Normal()).level
    )
    return PolicyReport("logged", (estimate,), len(rewards))


def evaluate(
    decisions: Sequence[LoggedDecision],
    candidates: Sequence[Candidate],
    options: EvaluationOptions | None = None,
) -> list[PolicyReport]:
    """Return the logged policy's report followed by one per candidate."""
    return evaluate_log(decisions, candidates, options).reports


def evaluate_log(
    decisions: Sequence[LoggedDecision],
    candidates: Sequence[Candidate],
    options: EvaluationOptions | None = None,
    progress: Callable[[int], None] | None = None,
) -> Evaluation:
    """Return the logged policy's report followed by one per candidate, and the reward model's quality.

    Decisions are replayed in the order they were made, so progressive candidates
    learn only from the past. `progress`, when given, hears of decisions replayed
    (each candidate replays them all), so a long evaluation can show how far it is.
    """
    options = options or EvaluationOptions()
    check_decisions(decisions)
    ordered = sorted(decisions, key=lambda d: (d.event.created_at, d.event.event_id))
    model = fit(ordered, options.reward_model) if options.reward_model else None
    q_hat = model.predictions if model else None
    reports = [on_policy(ordered, options.interval)]
    for candidate in candidates:
        batch = replay(ordered, candidate, q_hat, progress)
        if batch is None:
            reports.append(PolicyReport(candidate.name, (), 0, "no decisions were logged after it existed"))
            continue
        estimators = [e for e in options.estimators if batch.has_reward_model or e.name not in MODEL_BASED]
        estimates = tuple(e.estimate(batch, options.interval) for e in estimators)
        reports.append(PolicyReport(candidate.name, estimates, batch.n))
    return Evaluation(reports, model.quality if model else None)


def replay(
    decisions: Sequence[LoggedDecision],
    candidate: Candidate,
    q_hat: Sequence[np.ndarray] | None,
    progress: Callable[[int], None] | None = None,
) -> EvalBatch | None:
    """Score every decision the candidate covers; return the arrays the estimators need."""
    slots = max(len(d.event.choices) for d in decisions)
    rows: list[tuple[list[float], list[float], list[float], list[float], list[float]]] = []
    for index, decision in enumerate(decisions):
        if candidate.covers(decision):
            distributions = candidate.slot_distributions(decision)
            rows.append(_row(decision, distributions, None if q_hat is None else q_hat[index]))
        candidate.observe(decision)
        if progress is not None and (index + 1) % PROGRESS_STEP == 0:
            progress(PROGRESS_STEP)
    if progress is not None:
        progress(len(decisions) % PROGRESS_STEP)
    if not rows:
        return None
    shape = (len(rows), slots)
    reward, p_log, p_target, q_logged, q_target = (np.zeros(shape) for _ in range(5))
    p_log[:] = 1.0
    mask = np.zeros(shape, dtype=bool)
    for i, (r, pl, pt, ql, qt) in enumerate(rows):
        filled = len(r)
        reward[i, :filled], p_log[i, :filled], p_target[i, :filled] = r, pl, pt
        q_logged[i, :filled], q_target[i, :filled] = ql, qt
        mask[i, :filled] = True
    has_model = q_hat is not None
    return EvalBatch(
        reward, p_log, p_target, mask, q_logged if has_model else None, q_target if has_model else None
    )


def _row(
    decision: LoggedDecision, distributions: Sequence[np.ndarray], q_hat: np.ndarray | None
) -> tuple[list[float], list[float], list[float], list[float], list[float]]:
    rewards, p_log, p_target, q_logged, q_target = [], [], [], [], []
    for slot, (choice, reward) in enumerate(zip(decision.event.choices, decision.rewards, strict=True)):
        column = decision.action_index(choice.action_id)
        distribution = distributions[slot]
        rewards.append(reward)
        p_log.append(choice.probability)
        p_target.append(float(distribution[column]))
        if q_hat is not None:
            q_logged.append(float(q_hat[slot, column]))
            q_target.append(float(distribution @ q_hat[slot]))
        else:
            q_logged.append(0.0)
            q_target.append(0.0)
    return rewards, p_log, p_target, q_logged, q_target
