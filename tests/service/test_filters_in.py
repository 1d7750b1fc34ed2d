"""A request's filters become the rules' Filters: one object per distinct set, as given."""

from __future__ import annotations

from dataclasses import fields

from policies.deciding.rules import Filters
from service.schemas import FiltersIn


def test_every_filter_field_reaches_the_rules() -> None:
    assert set(FiltersIn.model_fields) == {f.name for f in fields(Filters)}


def test_equal_sets_share_one_object_and_different_ones_do_not() -> None:
    given = {"exclude_skus": ["a", "b"], "max_price": 10.0}
    first = FiltersIn.model_validate(given).domain()
    assert FiltersIn.model_validate(given).domain() is first
    assert first == Filters(exclude_skus=frozenset({"a", "b"}), max_price=10.0)
    others = ({"exclude_skus": ["a"], "max_price": 10.0}, {"include_skus": ["a", "b"], "max_price": 10.0})
    for other in others:
        assert FiltersIn.model_validate(other).domain() != first
    assert FiltersIn.model_validate({"in_stock": True}).domain().in_stock


def test_a_bound_is_kept_as_given() -> None:
    negative = FiltersIn.model_validate({"min_price": -0.0}).domain()
    positive = FiltersIn.model_validate({"min_price": 0.0}).domain()
    assert negative is not positive
    assert (repr(negative.logged()["min_price"]), repr(positive.logged()["min_price"])) == ("-0.0", "0.0")
