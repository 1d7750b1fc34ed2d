"""Doubly robust (DR)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policies.evaluation.estimators.batch import EvalBatch
from policies.evaluation.estimators.dm import require_reward_model
from policies.evaluation.estimators.intervals import Estimate, Interval, Normal, estimate

__all__ = ["DoublyRobust"]


@dataclass(frozen=True, slots=True)
class DoublyRobust:
    """Start from the reward model and correct it with importance-weighted residuals.

    .. math::

        \\hat V_{DR} = \\frac{1}{n} \\sum_{i=1}^{n} \\sum_k \\Big[
            \\bar w_{ik} \\sum_a \\pi_e(a | x_i, a_{i<k}) \\hat q_k(x_i, a)
            + w_{ik} \\big(r_{ik} - \\hat q_k(x_i, a_{ik})\\big) \\Big]

    Unbiased when the propensities are right, whatever the reward model; when the
    model is good the residuals are small and so is the variance (Dudík, Langford &
    Li, 2011). With several slots it is the cascade-DR of Kiyohara et al. (2022)
    with a per-slot reward model.

    Examples
    --------
    >>> batch = EvalBatch.single_slot(
    ...     np.array([1.0]), np.array([0.5]), np.array([0.5]), np.array([0.8]), np.array([0.6]))
    >>> round(DoublyRobust().estimate(batch).value, 6)
    0.8
    """

    name: str = "DR"

    def estimate(self, batch: EvalBatch, interval: Interval | None = None) -> Estimate:
        """Return the DR estimate of the target's average reward per decision."""
        require_reward_model(batch, self.name)
        return estimate(self.name, batch, self._round_values, interval or Normal())

    @staticmethod
    def _round_values(batch: EvalBatch) -> np.ndarray:
        q_hat_logged, q_hat_target = require_reward_model(batch, "DR")
        baseline = batch.prefix_weights() * q_hat_target
        correction = batch.weights() * (batch.reward - q_hat_logged)
        return (baseline + correction).sum(axis=1)
