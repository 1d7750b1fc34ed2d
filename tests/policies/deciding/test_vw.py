from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from policies.base import Action, LoggedEvent, ModelFormatError, SlotChoice
from policies.deciding.features import multiline_example
from policies.deciding.vw import VWPolicy, card_path, check_vw_args
from scripts.devtools.synthetic import SyntheticProblem, uniform_log

ACTIONS = (Action("a"), Action("b"), Action("c"), Action("d"))


@pytest.mark.parametrize(
    "args",
    ["--cb_adf", "--cb_explore_adf -f out.vw", "--cb_explore_adf -i in.vw", "--cb_explore_adf --data x"],
)
def test_vw_args_that_touch_files_or_are_not_cb_explore_adf_are_refused(args: str) -> None:
    with pytest.raises(ValueError):
        check_vw_args(args)


def test_load_refuses_a_file_that_does_not_match_its_checksum(tmp_path: Path) -> None:
    path = tmp_path / "m.vw"
    VWPolicy("--cb_explore_adf --epsilon 0.1").save(path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFormatError, match="checksum"):
        VWPolicy.load(path)


def test_load_refuses_a_model_without_its_card(tmp_path: Path) -> None:
    path = tmp_path / "m.vw"
    VWPolicy("--cb_explore_adf --epsilon 0.1").save(path)
    card_path(path).unlink()
    with pytest.raises(ModelFormatError, match="card"):
        VWPolicy.load(path)


def test_load_refuses_a_truncated_model_even_with_a_matching_card(tmp_path: Path) -> None:
    path = tmp_path / "m.vw"
    VWPolicy("--cb_explore_adf --epsilon 0.1").save(path)
    path.write_bytes(path.read_bytes()[:10])
    with pytest.raises(ModelFormatError):
        VWPolicy.load(path)


def test_multi_slot_event_teaches_each_slot_among_the_remaining_actions() -> None:
    policy = VWPolicy("--cb_explore_adf --epsilon 0.0 -q ::")
    context = {"u": {"x": "1"}}
    for i in range(50):
        # slot 1 chose "a" (no reward), slot 2 chose "c" (rewarded) from the other three
        event = LoggedEvent(
            f"e{i}",
            0.0,
            "v",
            context,
            ACTIONS,
            frozenset(),
            (SlotChoice(0, "a", 0.25), SlotChoice(1, "c", 1 / 3)),
            (0.25,) * 4,
            (),
        )
        policy.learn(event, [0.0, 1.0])
    probabilities = policy.rank(context, ACTIONS, frozenset()).probabilities
    assert int(np.argmax(probabilities)) == 2
    assert policy.events_learned == 50


def test_ranking_from_parsed_actions_equals_ranking_from_text() -> None:
    problem = SyntheticProblem(seed=9)
    policy = VWPolicy("--cb_explore_adf --squarecb -q :: --cb_type mtr")
    for item in uniform_log(problem, 400, seed=9):
        policy.learn(item.event, item.rewards)
    extra = (*problem.actions, Action("new-offer", {"offer": {"kind": "audio"}}))
    for repeat in range(20):  # the cached examples are reused; nothing may drift
        for item in uniform_log(problem, 10, seed=100 + repeat):
            context = item.event.context
            ranked = policy.rank(context, extra, frozenset({"case"})).probabilities
            offered = [a for a in extra if a.id != "case"]
            expected = policy._workspace.predict(multiline_example(context, offered))
            assert ranked[[a.id != "case" for a in extra]].tolist() == pytest.approx(list(expected), abs=1e-7)
