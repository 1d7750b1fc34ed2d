"""Business rules and per-request filters: which candidates a decision may show.

The served probabilities stay exactly reproducible from the log: a removed candidate
(a filter, a rule, a campaign at its cap) joins the decision's logged `excluded` set, a
pinned campaign restricts the first slot to itself (a per-slot exclusion, logged), the
diversity cap bans, slot by slot inside the sampler, the categories already shown as
often as allowed (policies/deciding/sampling.py), and promotions re-weight and mix in
the open, their exact mixture logged (policies/deciding/promotions.py). The trace names
the rule behind every removal and boost, for the log and the event inspector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from policies.deciding.promotions import Boost, Campaign, Tally, Target, required_rate

__all__ = ["Attributes", "Filters", "OperatorRules", "Pin", "Shaped", "attributes_from_features", "shape"]


@dataclass(frozen=True, slots=True)
class Attributes:
    """What rules know about a candidate (from the catalog, else from its features)."""

    category: str | None = None
    tags: frozenset[str] = frozenset()
    price: float | None = None
    margin: float | None = None
    family: str | None = None
    stock: int | None = None  # units on hand; None: not known (fails `in_stock`)


@dataclass(frozen=True, slots=True)
class Filters:
    """A request's own filters (include lists keep only what they name)."""

    include_categories: frozenset[str] = frozenset()
    exclude_categories: frozenset[str] = frozenset()
    include_skus: frozenset[str] = frozenset()
    exclude_skus: frozenset[str] = frozenset()
    include_tags: frozenset[str] = frozenset()
    exclude_tags: frozenset[str] = frozenset()
    include_families: frozenset[str] = frozenset()
    exclude_families: frozenset[str] = frozenset()
    min_price: float | None = None
    max_price: float | None = None
    in_stock: bool = False  # only candidates known to have stock
    max_per_category: int | None = None

    def __bool__(self) -> bool:
        return self != Filters()

    def logged(self) -> dict[str, Any]:
        """The filters as the decision logs them (only those given), for the trace and audits."""
        found: dict[str, Any] = {}
        for name in _FILTER_FIELDS:
            value = getattr(self, name)
            if isinstance(value, frozenset):
                if value:
                    found[name] = sorted(value)
            elif value is not None and value is not False:
                found[name] = value
        return found


_FILTER_FIELDS = tuple(f.name for f in fields(Filters))


@dataclass(frozen=True, slots=True)
class Pin:
    """A campaign: when `sku` is a candidate (and allowed), it takes the first slot."""

    name: str
    sku: str


@dataclass(frozen=True, slots=True)
class OperatorRules:
    """The operator's standing rules, live configuration kept in the log."""

    pins: tuple[Pin, ...] = ()
    margin_floor: float | None = None  # a candidate whose known margin is below is removed
    never_categories: frozenset[str] = frozenset()
    max_per_category: int | None = None
    boosts: tuple[Boost, ...] = ()
    campaigns: tuple[Campaign, ...] = ()

    def __bool__(self) -> bool:
        return self != OperatorRules()


@dataclass(frozen=True, slots=True)
class Shaped:
    """What the rules did to one decision."""

    removed: Mapping[str, str]  # action id -> the rule that removed it
    pinned: tuple[str, str] | None = None  # (action id, rule) held in the first slot
    max_per_category: int | None = None
    category_of: Mapping[str, str] = field(default_factory=dict)  # for the diversity cap
    filters: Mapping[str, Any] = field(default_factory=dict)  # the request's, as given (Filters.logged)
    boosts: Mapping[str, float] = field(default_factory=dict)  # allowed candidate -> factor
    eligible: tuple[Campaign, ...] = ()  # campaigns one of whose products is an allowed candidate
    targets: tuple[Target, ...] = ()  # of those, the ones with a share to mix in

    def trace(self) -> dict[str, Any]:
        """The log's record of it (decisions.rules), also shown to the event inspector."""
        found: dict[str, Any] = {"removed": dict(sorted(self.removed.items()))}
        if self.pinned is not None:
            found["pinned"] = {"action_id": self.pinned[0], "rule": self.pinned[1]}
        if self.max_per_category is not None:
            found["max_per_category"] = self.max_per_category
        if self.filters:
            found["filters"] = dict(self.filters)
        if self.eligible:
            found["campaigns"] = sorted(c.name for c in self.eligible)
        return found


