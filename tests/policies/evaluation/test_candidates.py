"""Candidates give the probabilities serving would have given, slot by slot."""

from __future__ import annotations

import numpy as np
import pytest

from policies.base import Action, LoggedEvent, Ranking, SlotChoice
from policies.deciding.sampling import choose
from policies.evaluation.candidates import Fixed, MostPopular, Progressive, parse_candidate, uniform
from policies.evaluation.dataset import LoggedDecision, logged_conditionals
from scripts.devtools.synthetic import SyntheticProblem, uniform_log

ACTIONS = (Action("a"), Action("b"), Action("c"), Action("d"))


def decision(chosen: tuple[str, ...], rewards: tuple[float, ...], excluded: frozenset[str] = frozenset()):
    choices = tuple(SlotChoice(k, a, 0.5) for k, a in enumerate(chosen))
    event = LoggedEvent("e", 0.0, "v1", {}, ACTIONS, excluded, choices, (), ())
    return LoggedDecision(event, rewards)


@pytest.mark.parametrize("seed", range(20))
def test_logged_conditionals_reproduce_the_samplers_propensities(seed) -> None:
    rng = np.random.default_rng(seed)
    ranking = Ranking(tuple(a.id for a in ACTIONS), rng.dirichlet(np.ones(4)))
    choices = choose(ranking, 3, seed=seed)
    event = LoggedEvent("e", 0.0, "v1", {}, ACTIONS, frozenset(), choices, (), ())
    rows = logged_conditionals(ranking.probabilities, LoggedDecision(event, (0.0,) * len(choices)))
    assert len(choices) == 3  # every action has a positive probability: the loop below checks 3 slots
    for row, choice in zip(rows, choices, strict=True):
        assert row[ranking.action_ids.index(choice.action_id)] == pytest.approx(choice.probability)
        assert row.sum() == pytest.approx(1.0)


def test_a_policy_with_no_probability_left_shows_nothing_more() -> None:
    rows = logged_conditionals(np.array([1.0, 0.0, 0.0, 0.0]), decision(("a", "b"), (0.0, 0.0)))
    assert rows[0].tolist() == [1.0, 0.0, 0.0, 0.0]
    assert rows[1].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_most_popular_starts_uniform_then_follows_positive_rewards() -> None:
    policy = MostPopular()
    first = policy.slot_distributions(decision(("a",), (0.0,)))
    assert first[0].tolist() == [0.25] * 4
    policy.observe(decision(("c",), (1.0,)))
    policy.observe(decision(("b",), (-0.1,)))  # a dismissal is not popularity
    rows = policy.slot_distributions(decision(("c", "a"), (0.0, 0.0)))
    assert rows[0].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert rows[1].tolist() == pytest.approx([1 / 3, 1 / 3, 0.0, 1 / 3])  # c shown above: ties


def test_most_popular_never_offers_an_excluded_action() -> None:
    policy = MostPopular()
    policy.observe(decision(("c",), (1.0,)))
    rows = policy.slot_distributions(decision(("a",), (0.0,), excluded=frozenset({"c"})))
    assert rows[0][2] == 0.0
    assert rows[0].sum() == pytest.approx(1.0)


def test_progressive_scores_each_decision_before_learning_from_it() -> None:
    problem = SyntheticProblem(seed=1)
    log = uniform_log(problem, 400, seed=1)
    candidate = Progressive("vw", "--cb_explore_adf --epsilon 0.1 -q ::")
    untrained = candidate.slot_distributions(log[0])[0]
    # before anything is learned every action ties, and VW spreads ties evenly
    assert untrained == pytest.approx(np.full(6, 1 / 6))
    for item in log:
        candidate.slot_distributions(item)
        candidate.observe(item)
    trained = candidate.slot_distributions(log[0])[0]
    assert trained.max() >= 0.9  # epsilon 0.1 over 6 offers: greedy on one


def test_fixed_policies_cover_only_decisions_after_they_existed() -> None:
    policy = Fixed("model:v2", uniform().policy, available_from=10.0)
    early = decision(("a",), (0.0,))
    late = LoggedDecision(
        LoggedEvent("late", 11.0, "v2", {}, ACTIONS, frozenset(), early.event.choices, (), ()), (0.0,)
    )
    assert not policy.covers(early)
    assert policy.covers(late)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("random", "unknown policy"),
        ("vw:--epsilon 0.1", "--cb_explore_adf"),
        ("vw:--cb_explore_adf -f model.vw", "-f"),
        ("model:v9", "no model registry"),
    ],
)
def test_bad_policy_specs_are_refused_with_a_reason(spec, message) -> None:
    with pytest.raises(ValueError, match=message):
        parse_candidate(spec)
