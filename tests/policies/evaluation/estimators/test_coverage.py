"""Simulations with a known true policy value: intervals cover it, DR beats IPS."""

from __future__ import annotations

import numpy as np
import pytest

from policies.evaluation.estimators import (
    Bootstrap,
    DoublyRobust,
    EvalBatch,
    InverseProbabilityWeighting,
    Normal,
    SelfNormalizedDoublyRobust,
    SelfNormalizedIPS,
)

N_CONTEXTS, N_ACTIONS = 5, 4


class Problem:
    """Contexts uniform; Bernoulli rewards; a stochastic logging and a different target."""

    def __init__(self, rng: np.random.Generator):
        self.click = rng.uniform(0.05, 0.6, (N_CONTEXTS, N_ACTIONS))
        self.logging = rng.dirichlet(np.full(N_ACTIONS, 2.0), N_CONTEXTS)
        self.target = rng.dirichlet(np.full(N_ACTIONS, 0.5), N_CONTEXTS)
        # a reward model fitted elsewhere: right up to a small systematic error
        self.q_hat = np.clip(self.click + rng.normal(0, 0.05, self.click.shape), 0, 1)

    @property
    def true_value(self) -> float:
        return float((self.target * self.click).sum(axis=1).mean())

    def log(self, rng: np.random.Generator, n: int) -> EvalBatch:
        x = rng.integers(0, N_CONTEXTS, n)
        u = rng.random(n)[:, None]
        a = (u > np.cumsum(self.logging[x], axis=1)).sum(axis=1).clip(max=N_ACTIONS - 1)
        r = (rng.random(n) < self.click[x, a]).astype(float)
        return EvalBatch.single_slot(
            r,
            self.logging[x, a],
            self.target[x, a],
            self.q_hat[x, a],
            (self.target[x] * self.q_hat[x]).sum(axis=1),
        )


def run(estimator, seeds: int, n: int, interval=None) -> tuple[float, float]:
    covered, errors = 0, []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        problem = Problem(rng)
        result = estimator.estimate(problem.log(rng, n), interval or Normal())
        covered += result.low <= problem.true_value <= result.high
        errors.append(abs(result.value - problem.true_value))
    return covered / seeds, float(np.mean(errors))


@pytest.mark.parametrize(
    "estimator",
    [InverseProbabilityWeighting(), SelfNormalizedIPS(), DoublyRobust(), SelfNormalizedDoublyRobust()],
    ids=lambda e: e.name,
)
def test_normal_intervals_cover_the_true_value_about_95_percent_of_the_time(estimator) -> None:
    coverage, _ = run(estimator, seeds=200, n=1500)
    assert 0.85 <= coverage <= 1.0


def test_bootstrap_intervals_cover_the_true_value() -> None:
    coverage, _ = run(DoublyRobust(), seeds=60, n=1000, interval=Bootstrap(samples=200))
    assert coverage >= 0.85


def test_doubly_robust_has_lower_error_than_ips() -> None:
    _, ips_error = run(InverseProbabilityWeighting(), seeds=200, n=1500)
    _, dr_error = run(DoublyRobust(), seeds=200, n=1500)
    assert dr_error < ips_error


def conditional(dist: np.ndarray, first: np.ndarray) -> np.ndarray:
    """Return, per row, `dist` with the first slot's action removed and renormalised."""
    rest = np.tile(dist, (len(first), 1))
    rest[np.arange(len(first)), first] = 0
    return rest / rest.sum(axis=1, keepdims=True)


def test_cascade_estimates_cover_a_two_slot_value_where_slot_two_depends_on_slot_one() -> None:
    """The second offer earns half as much when it shares a kind with the first."""
    covered, seeds, n = 0, 120, 3000
    kind = np.arange(N_ACTIONS) % 2
    for seed in range(seeds):
        rng = np.random.default_rng(1000 + seed)
        click = rng.uniform(0.1, 0.6, N_ACTIONS)
        logging = rng.dirichlet(np.full(N_ACTIONS, 3.0))
        target = rng.dirichlet(np.full(N_ACTIONS, 0.7))
        damping = np.where(kind[:, None] == kind[None, :], 0.5, 1.0)  # [first, second]

        firsts = np.arange(N_ACTIONS)
        second_given_first = conditional(target, firsts)  # [first, second]
        truth = float((target * (click + (second_given_first * click * damping[firsts]).sum(axis=1))).sum())

        first = rng.choice(N_ACTIONS, n, p=logging)
        logging_second = conditional(logging, first)
        u = rng.random(n)[:, None]
        second = (u > np.cumsum(logging_second, axis=1)).sum(axis=1).clip(max=N_ACTIONS - 1)
        rows = np.arange(n)
        reward = np.stack(
            [rng.random(n) < click[first], rng.random(n) < click[second] * damping[first, second]], axis=1
        )
        p_log = np.stack([logging[first], logging_second[rows, second]], axis=1)
        p_target = np.stack([target[first], conditional(target, first)[rows, second]], axis=1)
        batch = EvalBatch(reward.astype(float), p_log, p_target, np.ones((n, 2), dtype=bool))
        result = InverseProbabilityWeighting().estimate(batch)
        covered += result.low <= truth <= result.high
    assert covered / seeds >= 0.85
