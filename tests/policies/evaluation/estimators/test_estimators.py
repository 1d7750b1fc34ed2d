"""Hand-computed cases and properties of every estimator."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from policies.evaluation.estimators import (
    ALL_ESTIMATORS,
    Bootstrap,
    DirectMethod,
    DoublyRobust,
    EvalBatch,
    InvalidLog,
    InverseProbabilityWeighting,
    Normal,
    SelfNormalizedDoublyRobust,
    SelfNormalizedIPS,
    effective_sample_size,
)


def small_batch() -> EvalBatch:
    # weights w = p_target / p_log = [2, 0, 2, 2]
    return EvalBatch.single_slot(
        reward=np.array([1.0, 0.0, 1.0, 0.0]),
        p_log=np.array([0.5, 0.5, 0.25, 0.25]),
        p_target=np.array([1.0, 0.0, 0.5, 0.5]),
        q_hat_logged=np.array([0.8, 0.1, 0.5, 0.5]),
        q_hat_target=np.array([0.6, 0.2, 0.4, 0.4]),
    )


@pytest.mark.parametrize(
    ("estimator", "expected"),
    [
        (InverseProbabilityWeighting(), (2 + 0 + 2 + 0) / 4),
        (SelfNormalizedIPS(), (2 + 0 + 2 + 0) / (2 + 0 + 2 + 2)),
        (DirectMethod(), (0.6 + 0.2 + 0.4 + 0.4) / 4),
        # DM + mean(w (r - q)) = 0.4 + (2*0.2 + 0 + 2*0.5 - 2*0.5) / 4
        (DoublyRobust(), 0.4 + 0.4 / 4),
        # the same correction divided by mean(w) = 1.5
        (SelfNormalizedDoublyRobust(), 0.4 + (0.4 / 4) / 1.5),
    ],
)
def test_hand_computed_single_slot(estimator, expected) -> None:
    result = estimator.estimate(small_batch())
    assert result.value == pytest.approx(expected, abs=1e-12)
    assert result.n == 4
    assert result.low <= result.value <= result.high


def test_normal_interval_is_mean_plus_minus_z_standard_error() -> None:
    # IPS per-decision values are [2, 0, 2, 0]: mean 1, sample sd sqrt(4/3)
    result = InverseProbabilityWeighting().estimate(small_batch(), Normal(level=0.95))
    half = 1.959963984540054 * np.sqrt(4 / 3) / 2
    assert (result.low, result.high) == pytest.approx((1 - half, 1 + half), abs=1e-9)


def test_effective_sample_size_is_kish() -> None:
    # weights [2, 0, 2, 2]: (6)^2 / 12 = 3
    assert effective_sample_size(small_batch()) == pytest.approx(3.0)


def test_two_slots_use_cascade_weights() -> None:
    batch = EvalBatch(
        reward=np.array([[1.0, 1.0], [0.0, 0.0]]),
        p_log=np.array([[0.5, 0.5], [0.5, 1.0]]),
        p_target=np.array([[1.0, 0.25], [0.5, 0.0]]),
        mask=np.array([[True, True], [True, False]]),
        q_hat_logged=np.array([[0.5, 0.5], [0.5, 0.0]]),
        q_hat_target=np.array([[0.4, 0.2], [0.3, 0.0]]),
    )
    # slot weights: decision 0: [2, 2*0.5] ; decision 1: [1, -]
    assert InverseProbabilityWeighting().estimate(batch).value == pytest.approx((2 * 1 + 1 * 1 + 0) / 2)
    # slot 1: (2*1 + 1*0)/(2+1) ; slot 2 filled by 1 of 2 decisions: 1/2 * (1*1)/1
    assert SelfNormalizedIPS().estimate(batch).value == pytest.approx(2 / 3 + 0.5)
    # DM: decision 0: 0.4 + 2*0.2 ; decision 1: 0.3
    assert DirectMethod().estimate(batch).value == pytest.approx((0.8 + 0.3) / 2)
    # DR adds w (r - q): decision 0: 2*0.5 + 1*0.5 ; decision 1: 1*(0 - 0.5)
    assert DoublyRobust().estimate(batch).value == pytest.approx((0.8 + 0.3 + 1.5 - 0.5) / 2)
    assert effective_sample_size(batch) == pytest.approx((1 + 1) ** 2 / (1 + 1))


def test_bootstrap_interval_is_reproducible_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(3)
    n = 400
    batch = EvalBatch.single_slot(
        rng.binomial(1, 0.3, n).astype(float), np.full(n, 0.5), rng.choice([0.0, 1.0], n)
    )
    first = SelfNormalizedIPS().estimate(batch, Bootstrap(samples=300, seed=1))
    again = SelfNormalizedIPS().estimate(batch, Bootstrap(samples=300, seed=1))
    normal = SelfNormalizedIPS().estimate(batch, Normal())
    assert (first.low, first.high) == (again.low, again.high)
    assert first.low < first.value < first.high
    # two honest methods on 400 decisions agree on the width to within a third
    assert (first.high - first.low) == pytest.approx(normal.high - normal.low, rel=0.34)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"p_log": np.array([0.5, 0.0])}, "propensity"),
        ({"p_log": np.array([0.5, 1.5])}, "propensity"),
        ({"p_log": np.array([0.5, -0.1])}, "propensity"),
        ({"p_log": np.array([0.5, np.nan])}, "propensity"),
        ({"reward": np.array([1.0, np.nan])}, "reward"),
        ({"p_target": np.array([1.2, 0.0])}, "target probability"),
        ({"reward": np.array([1.0, 0.0, 1.0])}, "shape"),
    ],
)
def test_bad_arrays_are_refused_with_the_field_named(change, message) -> None:
    arrays = {"reward": np.array([1.0, 0.0]), "p_log": np.array([0.5, 0.5]), "p_target": np.array([1.0, 0.0])}
    arrays.update(change)
    with pytest.raises(InvalidLog, match=message):
        EvalBatch.single_slot(**arrays)


def test_empty_log_is_refused() -> None:
    with pytest.raises(InvalidLog, match="empty"):
        EvalBatch.single_slot(np.array([]), np.array([]), np.array([]))


@pytest.mark.parametrize("estimator", [DirectMethod(), DoublyRobust(), SelfNormalizedDoublyRobust()])
def test_model_based_estimators_refuse_a_batch_without_a_reward_model(estimator) -> None:
    batch = EvalBatch.single_slot(np.array([1.0]), np.array([0.5]), np.array([1.0]))
    with pytest.raises(InvalidLog, match="reward-model"):
        estimator.estimate(batch)


# -- properties ------------------------------------------------------------------------


@st.composite
def logs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 60))
    slots = draw(st.integers(1, 3))
    unit = st.floats(0.01, 1.0, allow_nan=False)
    reward = draw(arrays(np.float64, (n, slots), elements=st.floats(-1, 2, allow_nan=False)))
    p_log = draw(arrays(np.float64, (n, slots), elements=unit))
    # subnormal probabilities (1e-313) are not probabilities any policy gives
    p_target = draw(arrays(np.float64, (n, slots), elements=st.floats(0.0, 1.0, allow_subnormal=False)))
    filled = draw(arrays(np.int64, (n,), elements=st.integers(1, slots)))
    mask = np.arange(slots)[None, :] < filled[:, None]
    return reward * mask, np.where(mask, p_log, 1.0), p_target * mask, mask


@given(logs())
def test_ips_of_the_logging_policy_is_the_mean_reward(log) -> None:
    reward, p_log, _, mask = log
    batch = EvalBatch(reward, p_log, p_log.copy(), mask)
    assert InverseProbabilityWeighting().estimate(batch).value == pytest.approx(
        reward.sum(axis=1).mean(), abs=1e-9
    )
    assert effective_sample_size(batch) == pytest.approx(batch.n)


@given(logs(), st.floats(0.05, 1.0))
def test_snips_is_invariant_to_scaling_propensities(log, scale) -> None:
    reward, p_log, p_target, mask = log
    single = EvalBatch(reward[:, :1], p_log[:, :1], p_target[:, :1], mask[:, :1])
    scaled = EvalBatch(reward[:, :1], p_log[:, :1] * scale, p_target[:, :1], mask[:, :1])
    assert SelfNormalizedIPS().estimate(scaled).value == pytest.approx(
        SelfNormalizedIPS().estimate(single).value, rel=1e-9, abs=1e-12
    )


@given(logs(), st.data())
def test_dr_equals_dm_when_rewards_are_perfectly_predicted(log, data) -> None:
    reward, p_log, p_target, mask = log
    q_target = data.draw(arrays(np.float64, reward.shape, elements=st.floats(-1, 2))) * mask
    batch = EvalBatch(reward, p_log, p_target, mask, q_hat_logged=reward.copy(), q_hat_target=q_target)
    dm = DirectMethod().estimate(batch).value
    assert DoublyRobust().estimate(batch).value == pytest.approx(dm, abs=1e-9)
    assert SelfNormalizedDoublyRobust().estimate(batch).value == pytest.approx(dm, abs=1e-9)


@settings(max_examples=50)
@given(logs())
def test_every_interval_contains_its_estimate(log) -> None:
    reward, p_log, p_target, mask = log
    batch = EvalBatch(reward, p_log, p_target, mask, reward * 0.5, reward * 0.5)
    for estimator in ALL_ESTIMATORS:
        result = estimator.estimate(batch)
        assert result.low <= result.value + 1e-12
        assert result.value <= result.high + 1e-12
