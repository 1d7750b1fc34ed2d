"""The offers path without Flask: pace, shortlist, rank, explain, log.

`service/offers.py` parses the HTTP body and serialises the answer; everything in
between is here, so the path can be read, tested and reused (the console, a batch
job) without a request context. SQL stays in logs/, the rules in policies/offers/.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from logs.records import DecisionRecord
from policies.deciding.rules import Filters
from policies.offers.catalog import Relation
from policies.offers.pacing import PacingVerdict, pace
from policies.offers.shortlist import (
    POPULAR_REASON,
    Candidate,
    OfferRequest,
    Shortlist,
    candidate_action,
    confidence,
    context_features,
    shortlist,
)
from service import pipeline
from service.business_rules import NothingAllowed, catalog_attributes
from service.limits import check_cost
from service.resources import Resources, shopper_key

__all__ = ["Offer", "OfferAnswer", "OfferAsk", "offer", "search_tokens"]

log = logging.getLogger(__name__)
_TOKEN = re.compile(r"[a-z0-9]{2,}")


def search_tokens(text: str | None) -> tuple[str, ...]:
    """Reduce free text to at most 8 distinct lowercase tokens: features, not the query."""
    if not text:
        return ()
    return tuple(dict.fromkeys(_TOKEN.findall(text.lower())))[:8]


@dataclass(frozen=True, slots=True)
class OfferAsk:
    """One request for offers, as the edge parsed it.

    `fingerprint` and `legacy_fingerprints` identify a retry (service/intake_fingerprint.py)
    given what the path derived from fields it may not keep (the search's tokens, the
    keyed shopper); called only when the storefront chose the event id.
    """

    wanted: OfferRequest
    max_offers: int
    event_id: str | None = None
    shopper_id: str | None = None
    filters: Filters | None = None  # the request's own (#15)
    session_id: str | None = None  # an anonymous shopper's experiment arm sticks to it
    fingerprint: Callable[[Mapping[str, Any]], str] = lambda derived: ""
    legacy_fingerprints: Callable[[Mapping[str, Any]], Iterable[str]] = lambda derived: ()


@dataclass(frozen=True, slots=True)
class Offer:
    slot: int
    sku: str
    title: str
    price: float
    category: str
    reason: str
    confidence_level: str
    confidence_score: float
    probability: float


@dataclass(frozen=True, slots=True)
class OfferAnswer:
    """The offers (or the code saying why there are none) and the cart skus xsell does not know."""

    event_id: str | None
    model_version: str | None
    offers: tuple[Offer, ...]
    no_offer: str | None = None
    unknown_skus: tuple[str, ...] = ()
    backfill: bool = False  # the filters and rules left none of the shortlist: popular products instead


def offer(res: Resources, ask: OfferAsk) -> OfferAnswer:
    """Find, rank and explain cross-sell offers for a cart; log the decision before answering."""
    wanted = ask.wanted
    key = shopper_key(res, ask.shopper_id) if ask.shopper_id else None
    requested = ask.max_offers
    verdict: PacingVerdict | None = None
    if key is not None:
        preferences = res.shoppers.preferences(key)
        verdict = _pacing(res, key, preferences.frequency, requested)
        if verdict.max_offers == 0:
            res.shoppers.record_verdict(key, "none", verdict.reason)
            return OfferAnswer(None, None, (), verdict.reason)
        requested = verdict.max_offers
        wanted = replace(
            wanted,
            personalised=preferences.personalised,
            avoid=frozenset(preferences.muted) | verdict.tired_categories,
        )
    found = shortlist(wanted, res.catalog, res.offer_options, requested)
    if found.unknown_skus:
        _count_unknown(res, found.unknown_skus)
    if found.no_offer_reason is not None:
        if key is not None:
            res.shoppers.record_verdict(key, "none", found.no_offer_reason)
        return OfferAnswer(None, None, (), found.no_offer_reason, found.unknown_skus)
    backfill = False
    try:
        decision = _decide(res, ask, wanted, found, key)
    except NothingAllowed:  # the filters and business rules leave none of the candidates (#15)
        found, backfill = _popular(res, wanted, found), True  # back-fill: the allowed popular ones
        filled = _backfilled(res, ask, wanted, found, key)
        if filled is None:
            return OfferAnswer(None, None, (), "filtered", found.unknown_skus)
        decision = filled
    if not backfill and decision.rules is not None and decision.rules.get("backfill"):
        found, backfill = _popular(res, wanted, found), True  # a retry of a back-filled answer
    if not decision.choices and decision.experiment is not None:  # the experiment's holdout (#15)
        return OfferAnswer(decision.event_id, None, (), "holdout", found.unknown_skus)
    answer = _explain(found, decision)
    if key is not None and verdict is not None:
        shown = [(o.sku, o.category) for o in answer]
        res.shoppers.record_shown(key, decision.event_id, shown, verdict="offer", reason=verdict.reason)
    return OfferAnswer(decision.event_id, decision.model_version, answer, None, found.unknown_skus, backfill)


def _backfilled(
    res: Resources, ask: OfferAsk, wanted: OfferRequest, found: Shortlist, key: str | None
) -> DecisionRecord | None:
    """Decide among the back-fill candidates; None when the filters and rules leave none of them either."""
    if not found.candidates:
        return None
    try:
        return _decide(res, ask, wanted, found, key, backfill=True)
    except NothingAllowed:
        return None


def _popular(res: Resources, wanted: OfferRequest, found: Shortlist) -> Shortlist:
    """The catalog's most popular in-stock products, one per category, none the cart has."""
    in_cart = {line.sku for line in wanted.cart}
    known = res.catalog.products(in_cart)
    covered = {p.category for p in known.values()}
    per_kind: dict[str, Candidate] = {}
    for product in res.catalog.popular(limit=res.offer_options.max_candidates * 4):
        if product.sku in in_cart or product.category in covered or product.category in wanted.avoid:
            continue
        relation = Relation(product.family, product.sku, "sku", "popularity", 0.2, POPULAR_REASON)
        per_kind.setdefault(product.category, Candidate(product, relation, product.family, "popular"))
    candidates = tuple(per_kind.values())[: res.offer_options.max_candidates]
    return replace(found, candidates=candidates, max_offers=min(found.max_offers, max(len(candidates), 1)))


