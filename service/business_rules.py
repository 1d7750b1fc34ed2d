"""The operator's standing rules and a request's filters, applied to one decision.

The rules live in the log's `control` table (live configuration: every worker reads
them within ``XSELL_MODEL_POLL_SECONDS``, a change is kept in the model history), and
every decision they shaped logs what they did (decisions.rules). They act only by
exclusion (policies/deciding/rules.py), so replays stay exact.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, cast

import orjson

from logs.db import LogUnavailable
from logs.rule_store import CampaignCount
from policies.base import Action, SlotChoice
from policies.deciding.promotions import Boost, Campaign
from policies.deciding.rule_checks import filter_key
from policies.deciding.rules import (
    Attributes,
    Filters,
    OperatorRules,
    Pin,
    Screened,
    Shaped,
    attributes_from_features,
    screen,
    settle,
)
from policies.learning.model_records import ModelChange
from policies.offers.catalog import Product
from service.campaign_counts import CampaignTallies, tallies
from service.exceptions import InvalidField
from service.resources import Resources

if TYPE_CHECKING:
    from service.pipeline import RankInput

__all__ = [
    "RULES_KEY",
    "NothingAllowed",
    "apply",
    "catalog_attributes",
    "check",
    "campaign_rows",
    "counted",
    "operator_rules",
    "save_rules",
]


class NothingAllowed(InvalidField):
    """The filters and rules leave no candidate: /v1/rank answers 422, /v1/offers "filtered"."""


RULES_KEY = "business_rules"  # in `control`: the rules as JSON
_NO_FILTERS = Filters()
log = logging.getLogger(__name__)
_CATALOG_CACHE = 10_000  # skus a worker remembers between reads of the rules
# Candidate sets likewise. An entry holds maps over up to XSELL_MAX_ACTIONS candidates
# (about 60 kB at worst, with sets a client chose): 128 bounds a worker to a few MB.
_SCREENED_CACHE = 128
_UNREAD = object()


def apply(
    res: Resources, request: RankInput, filters: Filters | None, known: Mapping[str, Attributes] | None
) -> tuple[frozenset[str], tuple[frozenset[str], ...], Shaped | None]:
    """Return the request's exclusions and per-slot exclusions with the rules' added, and
    what the rules did (None when none apply)."""
    source = _source(res)
    epoch = source.current()
    rules = epoch.rules
    if not rules and not filters:
        return request.excluded, request.slot_excluded, None
    ids = [a.id for a in request.actions]
    filters = filters or _NO_FILTERS
    if known is not None:
        screened = screen(ids, known, filters, rules, request.excluded)
    else:
        screened = source.screened(epoch, request.actions, ids, filters, request.excluded)
    counts = tallies(res).current(rules.campaigns, res.store.clock()) if rules.campaigns else None
    shaped = settle(screened, rules, counts, request.excluded)
    excluded = request.excluded.union(shaped.removed)
    if excluded.issuperset(ids):
        raise NothingAllowed(
            "filters", "the filters and the operator's rules leave no candidate: " + _removals(shaped)
        )
    slot_excluded = request.slot_excluded
    if shaped.pinned is not None:  # the first slot may show the campaign only
        others = frozenset(ids) - {shaped.pinned[0]}
        first = slot_excluded[0] if slot_excluded else frozenset()
        slot_excluded = (first | others, *slot_excluded[1:])
    banned = slot_excluded[0] if slot_excluded else frozenset()
    if shaped.targets and banned:  # a share is mixed into the first slot: only what that slot may show
        targets = tuple(replace(t, actions=t.actions - banned) for t in shaped.targets if t.actions - banned)
        shaped = replace(shaped, targets=targets)
    return excluded, slot_excluded, shaped


def campaign_rows(shaped: Shaped | None, choices: Sequence[SlotChoice], now: float) -> list[CampaignCount]:
    """What a decision adds to the campaigns it was eligible for (caps and shares), logged with it."""
    if shaped is None or not shaped.eligible:
        return []
    return CampaignTallies.rows(shaped.eligible, choices, now)


def counted(res: Resources, rows: Sequence[CampaignCount]) -> None:
    """Tell this worker's tallies about a newly logged decision's counts."""
    if rows:
        tallies(res).counted(rows)


def catalog_attributes(product: Product) -> Attributes:
    """What rules know of a catalog product: the catalog's columns decide, never its features."""
    return Attributes(
        category=product.category,
        tags=frozenset(product.tags),
        price=product.price,
        family=product.family or None,
        stock=product.stock,
    )


