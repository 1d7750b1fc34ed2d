"""Self-normalised inverse probability weighting (SNIPS)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policies.evaluation.estimators.batch import EvalBatch
from policies.evaluation.estimators.intervals import Estimate, Interval, Normal, estimate

__all__ = ["SelfNormalizedIPS"]


@dataclass(frozen=True, slots=True)
class SelfNormalizedIPS:
    """Divide the IPS sum by the sum of the weights instead of by n.

    Per slot ``k``, over the ``n_k`` decisions that filled it,

    .. math::

        \\hat V_{SNIPS} = \\sum_k \\frac{n_k}{n}
            \\frac{\\sum_i w_{ik} r_{ik}}{\\sum_i w_{ik}}

    which for one slot is Swaminathan & Joachims (2015),
    ``Σ w r / Σ w``. Slightly biased, but bounded by the observed rewards and
    invariant to a common scale error in the propensities, so usually far less
    variable than IPS. The per-decision values are the delta-method
    linearisation ``R_k + w_ik (r_ik − R_k) / mean(w_k)``, whose mean is the
    estimate and whose spread gives the normal interval.

    Examples
    --------
    >>> batch = EvalBatch.single_slot(np.array([1.0, 0.0]), np.array([0.5, 0.5]), np.array([1.0, 1.0]))
    >>> SelfNormalizedIPS().estimate(batch).value
    0.5
    """

    name: str = "SNIPS"

    def estimate(self, batch: EvalBatch, interval: Interval | None = None) -> Estimate:
        """Return the SNIPS estimate of the target's average reward per decision."""
        return estimate(self.name, batch, self._round_values, interval or Normal())

    @staticmethod
    def _round_values(batch: EvalBatch) -> np.ndarray:
        weights = batch.weights()
        filled = np.maximum(batch.mask.sum(axis=0), 1)
        weight_sums = weights.sum(axis=0)
        # A target that never agrees with the log at a slot gets 0 there, not NaN.
        weight_sums = np.where(weight_sums > 0, weight_sums, 1.0)
        ratio = (weights * batch.reward).sum(axis=0) / weight_sums  # R_k
        # Dividing by the sum (not by a mean that can underflow) keeps tiny weights exact.
        per_slot = batch.mask * ratio + filled * (weights * (batch.reward - ratio) / weight_sums)
        return per_slot.sum(axis=1)
