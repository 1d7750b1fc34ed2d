from __future__ import annotations

import pytest

from policies.base import Action
from policies.deciding.features import action_line, cb_label, escape, multiline_example, shared_line


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain", "plain"),
        ("two words", "two_words"),
        ("a|b:c", "a_b_c"),
        ("tab\there", "tab_here"),
        ("", "_"),
    ],
)
def test_escape_replaces_characters_vw_reserves(raw: str, expected: str) -> None:
    assert escape(raw) == expected


def test_shared_line_renders_each_feature_kind() -> None:
    line = shared_line(
        {"user": {"device": "mobile", "age": 31, "vip": True, "churned": False, "tags": ["a b", "c"]}}
    )
    assert line.startswith("shared |user ")
    tokens = line.split()[2:]
    assert tokens == ["device=mobile", "age:31", "vip", "tags=a_b", "tags=c"]


def test_empty_context_is_still_a_shared_line() -> None:
    # A bare "shared" would be parsed by VW as an extra action.
    assert shared_line({}) == "shared |"


def test_action_line_carries_its_id_and_label() -> None:
    line = action_line(Action("sku 1", {"offer": {"price": 9.5}}), label=cb_label(1.0, 0.25))
    assert line.startswith("0:-1:0.25 ")
    assert "|_action id=sku_1" in line
    assert "|offer price:9.5" in line


def test_multiline_example_labels_only_the_chosen_action() -> None:
    actions = [Action("a"), Action("b"), Action("c")]
    lines = multiline_example({"u": {"x": 1}}, actions, {1: cb_label(0.0, 0.5)})
    assert len(lines) == 4
    assert [line.startswith("0:") for line in lines[1:]] == [False, True, False]


def test_non_finite_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        shared_line({"u": {"x": float("nan")}})
