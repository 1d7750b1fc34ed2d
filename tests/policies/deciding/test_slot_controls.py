"""Per-slot exclusions reach the learner and the replay, not only the sampler."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from policies.base import Action, LoggedEvent, Ranking, SlotChoice
from policies.deciding.sampling import choose, first_slot
from policies.deciding.vw import VWPolicy
from policies.evaluation.candidates import Baseline, MostPopular
from policies.evaluation.dataset import LoggedDecision, logged_conditionals

ACTIONS = tuple(Action(i, {"offer": {"kind": i}}) for i in ("a", "b", "c", "d"))
CONTEXT = {"user": {"device": "mobile"}}
# The service's default arguments: SquareCB's distribution depends on every candidate
# in an example, so one that could not have been shown changes what is learned.
VW_ARGS = "--cb_explore_adf --squarecb -q :: --cb_type mtr"


def event(excluded: frozenset[str], slot_excluded: tuple[frozenset[str], ...], chosen: str) -> LoggedEvent:
    return LoggedEvent(
        "e", 0.0, "v1", CONTEXT, ACTIONS, excluded, (SlotChoice(0, chosen, 0.5),), (), (), slot_excluded
    )


def test_a_slot_is_learned_over_only_the_candidates_it_could_show() -> None:
    banned_in_slot = VWPolicy(VW_ARGS)
    banned_outright = VWPolicy(VW_ARGS)
    for k in range(30):
        chosen = "ab"[k % 2]
        banned_in_slot.learn(event(frozenset(), (frozenset({"c", "d"}),), chosen), [float(k % 3 == 0)])
        banned_outright.learn(event(frozenset({"c", "d"}), (), chosen), [float(k % 3 == 0)])
    for policy in (banned_in_slot, banned_outright):
        assert policy.events_learned == 30
    # the same examples were learned: every candidate ranks the same in both
    first = banned_in_slot.rank(CONTEXT, ACTIONS, frozenset()).probabilities
    second = banned_outright.rank(CONTEXT, ACTIONS, frozenset()).probabilities
    assert first.tolist() == second.tolist()
    untrained = VWPolicy(VW_ARGS).rank(CONTEXT, ACTIONS, frozenset()).probabilities
    assert first.tolist() != untrained.tolist()  # it did learn something


@pytest.mark.parametrize("seed", range(30))
def test_replayed_conditionals_equal_the_sampled_propensities_under_slot_exclusions(seed: int) -> None:
    rng = np.random.default_rng(seed)
    ranking = Ranking(tuple(a.id for a in ACTIONS), rng.dirichlet(np.ones(4)))
    banned = tuple(
        frozenset(rng.choice(["a", "b", "c", "d"], size=int(rng.integers(0, 3)), replace=False))
        for _ in range(3)
    )
    choices = choose(ranking, 3, seed, slot_excluded=banned)
    assert choices
    logged = LoggedEvent(
        "e",
        0.0,
        "v1",
        {},
        ACTIONS,
        frozenset(),
        choices,
        tuple(first_slot(ranking, banned).probabilities),
        (),
        banned,
    )
    rows = logged_conditionals(ranking.probabilities, LoggedDecision(logged, (0.0,) * len(choices)))
    assert [row[ranking.action_ids.index(c.action_id)] for row, c in zip(rows, choices, strict=True)] == [
        c.probability for c in choices
    ]
    assert rows[0].tolist() == list(logged.probabilities)
    for row, banned_here in zip(rows, banned, strict=False):
        assert all(row[ranking.action_ids.index(a)] == 0 for a in banned_here)


def test_most_popular_and_baseline_respect_slot_exclusions() -> None:
    popular = MostPopular()
    popular.observe(LoggedDecision(event(frozenset(), (), "c"), (1.0,)))
    choices = (SlotChoice(0, "a", 1.0), SlotChoice(1, "b", 1.0))
    logged = dataclasses.replace(
        event(frozenset(), (), "a"),
        choices=choices,
        slot_excluded=(frozenset({"c"}), frozenset({"c", "d"})),
        baseline=("c", None),
    )
    decision = LoggedDecision(logged, (0.0, 0.0))
    rows = popular.slot_distributions(decision)
    assert [row[2] for row in rows] == [0.0, 0.0]  # c is popular but banned in both slots
    baseline = Baseline().slot_distributions(decision)
    # c is banned in slot 1: the first it may show; slot 2: a shown, c and d banned
    assert [row.tolist() for row in baseline] == [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0]]
