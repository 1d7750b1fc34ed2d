"""Inverse probability weighting (IPS)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policies.evaluation.estimators.batch import EvalBatch
from policies.evaluation.estimators.intervals import Estimate, Interval, Normal, estimate

__all__ = ["InverseProbabilityWeighting"]


@dataclass(frozen=True, slots=True)
class InverseProbabilityWeighting:
    """Reweight each logged reward by how much likelier the target made the logged choice.

    .. math::

        \\hat V_{IPS} = \\frac{1}{n} \\sum_{i=1}^{n} \\sum_{k} w_{ik} r_{ik},
        \\qquad w_{ik} = \\prod_{j \\le k} \\pi_e(a_{ij} | x_i, a_{i<j}) / \\pi_b(a_{ij} | x_i, a_{i<j})

    Unbiased whenever the logging policy gave every action the target may choose a
    non-zero probability; its variance grows with the weights. With one slot it is
    Horvitz & Thompson (1952) as used for bandits by Precup et al. (2000) and
    Strehl et al. (2010); with several it is reward-interaction IPS (McInerney et
    al., 2020).

    Examples
    --------
    >>> batch = EvalBatch.single_slot(np.array([1.0, 0.0]), np.array([0.5, 0.5]), np.array([1.0, 0.0]))
    >>> InverseProbabilityWeighting().estimate(batch).value
    1.0
    """

    name: str = "IPS"

    def estimate(self, batch: EvalBatch, interval: Interval | None = None) -> Estimate:
        """Return the IPS estimate of the target's average reward per decision."""
        return estimate(self.name, batch, self._round_values, interval or Normal())

    @staticmethod
    def _round_values(batch: EvalBatch) -> np.ndarray:
        return (batch.weights() * batch.reward).sum(axis=1)
