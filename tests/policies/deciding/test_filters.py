"""A request's filters are "given" exactly when one of them differs from its default."""

from __future__ import annotations

from dataclasses import fields

import pytest

from policies.deciding.rules import Filters

GIVEN = {
    "include_categories": frozenset({"tripod"}),
    "exclude_categories": frozenset({"bag"}),
    "include_skus": frozenset({"a"}),
    "exclude_skus": frozenset({"b"}),
    "include_tags": frozenset({"eco"}),
    "exclude_tags": frozenset({"sale"}),
    "include_families": frozenset({"photo"}),
    "exclude_families": frozenset({"audio"}),
    "min_price": 0.0,  # a bound of 0 is still a bound
    "max_price": 10.0,
    "in_stock": True,
    "max_per_category": 1,
}


def test_every_field_is_covered() -> None:
    assert set(GIVEN) == {f.name for f in fields(Filters)}


@pytest.mark.parametrize("name", sorted(GIVEN))
def test_any_one_filter_makes_them_given(name: str) -> None:
    assert Filters(**{name: GIVEN[name]})
    assert Filters(**{name: GIVEN[name]}) != Filters()


def test_no_filter_is_none_given() -> None:
    assert not Filters()
