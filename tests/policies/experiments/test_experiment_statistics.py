"""Assignment, confidence sequences and the sample-ratio check, by seeded simulation."""

from __future__ import annotations

import hashlib
import hmac
import math

import numpy as np

from policies.experiments.assignment import Arm, assign, unit_bucket
from policies.experiments.sequences import Moments, difference, mean_sequence
from policies.experiments.srm import ALARM_P, check

ARMS = (Arm("bandit", "model", 0.5), Arm("popular", "most-popular", 0.3), Arm("holdout", "no-offer", 0.2))


def test_assignment_is_sticky_keyed_and_splits_by_the_shares() -> None:
    units = [f"shopper:{k}" for k in range(20_000)]
    first = [assign(b"secret", "exp-1", u, ARMS).name for u in units]
    assert first == [assign(b"secret", "exp-1", u, ARMS).name for u in units]  # sticky
    counts = [first.count(a.name) for a in ARMS]
    # the observed split is what the shares say (4 standard errors at n = 20,000)
    for count, arm in zip(counts, ARMS, strict=True):
        assert abs(count / len(units) - arm.share) < 4 * math.sqrt(arm.share * (1 - arm.share) / len(units))
    assert not check(counts, [a.share for a in ARMS]).alarm
    # another secret or another experiment reshuffles units: nobody can pick an arm
    other_key = [assign(b"other", "exp-1", u, ARMS).name for u in units]
    other_experiment = [assign(b"secret", "exp-2", u, ARMS).name for u in units]
    for reshuffled in (other_key, other_experiment):
        same = sum(a == b for a, b in zip(first, reshuffled, strict=True)) / len(units)
        assert abs(same - (0.5**2 + 0.3**2 + 0.2**2)) < 0.02  # independent assignments agree by chance only


def test_a_units_point_is_its_hmac_sha256_so_upgrades_never_move_it() -> None:
    for unit in ("shopper:ab12", "session:x", "event:" + "9" * 32):
        keyed = hmac.new(b"secret", f"exp-1\x00{unit}".encode(), hashlib.sha256).digest()
        assert unit_bucket(b"secret", "exp-1", unit) == int.from_bytes(keyed[:8], "big") / 2**64


def test_the_sample_ratio_alarm_trips_on_a_skewed_split_and_not_on_fair_ones() -> None:
    rng = np.random.default_rng(15)
    shares = [0.5, 0.5]
    fair_alarms = sum(check(list(rng.multinomial(10_000, shares)), shares).alarm for _ in range(2_000))
    assert fair_alarms <= 2_000 * ALARM_P * 5  # p < 0.001 alarms about once in a thousand fair splits
    skewed = [list(rng.multinomial(50_000, [0.52, 0.48])) for _ in range(200)]
    assert all(check(counts, shares).alarm for counts in skewed)  # a 2-point skew over 50,000 is caught
    three = check([5_000, 3_000, 2_600], [0.5, 0.3, 0.2])
    assert three.alarm and three.p_value < ALARM_P


def _peeks(samples: np.ndarray, every: int) -> list[Moments]:
    n = np.arange(every, len(samples) + 1, every)
    total, squares = np.cumsum(samples), np.cumsum(samples**2)
    return [Moments(int(k), float(total[k - 1]), float(squares[k - 1])) for k in n]


def test_the_intervals_stay_valid_however_often_one_peeks() -> None:
    """Daily looks over a month: the truth leaves the sequence in at most alpha of the runs,
    where the fixed-sample interval, checked as often, misses it far more often."""
    rng = np.random.default_rng(7)
    alpha, runs, n, every, p = 0.05, 400, 3_000, 100, 0.1
    sequence_misses = naive_misses = 0
    for _ in range(runs):
        looks = _peeks((rng.random(n) < p).astype(float), every)
        sequence_misses += any(
            not mean_sequence(m, alpha).low <= p <= mean_sequence(m, alpha).high for m in looks
        )
        naive_misses += any(abs(m.mean - p) > 1.96 * math.sqrt(m.variance / m.n) for m in looks)
    assert sequence_misses / runs <= alpha
    assert naive_misses / runs > 2 * alpha  # the test has teeth: naive peeking inflates errors


def test_the_lift_interval_covers_the_true_lift_under_peeking_and_narrows() -> None:
    rng = np.random.default_rng(11)
    alpha, runs, n, every = 0.05, 300, 4_000, 200
    revenue = lambda size, rate: (rng.random(size) < rate) * rng.exponential(30.0, size)  # noqa: E731
    true_lift = 0.08 * 30.0 - 0.05 * 30.0
    misses, widths = 0, []
    for _ in range(runs):
        treated, control = _peeks(revenue(n, 0.08), every), _peeks(revenue(n, 0.05), every)
        lifts = [difference(t, c, alpha) for t, c in zip(treated, control, strict=True)]
        misses += any(not d.low <= true_lift <= d.high for d in lifts)
        widths.append((lifts[0].high - lifts[0].low, lifts[-1].high - lifts[-1].low))
    assert misses / runs <= alpha
    assert float(np.median([late / early for early, late in widths])) < 0.5  # it learns as data come