def shape(
    action_ids: Sequence[str],
    attributes: Mapping[str, Attributes],
    filters: Filters,
    rules: OperatorRules,
    tallies: Mapping[str, Tally] | None = None,
) -> Shaped:
    """Apply the operator's rules, then the request's filters, then the campaigns' caps
    (by `tallies`, each campaign's current period), naming the first rule to remove each."""
    removed: dict[str, str] = {}
    for action_id in action_ids:
        reason = _removal(action_id, attributes.get(action_id, Attributes()), filters, rules)
        if reason is not None:
            removed[action_id] = reason
    tallies = tallies or {}
    eligible, targets = [], []
    for campaign in rules.campaigns:
        tally = tallies.get(campaign.name, Tally())
        allowed = frozenset(a for a in action_ids if a in campaign.members and a not in removed)
        if not allowed:
            continue
        if campaign.max_impressions is not None and tally.shown >= campaign.max_impressions:
            removed.update(dict.fromkeys(allowed, f"{campaign.rule}.cap"))
            continue
        eligible.append(campaign)
        if campaign.min_share is not None:
            targets.append(Target(campaign.rule, allowed, required_rate(campaign.min_share, tally)))
    boosts = {b.sku: b.factor for b in rules.boosts if b.sku in action_ids and b.sku not in removed}
    pinned = next(
        ((p.sku, f"rules.pins.{p.name}") for p in rules.pins if p.sku in action_ids and p.sku not in removed),
        None,
    )
    caps = [c for c in (filters.max_per_category, rules.max_per_category) if c is not None]
    category_of = {
        a: attributes[a].category for a in action_ids if a in attributes and attributes[a].category
    }
    cap = min(caps) if caps else None
    logged = filters.logged() if filters else {}
    return Shaped(
        removed,
        pinned,
        cap,
        category_of,
        logged,
        boosts,
        tuple(eligible),
        tuple(targets),  # type: ignore[arg-type]
    )


def _removal(action_id: str, found: Attributes, filters: Filters, rules: OperatorRules) -> str | None:
    if found.category is not None and found.category in rules.never_categories:
        return "rules.never_categories"
    if rules.margin_floor is not None and found.margin is not None and found.margin < rules.margin_floor:
        return "rules.margin_floor"
    checks = (
        ("filters.include_skus", bool(filters.include_skus) and action_id not in filters.include_skus),
        ("filters.exclude_skus", action_id in filters.exclude_skus),
        (
            "filters.include_categories",
            bool(filters.include_categories) and found.category not in filters.include_categories,
        ),
        (
            "filters.exclude_categories",
            found.category is not None and found.category in filters.exclude_categories,
        ),
        ("filters.include_tags", bool(filters.include_tags) and not found.tags & filters.include_tags),
        ("filters.exclude_tags", bool(found.tags & filters.exclude_tags)),
        (
            "filters.include_families",
            bool(filters.include_families) and found.family not in filters.include_families,
        ),
        (
            "filters.exclude_families",
            found.family is not None and found.family in filters.exclude_families,
        ),
        # an unknown price cannot be shown to be inside the bounds the request asked for
        ("filters.min_price", filters.min_price is not None and (found.price or 0.0) < filters.min_price),
        (
            "filters.max_price",
            filters.max_price is not None and (found.price is None or found.price > filters.max_price),
        ),
        # likewise an unknown stock: "in stock only" keeps what is known to be
        ("filters.in_stock", filters.in_stock and (found.stock is None or found.stock <= 0)),
    )
    return next((name for name, hit in checks if hit), None)


def attributes_from_features(features: Mapping[str, Any]) -> Attributes:
    """Read category, family, tags, price, margin and stock from an action's features (any namespace).

    /v1/rank candidates unknown to the catalog describe themselves, e.g.
    ``{"offer": {"category": "storage", "family": "photo", "price": 19.0, "stock": 3}}``;
    ``in_stock`` (true/false) stands for a stock of 1/0 when no ``stock`` is given.
    """
    # Plain dict lookups: this runs for every candidate of every ruled request.
    found: dict[str, Any] = {}
    for value in features.values():
        if isinstance(value, dict):
            for key in _KEYS:
                if key not in found and key in value:
                    found[key] = value[key]
    for key in _KEYS:
        if key not in found and key in features and not isinstance(features[key], dict):
            found[key] = features[key]
    category = found.get("category", found.get("kind"))
    family = found.get("family")
    tags = found.get("tags", ())
    return Attributes(
        category=category if isinstance(category, str) else None,
        tags=frozenset(t for t in tags if isinstance(t, str))
        if isinstance(tags, list | tuple)
        else frozenset(),
        price=_number(found.get("price")),
        margin=_number(found.get("margin")),
        family=family if isinstance(family, str) else None,
        stock=_stock(found.get("stock"), found.get("in_stock")),
    )


_KEYS = ("category", "kind", "tags", "price", "margin", "family", "stock", "in_stock")


def _stock(stock: Any, in_stock: Any) -> int | None:
    units = _number(stock)
    if units is not None:
        return int(units) if units >= 0 else 0
    return int(in_stock) if isinstance(in_stock, bool) else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
