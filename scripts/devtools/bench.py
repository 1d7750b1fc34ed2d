"""`xsell bench estimators`: how fast the estimators run on a million logged decisions.

Figures are ratios against a baseline measured in the same run (the cost of one
``numpy`` pass over the same arrays: a weighted mean), so they mean something on
a shared, noisy machine; absolute events/second are printed beside them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from policies.evaluation.candidates import MostPopular, uniform
from policies.evaluation.estimators import ALL_ESTIMATORS, Bootstrap, EvalBatch, Normal
from policies.evaluation.replay import EvaluationOptions, evaluate
from scripts.devtools.synthetic import SyntheticProblem, uniform_log

__all__ = ["EstimatorTiming", "bench_estimators", "bench_replay", "synthetic_batch"]


@dataclass(frozen=True, slots=True)
class EstimatorTiming:
    name: str
    seconds: float
    events_per_second: float
    ratio_to_baseline: float


def synthetic_batch(n: int, *, slots: int = 1, n_actions: int = 10, seed: int = 0) -> EvalBatch:
    """Return `n` logged decisions from a softmax logging policy, scored for another softmax."""
    rng = np.random.default_rng(seed)
    shape = (n, slots)
    p_log = rng.uniform(1 / (2 * n_actions), 2 / n_actions, shape)
    p_target = rng.uniform(0, 3 / n_actions, shape)
    reward = (rng.random(shape) < 0.1).astype(np.float64)
    q_logged = rng.uniform(0, 0.2, shape)
    q_target = rng.uniform(0, 0.2, shape)
    return EvalBatch(reward, p_log, p_target, np.ones(shape, dtype=bool), q_logged, q_target)


def _best_of(repeats: int, work: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def bench_estimators(
    n: int = 1_000_000, *, repeats: int = 3, bootstrap_samples: int = 0
) -> list[EstimatorTiming]:
    """Time every estimator (with its normal interval and ESS) on `n` decisions."""
    batch = synthetic_batch(n)
    weights = batch.p_target / batch.p_log
    baseline = _best_of(repeats, lambda: float((weights * batch.reward).mean()))
    timings = [EstimatorTiming("baseline: numpy weighted mean", baseline, n / baseline, 1.0)]
    for estimator in ALL_ESTIMATORS:
        seconds = _best_of(repeats, lambda e=estimator: e.estimate(batch, Normal()))
        timings.append(EstimatorTiming(estimator.name, seconds, n / seconds, seconds / baseline))
    if bootstrap_samples:
        interval = Bootstrap(samples=bootstrap_samples)
        seconds = _best_of(1, lambda: ALL_ESTIMATORS[0].estimate(batch, interval))
        timings.append(
            EstimatorTiming(
                f"IPS + bootstrap ({bootstrap_samples})", seconds, n / seconds, seconds / baseline
            )
        )
    return timings


def bench_replay(n: int) -> list[EstimatorTiming]:
    """Time a whole evaluation (replay through two candidates, then every estimator but the
    model-based ones) and the reward model's cross-fitting, per logged decision."""
    decisions = uniform_log(SyntheticProblem(seed=0), n)
    timings = []
    start = time.perf_counter()
    evaluate(decisions, [uniform(), MostPopular()], EvaluationOptions(reward_model=None))
    seconds = time.perf_counter() - start
    timings.append(EstimatorTiming("replay 2 policies, IPS+SNIPS", seconds, n / seconds, float("nan")))
    start = time.perf_counter()
    evaluate(decisions, [uniform(), MostPopular()])
    seconds = time.perf_counter() - start
    timings.append(EstimatorTiming("replay 2 policies, all + DM fit", seconds, n / seconds, float("nan")))
    return timings
