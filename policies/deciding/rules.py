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

from collections.abc import Callable, Mapping, Sequence
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
    unavailable: frozenset[str] = frozenset(),
) -> Shaped:
    """Apply the operator's rules, then the request's filters, then the campaigns' caps
    (by `tallies`, each campaign's current period), naming the first rule to remove each.

    `unavailable` holds what the request itself excluded: never pinned, boosted, mixed in
    or counted as making a campaign eligible.
    """
    removed: dict[str, str] = {}
    checks = _checks(filters, rules)
    if checks:
        unknown = Attributes()
        for action_id in action_ids:
            found = attributes.get(action_id, unknown)
            reason = next((name for name, hit in checks if hit(action_id, found)), None)
            if reason is not None:
                removed[action_id] = reason
    tallies = tallies or {}
    gone = removed.keys() | unavailable
    eligible, targets = [], []
    for campaign in rules.campaigns:
        tally = tallies.get(campaign.name, Tally())
        allowed = frozenset(a for a in action_ids if a in campaign.members and a not in gone)
        if not allowed:
            continue
        if campaign.max_impressions is not None and tally.shown >= campaign.max_impressions:
            removed.update(dict.fromkeys(allowed, f"{campaign.rule}.cap"))
            continue
        eligible.append(campaign)
        if campaign.min_share is not None:
            targets.append(Target(campaign.rule, allowed, required_rate(campaign.min_share, tally)))
    gone = removed.keys() | unavailable  # and what the caps removed
    boosts = {b.sku: b.factor for b in rules.boosts if b.sku in action_ids and b.sku not in gone}
    pinned = next(
        ((p.sku, f"rules.pins.{p.name}") for p in rules.pins if p.sku in action_ids and p.sku not in gone),
        None,
    )
    caps = [c for c in (filters.max_per_category, rules.max_per_category) if c is not None]
    category_of: dict[str, str] = {}
    for action_id in action_ids:
        category = attributes[action_id].category if action_id in attributes else None
        if category:
            category_of[action_id] = category
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
        tuple(targets),
    )


Check = tuple[str, Callable[[str, Attributes], bool]]  # (rule, removes this candidate?)


def _checks(filters: Filters, rules: OperatorRules) -> list[Check]:
    """The rules and filters in force, in the order they are named: only those given, so a
    request pays per candidate for what it asked (this runs on every ruled decision)."""
    f, checks = filters, []
    if rules.never_categories:
        never = rules.never_categories
        checks.append(("rules.never_categories", lambda a, x: x.category is not None and x.category in never))
    if rules.margin_floor is not None:
        floor = rules.margin_floor
        checks.append(("rules.margin_floor", lambda a, x: x.margin is not None and x.margin < floor))
    if f.include_skus:
        checks.append(("filters.include_skus", lambda a, x: a not in f.include_skus))
    if f.exclude_skus:
        checks.append(("filters.exclude_skus", lambda a, x: a in f.exclude_skus))
    if f.include_categories:
        checks.append(("filters.include_categories", lambda a, x: x.category not in f.include_categories))
    if f.exclude_categories:
        checks.append(
            (
                "filters.exclude_categories",
                lambda a, x: x.category is not None and x.category in f.exclude_categories,
            )
        )
    if f.include_tags:
        checks.append(("filters.include_tags", lambda a, x: not x.tags & f.include_tags))
    if f.exclude_tags:
        checks.append(("filters.exclude_tags", lambda a, x: bool(x.tags & f.exclude_tags)))
    if f.include_families:
        checks.append(("filters.include_families", lambda a, x: x.family not in f.include_families))
    if f.exclude_families:
        checks.append(
            ("filters.exclude_families", lambda a, x: x.family is not None and x.family in f.exclude_families)
        )
    # an unknown price cannot be shown to be inside the bounds the request asked for
    if f.min_price is not None:
        low = f.min_price
        checks.append(("filters.min_price", lambda a, x: (x.price or 0.0) < low))
    if f.max_price is not None:
        high = f.max_price
        checks.append(("filters.max_price", lambda a, x: x.price is None or x.price > high))
    if f.in_stock:  # likewise an unknown stock: "in stock only" keeps what is known to be
        checks.append(("filters.in_stock", lambda a, x: x.stock is None or x.stock <= 0))
    return checks


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