def _removals(shaped: Shaped) -> str:
    return ", ".join(f"{a} ({rule})" for a, rule in sorted(shaped.removed.items()))


def operator_rules(res: Resources) -> OperatorRules:
    """The rules in force now, read from the log."""
    return _rules_of(res.registry.index.control(RULES_KEY))


def _rules_of(raw: str | None) -> OperatorRules:
    """The rules as stored in `control` (none stored: no rules)."""
    return parse(orjson.loads(raw)) if raw else OperatorRules()


def save_rules(res: Resources, rules: OperatorRules, *, actor: str, reason: str | None) -> None:
    """Replace the rules, and keep the change in the model history beside model changes."""
    res.registry.index.set_control(RULES_KEY, orjson.dumps(dump(rules)).decode())
    active = res.registry.active()
    summary = orjson.dumps(dump(rules)).decode()
    res.registry.index.record_change(
        ModelChange(
            at=res.store.clock(),
            action="rules",
            version=active.version if active else "",
            previous=None,
            actor=actor,
            reason=f"business rules set to {summary}" + (f": {reason}" if reason else ""),
        )
    )
    _source(res).refresh()
    tallies(res).forget()


def dump(rules: OperatorRules) -> dict[str, object]:
    return {
        "pins": [{"name": p.name, "sku": p.sku} for p in rules.pins],
        "margin_floor": rules.margin_floor,
        "never_categories": sorted(rules.never_categories),
        "max_per_category": rules.max_per_category,
        "boosts": [{"sku": b.sku, "factor": b.factor} for b in rules.boosts],
        "campaigns": [
            {
                "name": c.name,
                "products": list(c.products),
                "min_share": c.min_share,
                "max_impressions": c.max_impressions,
                "period_seconds": c.period_seconds,
            }
            for c in rules.campaigns
        ],
    }


def parse(found: Mapping[str, Any]) -> OperatorRules:
    pins = found.get("pins") or []
    never = found.get("never_categories") or []
    return OperatorRules(
        pins=tuple(Pin(p["name"], p["sku"]) for p in pins),
        margin_floor=found.get("margin_floor"),
        never_categories=frozenset(never),
        max_per_category=found.get("max_per_category"),
        # rules saved before promotions existed have neither
        boosts=tuple(Boost(b["sku"], float(b["factor"])) for b in found.get("boosts") or []),
        campaigns=tuple(
            Campaign(
                name=c["name"],
                products=tuple(c["products"]),
                min_share=c.get("min_share"),
                max_impressions=c.get("max_impressions"),
                period_seconds=float(c["period_seconds"]),
            )
            for c in found.get("campaigns") or []
        ),
    )


def check(res: Resources, rules: OperatorRules) -> None:
    """Refuse promotions that name unknown products or contradict the other rules.

    Raises
    ------
    InvalidField
        Naming the field: a boost or campaign product the catalog does not have, one in
        a never-shown category, a product in two campaigns, shares adding up to 1 or more.
    """
    named = [b.sku for b in rules.boosts] + [s for c in rules.campaigns for s in c.products]
    products = res.catalog.products(sorted(set(named))) if named else {}

    def known(sku: str, field: str, what: str) -> None:
        product = products.get(sku)
        if product is None:
            raise InvalidField(field, f"{what} {sku!r} is not a product of the catalog")
        if product.category in rules.never_categories:
            raise InvalidField(field, f"{what} {sku!r} is in never-shown category {product.category!r}")

    for k, b in enumerate(rules.boosts):
        known(b.sku, f"boosts.{k}.sku", "boosted product")
    owner: dict[str, str] = {}
    for k, campaign in enumerate(rules.campaigns):
        for j, sku in enumerate(campaign.products):
            known(sku, f"campaigns.{k}.products.{j}", "campaign product")
            if sku in owner:
                raise InvalidField(
                    f"campaigns.{k}.products.{j}", f"{sku!r} is already in campaign {owner[sku]!r}"
                )
            owner[sku] = campaign.name
    shares = math.fsum(c.min_share for c in rules.campaigns if c.min_share is not None)
    if shares >= 1.0:
        raise InvalidField("campaigns", f"the guaranteed shares add up to {shares:g}; they must stay below 1")