def _pacing(res: Resources, key: str, frequency: str, requested: int) -> PacingVerdict:
    now = res.store.clock()
    rules = res.pacing_options
    # a cool-down can outlast a session: read back as far as the longest one
    since = now - max(rules.session_seconds, rules.max_cooldown_seconds)
    history = res.shoppers.recent_events(key, since=since)
    return pace(history, frequency=frequency, requested=requested, now=now, options=rules)


def _count_unknown(res: Resources, skus: tuple[str, ...]) -> None:
    """Count unknown cart lines for /metrics; a busy log must not cost the shopper the answer."""
    try:
        res.catalog.count_unknown_skus(len(skus))
    except Exception:  # the count is a diagnostic, the offers are what the shopper waits for
        log.warning("could not count %d unknown cart skus", len(skus), exc_info=True)


def _decide(
    res: Resources,
    ask: OfferAsk,
    wanted: OfferRequest,
    found: Shortlist,
    key: str | None,
    *,
    backfill: bool = False,
) -> DecisionRecord:
    # opted out: nothing about them beyond the stage
    personal = wanted.personalised
    context = context_features(wanted, found) if personal else {"session": {"stage": wanted.stage}}

    # A retry is the same request from the same shopper, searching the same tokens.
    derived = {"search_tokens": list(wanted.search_tokens), "shopper_key": key}

    actions = tuple(candidate_action(c) for c in found.candidates)
    # The storefront does not choose these features, but the catalog's tags could be many.
    check_cost(res, context, actions, context_field="body", actions_field="candidates")
    return pipeline.decide(
        res,
        pipeline.RankInput(
            event_id=ask.event_id,
            context=context,
            actions=actions,
            excluded=frozenset(),
            slots=min(found.max_offers, len(found.candidates)),
            fingerprint=ask.fingerprint(derived) if ask.event_id is not None else "",
            legacy_fingerprints=lambda: ask.legacy_fingerprints(derived),
            shopper=key,
            session=ask.session_id,
            backfill=backfill,
            storefront_controls=True,
            filters=ask.filters,
            attributes={c.product.sku: catalog_attributes(c.product) for c in found.candidates},
        ),
    )


def _explain(found: Shortlist, decision: DecisionRecord) -> tuple[Offer, ...]:
    by_sku = {c.product.sku: c for c in found.candidates}
    probability = dict(zip((a.id for a in decision.actions), decision.probabilities, strict=True))
    answer = []
    for choice in decision.choices:
        candidate = by_sku.get(choice.action_id)
        if candidate is None:  # a retry after the catalog changed: the logged answer stands
            continue
        level, score = confidence(candidate, probability[choice.action_id])
        product = candidate.product
        answer.append(
            Offer(
                slot=choice.slot + 1,
                sku=product.sku,
                title=product.title,
                price=product.price,
                category=product.category,
                reason=candidate.reason,
                confidence_level=level,
                confidence_score=score,
                probability=choice.probability,
            )
        )
    return tuple(answer)
