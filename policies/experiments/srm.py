"""Sample-ratio mismatch: does the observed split depart from the configured shares?

A split that is off (a broken assignment, a bot hitting one arm, a cache serving one
arm's answers) biases every comparison, so the results page raises an alarm instead
of a lift. Pearson's chi-square goodness-of-fit test, alarmed at p < 0.001 (the level
Fabijan et al., "Diagnosing Sample Ratio Mismatch in Online Controlled Experiments",
KDD 2019, recommend: rare false alarms across many experiments and daily looks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["ALARM_P", "SampleRatio", "check"]

ALARM_P = 0.001


@dataclass(frozen=True, slots=True)
class SampleRatio:
    statistic: float
    p_value: float
    alarm: bool


def check(observed: Sequence[int], shares: Sequence[float], *, alarm_p: float = ALARM_P) -> SampleRatio:
    """Return the chi-square statistic, its p-value and whether it alarms.

    >>> check([5000, 5000], [0.5, 0.5]).alarm, check([5000, 4500], [0.5, 0.5]).alarm
    (False, True)
    """
    total = sum(observed)
    weight = sum(shares)
    if total == 0 or len(observed) < 2:
        return SampleRatio(0.0, 1.0, False)
    statistic = 0.0
    for count, share in zip(observed, shares, strict=True):
        expected = total * share / weight
        statistic += (count - expected) ** 2 / expected
    p = chi2_sf(statistic, len(observed) - 1)
    return SampleRatio(statistic, p, p < alarm_p)


def chi2_sf(x: float, df: int) -> float:
    """Return P(X > x) for X chi-square with integer `df` degrees of freedom.

    Closed forms (Abramowitz and Stegun 26.4.4 and 26.4.5): a finite Poisson sum for
    even df, the normal tail plus a finite sum for odd df; exact, and no SciPy on the
    serving path for one function.

    >>> round(chi2_sf(3.841458820694124, 1), 6), round(chi2_sf(5.991464547107979, 2), 6)
    (0.05, 0.05)
    """
    if x <= 0:
        return 1.0
    half = x / 2
    if df % 2 == 0:
        term, total = 1.0, 1.0
        for i in range(1, df // 2):
            term *= half / i
            total += term
        return min(1.0, math.exp(-half) * total)
    root = math.sqrt(x)
    tail = math.erfc(root / math.sqrt(2))
    term = root * math.sqrt(2 / math.pi) * math.exp(-half)
    total = 0.0
    for i in range(1, (df - 1) // 2 + 1):
        total += term
        term *= x / (2 * i + 1)
    return min(1.0, tail + total)
