"""POST /v1/offers and GET /v1/catalog: cross-sell from what the storefront knows."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from flask import Blueprint, Response, request

from policies.offers.pacing import pace
from policies.offers.shortlist import (
    CartLine,
    OfferRequest,
    candidate_action,
    confidence,
    context_features,
    shortlist,
)
from service import pipeline
from service.auth import guard_storefront
from service.limits import check_cost
from service.openapi import CatalogQuery, documented
from service.resources import resources, shopper_key
from service.responses import json_response
from service.schemas import OfferConfidence, OfferOut, OffersRequest, OffersResponse

bp = Blueprint("offers", __name__)
guard_storefront(bp)

_TOKEN = re.compile(r"[a-z0-9]{2,}")


def search_tokens(text: str | None) -> tuple[str, ...]:
    """Reduce free text to at most 8 distinct lowercase tokens: features, not the query."""
    if not text:
        return ()
    return tuple(dict.fromkeys(_TOKEN.findall(text.lower())))[:8]


@bp.post("/v1/offers")
@documented(json=OffersRequest, ok=OffersResponse, key="storefront")
def offers() -> Response:
    """Find, rank and explain cross-sell offers for a cart; log the decision before answering."""
    body = OffersRequest.model_validate_json(request.get_data())
    res = resources()
    wanted = OfferRequest(
        cart=tuple(CartLine(line.sku, line.qty, line.price) for line in body.cart),
        viewed=tuple(body.viewed),
        search_tokens=search_tokens(body.search),
        device=body.device,
        locale=body.locale,
        hour=body.hour,
        stage=body.stage,
    )
    key = shopper_key(res, body.shopper_id) if body.shopper_id else None
    requested = body.max_offers
    verdict = None
    if key is not None:
        preferences = res.shoppers.preferences(key)
        now = res.store.clock()
        rules = res.pacing_options
        # a cool-down can outlast a session: read back as far as the longest one
        since = now - max(rules.session_seconds, rules.max_cooldown_seconds)
        history = res.shoppers.recent_events(key, since=since)
        verdict = pace(history, frequency=preferences.frequency, requested=requested, now=now, options=rules)
        if verdict.max_offers == 0:
            res.shoppers.record_verdict(key, "none", verdict.reason)
            return _no_offer(verdict.reason)
        requested = verdict.max_offers
        wanted = replace(
            wanted,
            personalised=preferences.personalised,
            avoid=frozenset(preferences.muted) | verdict.tired_categories,
        )
    found = shortlist(wanted, res.catalog, res.offer_options, requested)
    if found.no_offer_reason is not None:
        if key is not None:
            res.shoppers.record_verdict(key, "none", found.no_offer_reason)
        return _no_offer(found.no_offer_reason)
    if wanted.personalised:
        context = context_features(wanted, found.cart)
    else:
        context = {"session": {"stage": wanted.stage}}  # opted out: nothing about them

    def fingerprint_body() -> dict[str, Any]:
        body_fields = body.model_dump(mode="json", exclude={"event_id", "shopper_id", "search"})
        body_fields["search_tokens"] = list(wanted.search_tokens)
        body_fields["shopper_key"] = key  # a retry is the same request from the same shopper
        return body_fields

    actions = tuple(candidate_action(c) for c in found.candidates)
    # The storefront does not choose these features, but the catalog's tags could be many.
    check_cost(res, context, actions, context_field="body", actions_field="candidates")
    decision = pipeline.decide(
        res,
        pipeline.RankInput(
            event_id=body.event_id,
            context=context,
            actions=actions,
            excluded=frozenset(),
            slots=min(found.max_offers, len(found.candidates)),
            fingerprint=pipeline.retry_fingerprint(body.event_id, fingerprint_body),
        ),
    )
    by_sku = {c.product.sku: c for c in found.candidates}
    probability = dict(zip((a.id for a in decision.actions), decision.probabilities, strict=True))
    answer = []
    for choice in decision.choices:
        candidate = by_sku.get(choice.action_id)
        if candidate is None:  # a retry after the catalog changed: the logged answer stands
            continue
        level, score = confidence(candidate, probability[choice.action_id])
        answer.append(
            OfferOut(
                slot=choice.slot + 1,
                sku=candidate.product.sku,
                title=candidate.product.title,
                price=candidate.product.price,
                category=candidate.product.category,
                reason=candidate.reason,
                confidence=OfferConfidence(level=level, score=score),
                probability=choice.probability,
            )
        )
    if key is not None and verdict is not None:
        shown = [(o.sku, o.category) for o in answer]
        res.shoppers.record_shown(key, decision.event_id, shown, verdict="offer", reason=verdict.reason)
    response = OffersResponse(event_id=decision.event_id, model_version=decision.model_version, offers=answer)
    return json_response(response.model_dump())


def _no_offer(reason: str) -> Response:
    return json_response(
        OffersResponse(event_id=None, model_version=None, offers=[], no_offer=reason).model_dump()
    )


@bp.get("/v1/catalog")
@documented(query=CatalogQuery, key="storefront")
def catalog() -> Response:
    """Browse products, a page at a time, optionally of one category."""
    limit = max(1, min(request.args.get("limit", default=50, type=int) or 50, 500))
    offset = min(max(0, request.args.get("offset", default=0, type=int) or 0), 10**9)
    category = request.args.get("category") or None
    products, total = resources().catalog.page(category=category, offset=offset, limit=limit)
    return json_response(
        {
            "total": total,
            "offset": offset,
            "limit": limit,
            "products": [
                {
                    "sku": p.sku,
                    "title": p.title,
                    "category": p.category,
                    "family": p.family,
                    "price": p.price,
                    "tags": list(p.tags),
                    "in_stock": p.in_stock,
                }
                for p in products
            ],
        }
    )
