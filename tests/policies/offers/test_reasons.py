"""Reasons name what prompted an offer; rules may use only the placeholders xsell fills in."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.offers.catalog import Product, Relation
from policies.offers.relations import RulesError, read_rules
from policies.offers.shortlist import Candidate

BAG = Product("bag-1", "Kestrel bag", "camera_bag", 49.0, "photo", stock=3)


def reason(template: str, trigger: str) -> str:
    relation = Relation("camera", "camera_bag", "category", "rule", 0.8, template)
    return Candidate(BAG, relation, "Sable One camera", trigger).reason  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("trigger", "expected"),
    [
        ("cart", "Goes with the Sable One camera in your cart"),
        ("viewed", "Goes with the Sable One camera you viewed"),
        ("bought", "Goes with the Sable One camera you bought before"),
    ],
)
def test_where_says_what_triggered_the_offer(trigger: str, expected: str) -> None:
    assert reason("Goes with the {anchor} {where}", trigger) == expected
    # rules written before {where} existed say "in your cart": rewritten, never wrong
    assert reason("Goes with the {anchor} in your cart", trigger) == expected


@pytest.mark.parametrize("template", ["For {anchor} {colour}", "For {anchor.__class__}", "For {anchor} {"])
def test_rules_refuse_placeholders_xsell_does_not_fill(tmp_path: Path, template: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(f'[[rule]]\nanchor = "camera"\ncomplements = ["tripod"]\nreason = "{template}"\n')
    with pytest.raises(RulesError, match="reason"):
        read_rules(path)
