"""The reward model behind DM and DR, cross-fitted so no decision is scored by a
model that saw its reward, and scored on the decisions it did not see.

Decisions are split into `folds` at random (seeded); the model that predicts a
fold is trained on all the other folds (Chernozhukov et al., 2018, "Double/debiased
machine learning"; Narita, Yasui & Yata, 2021, for off-policy evaluation). A model
scoring its own training data would look better than it is and make DM and DR
overconfident.

The same held-out predictions measure the model (``RewardModelQuality``): DM is
exactly as biased as the model is wrong, and DR's variance grows with its errors,
so an evaluation shows how good its reward model was beside the estimates. The
default (``kind="auto"``) is the model that measured best in docs/evaluation.md: a
regularised logistic regression when every reward lies in [0, 1] (clicks, or
fractions of one), a regularised least-squares regression on the same features
otherwise (purchase values, negative rewards for dismissals).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from policies.deciding.features import action_namespaces, context_namespaces, regression_features
from policies.deciding.vw import VWRegressor
from policies.evaluation.dataset import LoggedDecision
from policies.evaluation.linear_model import LinearRewardModel

__all__ = ["KINDS", "RewardModelFit", "RewardModelOptions", "RewardModelQuality", "cross_fit", "fit"]

KINDS = ("auto", "logistic", "linear", "vw-logistic", "vw-squared", "action-mean")
_PROBABILITY_FLOOR = 1e-6  # log-loss of a prediction of exactly 0 or 1 that was wrong


@dataclass(frozen=True, slots=True)
class RewardModelOptions:
    folds: int = 2
    seed: int = 0
    kind: str = "auto"
    # VW kinds only: None uses the kind's own arguments (VWRegressor.DEFAULT_ARGS / LOGISTIC_ARGS)
    vw_args: str | None = None
    # VW learns online in one pass; a few passes over the training folds fit far better
    passes: int = 3
    # numpy kinds only: L2 penalty on the summed loss (sklearn's C = 1 / l2); None chooses
    # it per training fold from policies.evaluation.linear_model.PENALTIES on a split of that fold
    l2: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"reward model kind {self.kind!r} is not one of {', '.join(KINDS)}")


@dataclass(frozen=True, slots=True)
class RewardModelQuality:
    """How well the cross-fitted model predicted the logged rewards it never saw.

    One example per filled slot. ``brier`` is the mean squared error (the Brier
    score for clicks); ``baseline_brier`` is the same for predicting the training
    folds' mean reward, and ``skill = 1 - brier / baseline_brier`` (above 0: better
    than the mean). ``log_loss`` is the cross-entropy, only when every reward is in
    [0, 1]. ``mean_prediction`` against ``mean_reward`` is calibration-in-the-large.
    """

    kind: str
    reason: str
    n: int
    brier: float
    baseline_brier: float
    skill: float
    log_loss: float | None
    baseline_log_loss: float | None
    mean_prediction: float
    mean_reward: float


@dataclass(frozen=True, slots=True)
class RewardModelFit:
    predictions: list[np.ndarray]  # per decision, shape (slots, n_actions)
    quality: RewardModelQuality


class _Model(Protocol):
    def train(self, decisions: Sequence[LoggedDecision]) -> None: ...
    def predict(self, decision: LoggedDecision) -> np.ndarray: ...
    def close(self) -> None: ...


def cross_fit(decisions: Sequence[LoggedDecision], options: RewardModelOptions) -> list[np.ndarray]:
    """Return, per decision, predicted rewards of shape (slots, n_actions)."""
    return fit(decisions, options).predictions


def fit(decisions: Sequence[LoggedDecision], options: RewardModelOptions) -> RewardModelFit:
    """Cross-fit the reward model; return its predictions and their held-out quality.

    Only actions that could appear at a slot (not excluded, not shown above it)
    are predicted; the rest are 0, and every policy gives them probability 0.
    """
    if options.folds < 2:
        raise ValueError("cross-fitting needs at least 2 folds")
    observed = [r for d in decisions for r in d.rewards]
    if not observed:
        raise ValueError("the reward model needs at least one logged reward")
    low, high = min(observed), max(observed)
    kind, reason = choose_kind(options.kind, low, high)
    fold_of = np.random.default_rng(options.seed).integers(0, options.folds, size=len(decisions))
    predictions: list[np.ndarray] = [np.zeros(0)] * len(decisions)
    baseline = np.zeros(len(decisions))
    for fold in range(options.folds):
        training = [decisions[i] for i in np.flatnonzero(fold_of != fold).tolist()]
        held_out = np.flatnonzero(fold_of == fold)
        rewards = [r for d in training for r in d.rewards]
        baseline[held_out] = float(np.mean(rewards)) if rewards else 0.0
        model = _build(kind, options)
        try:
            if training:
                model.train(training)
            for index in held_out.tolist():
                predictions[index] = model.predict(decisions[index]) if training else _zeros(decisions[index])
        finally:
            model.close()
    # A regression can predict outside what rewards can be; no policy can earn that.
    predictions = [np.where(p != 0, np.clip(p, low, high), 0.0) for p in predictions]
    quality = _quality(kind, reason, decisions, predictions, baseline, binary=low >= 0 and high <= 1)
    return RewardModelFit(predictions, quality)


def choose_kind(kind: str, low: float, high: float) -> tuple[str, str]:
    """Return the model to fit and why: "auto" picks by the range of the rewards."""
    within = low >= 0 and high <= 1
    if kind in ("logistic", "vw-logistic") and not within:
        raise ValueError(
            f"reward model {kind} needs every reward in [0, 1], but rewards range from {low:g} to {high:g}: "
            "use auto, linear or vw-squared"
        )
    if kind != "auto":
        return kind, "chosen with --reward-model"
    if within:
        return "logistic", f"auto: every reward is within [0, 1] (seen {low:g} to {high:g})"
    return "linear", f"auto: rewards range from {low:g} to {high:g}, outside [0, 1]"


def _build(kind: str, options: RewardModelOptions) -> _Model:
    if kind in ("logistic", "linear"):
        return _NumpyModel(LinearRewardModel("logistic" if kind == "logistic" else "squared", options.l2))
    if kind == "action-mean":
        return _ActionMean()
    logistic = kind == "vw-logistic"
    default = VWRegressor.LOGISTIC_ARGS if logistic else VWRegressor.DEFAULT_ARGS
    return _VWModel(VWRegressor(options.vw_args or default, logistic=logistic), options.passes)


def _zeros(decision: LoggedDecision) -> np.ndarray:
    return np.zeros((len(decision.event.choices), len(decision.event.actions)))


def _candidates(decision: LoggedDecision) -> list[list[int]]:
    """Per slot, the columns of the actions that could have appeared there."""
    event = decision.event
    shown: set[str] = set()
    columns = []
    for choice in event.choices:
        hidden = event.excluded | shown
        columns.append([c for c, a in enumerate(event.actions) if a.id not in hidden])
        shown.add(choice.action_id)
    return columns


class _VWModel:
    def __init__(self, model: VWRegressor, passes: int):
        self.model, self.passes = model, passes

    def train(self, decisions: Sequence[LoggedDecision]) -> None:
        for _ in range(self.passes):
            for decision in decisions:
                event = decision.event
                context = context_namespaces(event.context)
                actions = {a.id: a for a in event.actions}
                for choice, reward in zip(event.choices, decision.rewards, strict=True):
                    action = action_namespaces(actions[choice.action_id])
                    self.model.learn(regression_features(context, action, choice.slot), reward)

    def predict(self, decision: LoggedDecision) -> np.ndarray:
        event = decision.event
        context = context_namespaces(event.context)
        texts = [action_namespaces(a) for a in event.actions]
        result = _zeros(decision)
        for row, columns in enumerate(_candidates(decision)):
            slot = event.choices[row].slot
            for column in columns:
                result[row, column] = self.model.predict(regression_features(context, texts[column], slot))
        return result

    def close(self) -> None:
        self.model.close()


class _NumpyModel:
    def __init__(self, model: LinearRewardModel):
        self.model = model

    @staticmethod
    def _context_side(context: str, slot: int) -> str:
        return f"{context} |_slot k={slot}"

    def train(self, decisions: Sequence[LoggedDecision]) -> None:
        examples, targets = [], []
        for decision in decisions:
            event = decision.event
            context = context_namespaces(event.context)
            actions = {a.id: a for a in event.actions}
            for choice, reward in zip(event.choices, decision.rewards, strict=True):
                examples.append(
                    (self._context_side(context, choice.slot), action_namespaces(actions[choice.action_id]))
                )
                targets.append(reward)
        self.model.fit(examples, targets)

    def predict(self, decision: LoggedDecision) -> np.ndarray:
        event = decision.event
        context = context_namespaces(event.context)
        texts = [action_namespaces(a) for a in event.actions]
        result = _zeros(decision)
        for row, columns in enumerate(_candidates(decision)):
            side = self._context_side(context, event.choices[row].slot)
            result[row, columns] = self.model.predict(side, [texts[c] for c in columns])
        return result

    def close(self) -> None:
        pass


class _ActionMean:
    """Each offer's mean reward at each slot, shrunk towards the overall mean: the floor to beat."""

    PRIOR = 10.0  # pseudo-decisions at the overall mean

    def __init__(self) -> None:
        self.means: dict[tuple[str, int], float] = {}
        self.overall = 0.0

    def train(self, decisions: Sequence[LoggedDecision]) -> None:
        sums: dict[tuple[str, int], list[float]] = {}
        for decision in decisions:
            for choice, reward in zip(decision.event.choices, decision.rewards, strict=True):
                sums.setdefault((choice.action_id, choice.slot), []).append(reward)
        self.overall = float(np.mean([r for rs in sums.values() for r in rs]))
        self.means = {
            k: (sum(rs) + self.PRIOR * self.overall) / (len(rs) + self.PRIOR) for k, rs in sums.items()
        }

    def predict(self, decision: LoggedDecision) -> np.ndarray:
        event = decision.event
        result = _zeros(decision)
        for row, columns in enumerate(_candidates(decision)):
            slot = event.choices[row].slot
            for column in columns:
                result[row, column] = self.means.get((event.actions[column].id, slot), self.overall)
        return result

    def close(self) -> None:
        pass


