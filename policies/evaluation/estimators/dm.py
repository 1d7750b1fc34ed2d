"""Direct method (DM)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policies.evaluation.estimators.batch import EvalBatch, InvalidLog
from policies.evaluation.estimators.intervals import Estimate, Interval, Normal, estimate

__all__ = ["DirectMethod", "require_reward_model"]


def require_reward_model(batch: EvalBatch, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (q_hat_logged, q_hat_target), or refuse when the batch has no reward model."""
    if batch.q_hat_logged is None or batch.q_hat_target is None:
        raise InvalidLog(f"{name} needs reward-model predictions (q_hat_logged, q_hat_target)")
    return batch.q_hat_logged, batch.q_hat_target


@dataclass(frozen=True, slots=True)
class DirectMethod:
    """Average a reward model's prediction over the target's choices; ignore logged rewards.

    .. math::

        \\hat V_{DM} = \\frac{1}{n} \\sum_{i=1}^{n} \\sum_k \\bar w_{ik}
            \\sum_{a} \\pi_e(a | x_i, a_{i<k}) \\, \\hat q_k(x_i, a)

    where ``w̄_ik`` is the cascade weight of the slots above ``k`` (1 for the first
    slot, so with one slot this is Dudík, Langford & Li, 2011). Low variance; biased
    exactly as much as the reward model is wrong. The model must be fitted on other
    decisions than the ones it scores (``policies.evaluation.reward_model`` cross-fits it).

    Examples
    --------
    >>> batch = EvalBatch.single_slot(
    ...     np.array([1.0]), np.array([0.5]), np.array([0.0]), np.array([0.9]), np.array([0.3]))
    >>> DirectMethod().estimate(batch).value
    0.3
    """

    name: str = "DM"

    def estimate(self, batch: EvalBatch, interval: Interval | None = None) -> Estimate:
        """Return the DM estimate of the target's average reward per decision."""
        require_reward_model(batch, self.name)
        return estimate(self.name, batch, self._round_values, interval or Normal())

    @staticmethod
    def _round_values(batch: EvalBatch) -> np.ndarray:
        _, q_hat_target = require_reward_model(batch, "DM")
        return (batch.prefix_weights() * q_hat_target).sum(axis=1)
