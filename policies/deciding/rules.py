"""Business rules and per-request filters: which candidates a decision may show.

The served probabilities stay exactly reproducible from the log: a removed candidate
(a filter, a rule, a campaign at its cap) joins the decision's logged `excluded` set, a
pinned campaign restricts the first slot to itself (a per-slot exclusion, logged), the
diversity cap bans, slot by slot inside the sampler, the categories already shown as
often as allowed (policies/deciding/sampling.py), and promotions re-weight and mix in
the open, their exact mixture logged (policies/deciding/promotions.py, Shaped.boost_trace).
The trace names the rule behind every removal and boost, for the log and the event
inspector.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

from policies.deciding.promotions import Boost, Campaign, Tally, Target, boosted_trace, required_rate
from policies.deciding.rule_checks import Check, filter_checks, rule_checks

__all__ = [
    "Attributes",
    "Filters",
    "OperatorRules",
    "Pin",
    "Screened",
    "Shaped",
    "attributes_from_features",
    "screen",
    "settle",
    "shape",
]


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
        # Field by field, not `!= Filters()`: asked several times on every ruled request.
        return bool(
            self.include_categories
            or self.exclude_categories
            or self.include_skus
            or self.exclude_skus
            or self.include_tags
            or self.exclude_tags
            or self.include_families
            or self.exclude_families
            or self.in_stock
            or self.min_price is not None
            or self.max_price is not None
            or self.max_per_category is not None
        )

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
_NO_TALLY = Tally()


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
    # Worked out once per rule set (a change of rules replaces the whole object), for
    # `shape` on every ruled decision: the removals' tests, each boosted sku's factor (the
    # last one listed, as before), every campaign product, whether any rule is given.
    checks: tuple[Check, ...] = field(init=False, repr=False, compare=False)
    boost_of: Mapping[str, float] = field(init=False, repr=False, compare=False)
    campaign_skus: frozenset[str] = field(init=False, repr=False, compare=False)
    is_set: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "checks", rule_checks(self))
        object.__setattr__(self, "boost_of", {b.sku: b.factor for b in self.boosts})
        object.__setattr__(self, "campaign_skus", frozenset().union(*(c.members for c in self.campaigns)))
        is_set = bool(self.pins or self.never_categories or self.boosts or self.campaigns) or (
            self.margin_floor is not None or self.max_per_category is not None
        )
        object.__setattr__(self, "is_set", is_set)

    def __bool__(self) -> bool:
        return self.is_set


@dataclass(frozen=True, slots=True)
class Shaped:
    """What the rules did to one decision."""

    removed: Mapping[str, str]  # action id -> the rule that removed it
    pinned: tuple[str, str] | None = None  # (action id, rule) held in the first slot
    max_per_category: int | None = None
    category_of: Mapping[str, str] = field(default_factory=dict)  # for the diversity cap, when one applies
    filters: Mapping[str, Any] = field(default_factory=dict)  # the request's, as given (Filters.logged)
    boosts: Mapping[str, float] = field(default_factory=dict)  # allowed candidate -> factor
    eligible: tuple[Campaign, ...] = ()  # campaigns one of whose products is an allowed candidate
    targets: tuple[Target, ...] = ()  # of those, the ones with a share to mix in

    # The trace and the boosts' trace as screened (kept with the Screened), when no cap
    # removed anything: made once per candidate set instead of per decision. Never
    # mutated, nested values included: decisions share them.
    logged: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    logged_boosts: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    def trace(self) -> dict[str, Any]:
        """The log's record of it (decisions.rules), also shown to the event inspector.

        The rank path adds ``boosted`` (`boost_trace`) and ``mixed`` when it mixes them
        into what it serves: all a replay needs (policies.base.Mixing.from_trace).
        """
        if self.logged is not None:
            return dict(self.logged)
        return _trace(self.removed, self.pinned, self.max_per_category, self.filters, self.eligible)

    def boost_trace(self) -> dict[str, Any]:
        """``{"boosted": ...}`` for the boosts served, or {} without any."""
        if not self.boosts:
            return {}
        kept = self.logged_boosts
        return {"boosted": kept if kept is not None else boosted_trace(self.boosts)}


def _trace(
    removed: Mapping[str, str],
    pinned: tuple[str, str] | None,
    max_per_category: int | None,
    filters: Mapping[str, Any],
    eligible: Sequence[Campaign],
) -> dict[str, Any]:
    found: dict[str, Any] = {"removed": dict(sorted(removed.items()))}
    if pinned is not None:
        found["pinned"] = {"action_id": pinned[0], "rule": pinned[1]}
    if max_per_category is not None:
        found["max_per_category"] = max_per_category
    if filters:
        found["filters"] = dict(filters)
    if eligible:
        found["campaigns"] = sorted(c.name for c in eligible)
    return found


@dataclass(frozen=True, slots=True)
class Screened:
    """What the rules and a request's filters make of one candidate set before the
    campaigns' counts are read: the same for every request with the same candidates (and
    what is known of them), filters, exclusions and rules, so it may be kept and reused."""

    removed: Mapping[str, str]  # by the rules and filters
    candidates: frozenset[str]
    campaigns: tuple[tuple[Campaign, frozenset[str]], ...]  # each with its candidates still allowed
    boosts: Mapping[str, float]  # Shaped.boosts and .pinned, when no cap removes anything
    pinned: tuple[str, str] | None
    max_per_category: int | None
    category_of: Mapping[str, str]
    filters: Mapping[str, Any]
    logged: Mapping[str, Any]  # Shaped.trace when no cap removes anything
    logged_boosts: Mapping[str, Any]  # likewise Shaped.boost_trace's


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
    return settle(screen(action_ids, attributes, filters, rules, unavailable), rules, tallies, unavailable)


def screen(
    action_ids: Sequence[str],
    attributes: Mapping[str, Attributes],
    filters: Filters,
    rules: OperatorRules,
    unavailable: frozenset[str] = frozenset(),
) -> Screened:
    """`shape`'s part that the campaigns' counts do not change."""
    removed: dict[str, str] = {}
    checks, logged = filter_checks(filters) if filters else ((), {})
    if rules.checks or checks:
        unknown = Attributes()
        pairs = [(a, attributes.get(a, unknown)) for a in action_ids]
        for rule, removes in rules.checks + checks:  # in order: the first rule to remove one names it
            for action_id in removes(action_ids, pairs):
                removed.setdefault(action_id, rule)
    candidates = frozenset(action_ids)
    gone = unavailable.union(removed)
    campaigns = []
    if rules.campaigns and not candidates.isdisjoint(rules.campaign_skus):
        for campaign in rules.campaigns:
            allowed = campaign.members & candidates
            if allowed and gone:
                allowed -= gone
            if allowed:
                campaigns.append((campaign, allowed))
    caps = [c for c in (filters.max_per_category, rules.max_per_category) if c is not None]
    cap = min(caps) if caps else None
    category_of: dict[str, str] = {}
    if cap is not None:  # only the diversity cap reads candidates' categories
        for action_id in action_ids:
            category = attributes[action_id].category if action_id in attributes else None
            if category:
                category_of[action_id] = category
    boosts, pinned = _promoted(rules, candidates, gone)
    eligible = [c for c, _ in campaigns]
    return Screened(
        MappingProxyType(removed),
        candidates,
        tuple(campaigns),
        boosts,
        pinned,
        cap,
        MappingProxyType(category_of),
        logged,
        _trace(removed, pinned, cap, logged, eligible),
        boosted_trace(boosts),
    )


def settle(
    screened: Screened,
    rules: OperatorRules,
    tallies: Mapping[str, Tally] | None = None,
    unavailable: frozenset[str] = frozenset(),
) -> Shaped:
    """Finish `shape` with the campaigns' counts: their caps, and the rates their shares ask."""
    removed = screened.removed
    tallies = tallies or {}
    eligible, targets = [], []
    for campaign, allowed in screened.campaigns:
        tally = tallies.get(campaign.name, _NO_TALLY)
        if campaign.max_impressions is not None and tally.shown >= campaign.max_impressions:
            removed = {**removed, **dict.fromkeys(allowed, f"{campaign.rule}.cap")}
            continue
        eligible.append(campaign)
        if campaign.min_share is not None:
            targets.append(Target(campaign.rule, allowed, required_rate(campaign.min_share, tally)))
    boosts, pinned = screened.boosts, screened.pinned
    logged: Mapping[str, Any] | None = screened.logged
    logged_boosts: Mapping[str, Any] | None = screened.logged_boosts
    if removed is not screened.removed:  # a cap removed some: what is left to boost or pin
        boosts, pinned = _promoted(rules, screened.candidates, unavailable.union(removed))
        logged = logged_boosts = None
    return Shaped(
        removed,
        pinned,
        screened.max_per_category,
        screened.category_of,
        screened.filters,
        boosts,
        tuple(eligible),
        tuple(targets),
        logged,
        logged_boosts,
    )


def _promoted(
    rules: OperatorRules, candidates: frozenset[str], gone: frozenset[str]
) -> tuple[Mapping[str, float], tuple[str, str] | None]:
    """The boosts and the pin that apply to the candidates still allowed."""
    boosts = {sku: f for sku, f in rules.boost_of.items() if sku in candidates and sku not in gone}
    pinned = next(
        ((p.sku, f"rules.pins.{p.name}") for p in rules.pins if p.sku in candidates and p.sku not in gone),
        None,
    )
    return MappingProxyType(boosts), pinned


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
