"""The tests that operator rules and request filters run on candidates, built once per set.

`shape` (policies/deciding/rules.py) runs on every ruled decision, so what it asks of
the candidates is worked out ahead: an operator rule set is replaced whole when the
rules change (its tests are built with it), and a request's filters repeat from one
request to the next (a page asks the same each time), so their tests and their logged
form are kept per distinct filter set. Each test takes all the candidates at once and
returns those it removes: set operations for skus, one comprehension for attributes,
no Python call per candidate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rules.py imports this module
    from policies.deciding.rules import Attributes, Filters, OperatorRules

__all__ = ["Check", "Compiled", "filter_checks", "filter_key", "rule_checks"]

# (rule, the candidates it removes): given the candidate ids and (id, attributes) pairs
Check = tuple[str, Callable[[Sequence[str], Sequence[tuple[str, "Attributes"]]], Iterable[str]]]
Compiled = tuple[tuple[Check, ...], Mapping[str, Any]]  # a filter set's tests, and Filters.logged()

_CACHE_LIMIT = 256  # distinct filter sets a worker keeps; past it, it starts again empty
_compiled: dict[tuple[Filters, str, str], Compiled] = {}


def rule_checks(rules: OperatorRules) -> tuple[Check, ...]:
    """The operator's standing removals, in the order they are named (never first)."""
    checks: list[Check] = []
    if rules.never_categories:
        never = rules.never_categories
        checks.append(
            (
                "rules.never_categories",
                lambda ids, xs: [a for a, x in xs if x.category is not None and x.category in never],
            )
        )
    if rules.margin_floor is not None:
        floor = rules.margin_floor
        checks.append(
            (
                "rules.margin_floor",
                lambda ids, xs: [a for a, x in xs if x.margin is not None and x.margin < floor],
            )
        )
    return tuple(checks)


def filter_key(filters: Filters) -> tuple[Filters, str, str]:
    """What tells one filter set from another, for keeping what is built from it.

    The bounds' reprs too: 0.0 == -0.0, but the log keeps a bound as the request gave it.
    """
    return (filters, repr(filters.min_price), repr(filters.max_price))


def filter_checks(filters: Filters) -> Compiled:
    """A request's filter tests (only those it gave) and its logged filters, built once per filter set."""
    key = filter_key(filters)
    found = _compiled.get(key)
    if found is None:
        if len(_compiled) >= _CACHE_LIMIT:
            _compiled.clear()
        found = _compiled[key] = (_filter_checks(filters), MappingProxyType(filters.logged()))
    return found


def _filter_checks(f: Filters) -> tuple[Check, ...]:
    """The tests in the order `Filters` names them."""
    checks: list[Check] = []
    if f.include_skus:
        keep = f.include_skus
        checks.append(("filters.include_skus", lambda ids, xs: [a for a in ids if a not in keep]))
    if f.exclude_skus:
        drop = f.exclude_skus
        checks.append(("filters.exclude_skus", lambda ids, xs: drop.intersection(ids)))
    if f.include_categories:
        categories = f.include_categories
        checks.append(
            ("filters.include_categories", lambda ids, xs: [a for a, x in xs if x.category not in categories])
        )
    if f.exclude_categories:
        no_categories = f.exclude_categories
        checks.append(
            (
                "filters.exclude_categories",
                lambda ids, xs: [a for a, x in xs if x.category is not None and x.category in no_categories],
            )
        )
    if f.include_tags:
        tags = f.include_tags
        checks.append(("filters.include_tags", lambda ids, xs: [a for a, x in xs if x.tags.isdisjoint(tags)]))
    if f.exclude_tags:
        no_tags = f.exclude_tags
        checks.append(
            ("filters.exclude_tags", lambda ids, xs: [a for a, x in xs if not x.tags.isdisjoint(no_tags)])
        )
    if f.include_families:
        families = f.include_families
        checks.append(
            ("filters.include_families", lambda ids, xs: [a for a, x in xs if x.family not in families])
        )
    if f.exclude_families:
        no_families = f.exclude_families
        checks.append(
            (
                "filters.exclude_families",
                lambda ids, xs: [a for a, x in xs if x.family is not None and x.family in no_families],
            )
        )
    # an unknown price cannot be shown to be inside the bounds the request asked for
    if f.min_price is not None:
        low = f.min_price
        checks.append(("filters.min_price", lambda ids, xs: [a for a, x in xs if (x.price or 0.0) < low]))
    if f.max_price is not None:
        high = f.max_price
        checks.append(
            ("filters.max_price", lambda ids, xs: [a for a, x in xs if x.price is None or x.price > high])
        )
    if f.in_stock:  # likewise an unknown stock: "in stock only" keeps what is known to be
        checks.append(
            ("filters.in_stock", lambda ids, xs: [a for a, x in xs if x.stock is None or x.stock <= 0])
        )
    return tuple(checks)
