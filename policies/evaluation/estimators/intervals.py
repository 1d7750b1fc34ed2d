"""Confidence intervals and the Estimate every estimator returns.

Every estimator here is (or is linearised as) a mean of per-decision values, so
two interval methods cover them all:

- ``Normal``: the central-limit interval ``V ± z·s/√n``, with ``s`` the sample
  standard deviation of the per-decision values. For the self-normalised
  estimators those values are the delta-method linearisation, so ``s`` includes
  the uncertainty of the normaliser. Exact in the limit; cheap for millions of
  events.
- ``Bootstrap``: the percentile bootstrap over decisions (Efron & Tibshirani,
  1993), recomputing the estimator on each resample. Slower, makes no normality
  assumption; the reward model is held fixed (it was cross-fitted already).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from policies.evaluation.estimators.batch import EvalBatch

__all__ = ["Bootstrap", "Estimate", "Interval", "Normal", "effective_sample_size"]


@dataclass(frozen=True, slots=True)
class Estimate:
    """An estimated average reward per decision, with its interval.

    ``ess`` is the effective sample size of the importance weights: how many
    decisions drawn from the target policy itself the log is worth.
    """

    estimator: str
    value: float
    low: float
    high: float
    n: int
    ess: float
    level: float


RoundValues = Callable[[EvalBatch], np.ndarray]


@dataclass(frozen=True, slots=True)
class Normal:
    """Central-limit interval around the mean of the per-decision values."""

    level: float = 0.95

    @property
    def name(self) -> str:
        return "normal"

    def interval(
        self, batch: EvalBatch, round_values: RoundValues, values: np.ndarray
    ) -> tuple[float, float]:
        """Return (low, high) around ``values.mean()``."""
        mean = float(values.mean())
        if len(values) < 2:
            return mean, mean
        z = NormalDist().inv_cdf(0.5 + self.level / 2)
        half = z * float(values.std(ddof=1)) / float(np.sqrt(len(values)))
        return float(mean - half), float(mean + half)


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """Percentile bootstrap over decisions; reproducible for a given seed."""

    level: float = 0.95
    samples: int = 1000
    seed: int = 0

    @property
    def name(self) -> str:
        return f"bootstrap ({self.samples} resamples)"

    def interval(
        self, batch: EvalBatch, round_values: RoundValues, values: np.ndarray
    ) -> tuple[float, float]:
        """Return the (1-level)/2 and (1+level)/2 quantiles of resampled estimates."""
        rng = np.random.default_rng(self.seed)
        estimates = np.empty(self.samples)
        for b in range(self.samples):
            rows = rng.integers(0, batch.n, size=batch.n)
            estimates[b] = round_values(batch.take(rows)).mean()
        tail = (1 - self.level) / 2
        low, high = np.quantile(estimates, [tail, 1 - tail])
        return float(low), float(high)


Interval = Normal | Bootstrap


def effective_sample_size(batch: EvalBatch) -> float:
    """Return Kish's effective sample size ``(Σw)² / Σw²`` of the whole-decision weights.

    The weight of a decision is the cascade weight of its last filled slot, i.e.
    of everything it showed. Equals ``n`` when the target is the logging policy;
    0 when the target would never have made any logged choice.
    """
    weights = batch.weights()
    last = batch.mask.sum(axis=1) - 1
    whole = weights[np.arange(batch.n), last]
    squares = float(np.dot(whole, whole))
    return float(whole.sum()) ** 2 / squares if squares > 0 else 0.0


def estimate(name: str, batch: EvalBatch, round_values: RoundValues, interval: Interval) -> Estimate:
    """Return an Estimate from an estimator's per-decision values (shared by all estimators)."""
    values = round_values(batch)
    low, high = interval.interval(batch, round_values, values)
    return Estimate(
        estimator=name,
        value=float(values.mean()),
        low=low,
        high=high,
        n=batch.n,
        ess=effective_sample_size(batch),
        level=interval.level,
    )
