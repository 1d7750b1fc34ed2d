from __future__ import annotations

import pytest

from policies.base import Feedback
from policies.learning.rewards import RewardRules


def fb(signal: str, action_id: str = "a", value: float | None = None, at: float = 0.0) -> Feedback:
    return Feedback(signal, action_id, value, at)


RULES = RewardRules(purchase_value_scale=0.01)


@pytest.mark.parametrize(
    ("feedback", "expected"),
    [
        ([], 0.0),
        ([fb("click")], 1.0),
        ([fb("dismiss")], -0.1),
        ([fb("purchase", value=50.0)], 1.5),
        ([fb("click"), fb("purchase", value=20.0)], 1.2),  # max, not the sum
        ([fb("dismiss"), fb("click")], 1.0),
        ([fb("purchase", value=1e6)], 2.0),  # clipped to max_reward
        ([fb("click", action_id="other")], 0.0),  # another offer's feedback
        ([fb("click"), fb("reward", value=0.3, at=1.0)], 0.3),  # raw reward overrides
        ([fb("reward", value=0.3, at=1.0), fb("reward", value=0.7, at=2.0)], 0.7),  # latest raw wins
    ],
)
def test_reward_for_feedback(feedback: list[Feedback], expected: float) -> None:
    assert RULES.reward_for(feedback, "a") == pytest.approx(expected)


def test_sum_aggregation_adds_signals() -> None:
    rules = RewardRules(aggregation="sum", max_reward=10)
    assert rules.reward_for([fb("click"), fb("add_to_cart")], "a") == 2.0


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [("max", 0.7), ("sum", 1.0), ("earliest", 0.3)],
)
def test_raw_rewards_combine_by_aggregation(aggregation: str, expected: float) -> None:
    rules = RewardRules(aggregation=aggregation)  # type: ignore[arg-type]
    # given out of arrival order: combining follows received_at, not list order
    raw = [fb("reward", value=0.7, at=2.0), fb("reward", value=0.3, at=1.0)]
    assert rules.reward_for(raw, "a") == pytest.approx(expected)


def test_earliest_aggregation_keeps_the_first_signal() -> None:
    rules = RewardRules(aggregation="earliest", purchase_value_scale=0.0)
    assert rules.reward_for([fb("purchase", at=2.0), fb("dismiss", at=1.0)], "a") == pytest.approx(-0.1)


def test_default_reward_is_configurable() -> None:
    assert RewardRules(default_reward=-0.05).reward_for([], "a") == -0.05


def test_unknown_signal_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown signal"):
        RULES.signal_reward("like", None)