@dataclass(frozen=True, slots=True)
class _Epoch:
    """The rules as read at one time, with what a worker keeps until it reads them again."""

    rules: OperatorRules
    # sku -> its catalog attributes (None: not in the catalog): a catalog read per ruled
    # request was most of what rules cost on the rank path.
    catalog: dict[str, Attributes | None] = field(default_factory=dict)
    # What the rules and filters make of a candidate set the catalog knows all of, by
    # (skus, filters, excluded): storefronts send the same candidates again and again.
    screened: dict[tuple[object, ...], Screened] = field(default_factory=dict)


class _RulesSource:
    """This worker's copy of the rules, re-read at most every poll interval."""

    def __init__(self, res: Resources):
        self.res = res
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._raw: str | None = None  # the rules as last read, to tell a change
        self._epoch = _Epoch(OperatorRules())

    def current(self) -> _Epoch:
        if time.monotonic() - self._checked_at >= self.res.settings.model_poll_seconds:
            self.refresh()
        return self._epoch

    def refresh(self) -> None:
        with self._lock:
            self._checked_at = time.monotonic()
            try:
                raw = self.res.registry.index.control(RULES_KEY)
            except LogUnavailable:  # a busy log: apply the rules as before, look again next interval
                log.warning("could not read the business rules; keeping the last known", exc_info=True)
                raw = self._raw
            # The same rules keep their object (the tests built for them, the campaigns'
            # tallies); the catalog is read again either way: a price or stock may change.
            rules = self._epoch.rules
            if raw != self._raw:
                rules = _rules_of(raw)
                self._raw = raw
            self._epoch = _Epoch(rules)  # one swap: the rules and what was kept with them

    def screened(
        self,
        epoch: _Epoch,
        actions: Sequence[Action],
        ids: list[str],
        filters: Filters,
        excluded: frozenset[str],
    ) -> Screened:
        """`screen` the candidates as the catalog knows them (read once per poll interval),
        else as their features say; kept for a candidate set the catalog knows all of."""
        key = (tuple(ids), filter_key(filters), excluded)
        found = epoch.screened.get(key)
        if found is not None:  # kept only for sets the catalog knew whole, in this epoch
            return found
        cache = epoch.catalog
        # Read into this request's own map: another thread may clear the shared one meanwhile.
        seen = {i: cache.get(i, _UNREAD) for i in ids}
        missing = [i for i, value in seen.items() if value is _UNREAD]
        if missing:
            if len(cache) > _CATALOG_CACHE:
                cache.clear()
                epoch.screened.clear()  # it may have been screened on what is read again now
            products = self.res.catalog.products(missing)
            for sku in missing:
                product = products.get(sku)
                seen[sku] = cache[sku] = None if product is None else catalog_attributes(product)
        known = cast(list[Attributes | None], [seen[i] for i in ids])
        if None in known:  # some describe themselves: nothing to key what they are by
            attributes = {
                a.id: k or attributes_from_features(a.features) for a, k in zip(actions, known, strict=True)
            }
            return screen(ids, attributes, filters, epoch.rules, excluded)
        if len(epoch.screened) >= _SCREENED_CACHE:
            epoch.screened.clear()
        attributes = cast(dict[str, Attributes], dict(zip(ids, known, strict=True)))
        found = epoch.screened[key] = screen(ids, attributes, filters, epoch.rules, excluded)
        return found


def _source(res: Resources) -> _RulesSource:
    found: _RulesSource | None = getattr(res, "_business_rules", None)
    if found is None:
        found = _RulesSource(res)
        setattr(res, "_business_rules", found)  # noqa: B010 -- one per Resources
    return found
