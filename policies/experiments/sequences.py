"""Anytime-valid confidence sequences for a mean, and for a difference of two means.

An operator looks at the results every day; a fixed-sample interval checked that
often excludes the truth far more often than its nominal rate. A confidence
sequence covers the true mean at every sample size simultaneously with
probability at least 1 - alpha, so looking as often as one likes is safe.

We use the asymptotic confidence sequence (normal mixture, after Robbins, 1970) of
Waudby-Smith, Arbour, Sinha, Kennedy and Ramdas, "Time-uniform central limit theory
and asymptotic confidence sequences", Annals of Statistics (2024), arXiv:2103.06476,
Theorem 2.2:

    mean +- sqrt( 2 (t rho^2 s^2 + 1) / (t^2 rho^2) * log( sqrt(t rho^2 s^2 + 1) / alpha ) )

with s^2 the sample variance and rho tuned so the boundary is tightest near
``tuned_for`` observations (their equation (2.6), with s = 1 before scaling). It
needs only finite variance, so it serves click-through, dismissals and revenue alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Interval", "Moments", "difference", "mean_sequence"]

TUNED_FOR = 1000  # sample size where the boundary is tightest (any choice stays valid)


@dataclass(frozen=True, slots=True)
class Moments:
    """A sample's count, sum and sum of squares: all a sequence needs, additive over rows."""

    n: int
    total: float
    squares: float

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else 0.0

    @property
    def variance(self) -> float:
        if self.n < 2:
            return 0.0
        return max(self.squares / self.n - self.mean**2, 0.0) * self.n / (self.n - 1)


@dataclass(frozen=True, slots=True)
class Interval:
    estimate: float
    low: float
    high: float


def radius(moments: Moments, alpha: float, *, tuned_for: int = TUNED_FOR) -> float:
    """Return the half-width of the (1 - alpha) confidence sequence at this sample size."""
    if moments.n == 0:
        return math.inf
    t = moments.n
    # Their (2.6) for the scaled problem; the variance enters through t rho^2 s^2 below.
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / tuned_for
    scaled = t * rho2 * moments.variance + 1
    return math.sqrt(2 * scaled / (t * t * rho2) * math.log(math.sqrt(scaled) / alpha))


def mean_sequence(moments: Moments, alpha: float) -> Interval:
    """Return the mean with its anytime-valid (1 - alpha) interval."""
    r = radius(moments, alpha)
    return Interval(moments.mean, moments.mean - r, moments.mean + r)


def difference(treated: Moments, control: Moments, alpha: float) -> Interval:
    """Return mean(treated) - mean(control) with an anytime-valid (1 - alpha) interval.

    Each arm's sequence at alpha / 2 holds at all times together with probability at
    least 1 - alpha (a union bound), so the difference of their bounds does too:
    conservative, but valid however the two arms' sample sizes grow.
    """
    a, b = radius(treated, alpha / 2), radius(control, alpha / 2)
    estimate = treated.mean - control.mean
    return Interval(estimate, estimate - a - b, estimate + a + b)
