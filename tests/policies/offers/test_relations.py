"""Mining co-purchases and reading complement rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.offers.catalog import Product
from policies.offers.relations import MiningThresholds, RulesError, mine_co_purchases, read_rules

PRODUCTS = {
    sku: Product(sku, sku.title(), category, 10.0)
    for sku, category in [
        ("cam1", "camera"),
        ("cam2", "camera"),
        ("sd1", "memory_card"),
        ("bag1", "camera_bag"),
        ("mug", "kitchen"),
    ]
}


def test_support_confidence_and_lift_are_the_textbook_ones() -> None:
    # 10 orders: cam1+sd1 in 4, cam1 alone in 1, sd1 alone in 1, mug alone in 4
    orders = [["cam1", "sd1"]] * 4 + [["cam1"], ["sd1"]] + [["mug"]] * 4
    found = {
        (r.anchor, r.complement): r
        for r in mine_co_purchases(orders, PRODUCTS, MiningThresholds(0.1, 0.1, 1.0, 2))
        if r.level == "sku"
    }
    pair = found[("cam1", "sd1")]
    assert pair.support == pytest.approx(4 / 10)
    assert pair.confidence == pytest.approx(4 / 5)
    assert pair.lift == pytest.approx((4 / 5) / (5 / 10))
    assert pair.source == "co-purchase" and pair.strength == pytest.approx(0.8)


def test_pairs_below_any_threshold_are_dropped_and_categories_are_rolled_up() -> None:
    orders = [["cam1", "sd1"], ["cam2", "sd1"], ["cam1", "bag1"]] + [["mug"]] * 7
    found = mine_co_purchases(orders, PRODUCTS, MiningThresholds(0.1, 0.1, 1.0, 2))
    sku_pairs = {(r.anchor, r.complement) for r in found if r.level == "sku"}
    category_pairs = {(r.anchor, r.complement) for r in found if r.level == "category"}
    assert ("cam1", "sd1") not in sku_pairs  # one order only
    assert ("camera", "memory_card") in category_pairs  # two orders across camera models
    assert ("camera", "camera_bag") not in category_pairs
    strict = mine_co_purchases(orders, PRODUCTS, MiningThresholds(0.1, 0.1, 10.0, 2))
    assert strict == []  # nothing has a lift of 10


def test_unknown_skus_in_orders_are_ignored() -> None:
    assert mine_co_purchases([["ghost", "cam1"]] * 5, PRODUCTS, MiningThresholds()) == []


def test_rules_file_becomes_category_relations(tmp_path: Path) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(
        '[[rule]]\nanchor = "camera"\ncomplements = ["memory_card", "tripod"]\n'
        'reason = "Goes with the {anchor} in your cart"\nstrength = 0.9\n'
    )
    rules = read_rules(path)
    assert [(r.anchor, r.complement, r.source, r.strength) for r in rules] == [
        ("camera", "memory_card", "rule", 0.9),
        ("camera", "tripod", "rule", 0.9),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[rule]]\ncomplements = ["x"]\n', "needs an anchor"),
        ('[[rule]]\nanchor = "a"\ncomplements = []\n', "list of complement"),
        ('[[rule]]\nanchor = "a"\ncomplements = ["x"]\nstrength = 2\n', "strength"),
        ('[[rule]]\nanchor = "a"\ncomplements = ["x"]\nreason = "Buy it"\n', "must mention"),
        ("[[rule]\n", "rules.toml"),
    ],
)
def test_bad_rules_are_refused_naming_the_rule(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "rules.toml"
    path.write_text(text)
    with pytest.raises(RulesError, match=message):
        read_rules(path)
