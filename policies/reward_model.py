"""The reward model behind DM and DR, cross-fitted so no decision is scored by a
model that saw its reward.

Decisions are split into `folds` at random (seeded); the model that predicts a
fold is trained on all the other folds (Chernozhukov et al., 2018, "Double/debiased
machine learning"; Narita, Yasui & Yata, 2021, for off-policy evaluation). A model
scoring its own training data would look better than it is and make DM and DR
overconfident.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from policies.dataset import LoggedDecision
from policies.features import action_namespaces, context_namespaces, regression_features
from policies.vw import VWRegressor

__all__ = ["RewardModelOptions", "cross_fit"]


@dataclass(frozen=True, slots=True)
class RewardModelOptions:
    folds: int = 2
    seed: int = 0
    vw_args: str = VWRegressor.DEFAULT_ARGS
    # VW learns online in one pass; a few passes over the training folds fit far better
    passes: int = 3


def cross_fit(decisions: Sequence[LoggedDecision], options: RewardModelOptions) -> list[np.ndarray]:
    """Return, per decision, predicted rewards of shape (slots, n_actions).

    Only actions that could appear at a slot (not excluded, not shown above it)
    are predicted; the rest are 0, and every policy gives them probability 0.
    """
    if options.folds < 2:
        raise ValueError("cross-fitting needs at least 2 folds")
    fold_of = np.random.default_rng(options.seed).integers(0, options.folds, size=len(decisions))
    predictions: list[np.ndarray] = [np.zeros(0)] * len(decisions)
    for fold in range(options.folds):
        model = VWRegressor(options.vw_args)
        try:
            training = np.flatnonzero(fold_of != fold)
            for _ in range(options.passes):
                for index in training:
                    _learn(model, decisions[index])
            for index in np.flatnonzero(fold_of == fold):
                predictions[index] = _predict(model, decisions[index])
        finally:
            model.close()
    # A regression can predict outside what rewards can be; no policy can earn that.
    observed = [r for d in decisions for r in d.rewards]
    low, high = min(observed), max(observed)
    return [np.where(p != 0, np.clip(p, low, high), 0.0) for p in predictions]


def _learn(model: VWRegressor, decision: LoggedDecision) -> None:
    event = decision.event
    context = context_namespaces(event.context)
    actions = {a.id: a for a in event.actions}
    for choice, reward in zip(event.choices, decision.rewards, strict=True):
        action = action_namespaces(actions[choice.action_id])
        model.learn(regression_features(context, action, choice.slot), reward)


def _predict(model: VWRegressor, decision: LoggedDecision) -> np.ndarray:
    event = decision.event
    context = context_namespaces(event.context)
    texts = [action_namespaces(a) for a in event.actions]
    result = np.zeros((len(event.choices), len(event.actions)))
    shown: set[str] = set()
    for row, choice in enumerate(event.choices):
        for column, action in enumerate(event.actions):
            if action.id not in event.excluded and action.id not in shown:
                result[row, column] = model.predict(regression_features(context, texts[column], choice.slot))
        shown.add(choice.action_id)
    return result