def _quality(
    kind: str,
    reason: str,
    decisions: Sequence[LoggedDecision],
    predictions: Sequence[np.ndarray],
    baseline: np.ndarray,
    *,
    binary: bool,
) -> RewardModelQuality:
    predicted, observed, constant = [], [], []
    for decision, q_hat, mean in zip(decisions, predictions, baseline, strict=True):
        for row, (choice, reward) in enumerate(zip(decision.event.choices, decision.rewards, strict=True)):
            predicted.append(q_hat[row, decision.action_index(choice.action_id)])
            observed.append(reward)
            constant.append(mean)
    q, r, c = (np.asarray(v, dtype=np.float64) for v in (predicted, observed, constant))
    brier, baseline_brier = float(np.mean((q - r) ** 2)), float(np.mean((c - r) ** 2))
    return RewardModelQuality(
        kind=kind,
        reason=reason,
        n=len(r),
        brier=brier,
        baseline_brier=baseline_brier,
        skill=1.0 - brier / baseline_brier if baseline_brier > 0 else 0.0,
        log_loss=_log_loss(q, r) if binary else None,
        baseline_log_loss=_log_loss(c, r) if binary else None,
        mean_prediction=float(q.mean()),
        mean_reward=float(r.mean()),
    )


def _log_loss(q: np.ndarray, r: np.ndarray) -> float:
    q = np.clip(q, _PROBABILITY_FLOOR, 1 - _PROBABILITY_FLOOR)
    return float(np.mean(-(r * np.log(q) + (1 - r) * np.log(1 - q))))
