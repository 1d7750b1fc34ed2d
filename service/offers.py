"""POST /v1/offers and GET /v1/catalog: cross-sell from what the storefront knows."""

from __future__ import annotations

from flask import Blueprint, Response, request

from policies.offers.shortlist import CartLine, OfferRequest
from service import intake_fingerprint
from service.auth import guard_storefront
from service.cross_sell import OfferAnswer, OfferAsk, offer, search_tokens
from service.openapi import CatalogQuery, documented
from service.resources import resources
from service.responses import json_response
from service.schemas import OfferConfidence, OfferOut, OffersRequest, OffersResponse

__all__ = ["bp"]

bp = Blueprint("offers", __name__)
guard_storefront(bp)


@bp.post("/v1/offers")
@documented(json=OffersRequest, ok=OffersResponse, key="storefront")
def offers() -> Response:
    """Find, rank and explain cross-sell offers for a cart; log the decision before answering."""
    body = OffersRequest.model_validate_json(request.get_data())
    ask = OfferAsk(
        wanted=OfferRequest(
            cart=tuple(CartLine(line.sku, line.qty, line.price) for line in body.cart),
            viewed=tuple(body.viewed),
            bought=tuple(body.bought),
            search_tokens=search_tokens(body.search),
            device=body.device,
            locale=body.locale,
            hour=body.hour,
            stage=body.stage,
        ),
        max_offers=body.max_offers,
        event_id=body.event_id,
        shopper_id=body.shopper_id,
        filters=body.filters.domain() if body.filters else None,
        session_id=body.session_id,
        fingerprint=lambda derived: intake_fingerprint.fingerprint(
            body, intake_fingerprint.OFFERS_NOT_HASHED, derived
        ),
        legacy_fingerprints=lambda derived: intake_fingerprint.legacy_offers(body, derived),
    )
    return json_response(_response(offer(resources(), ask)).model_dump())


def _response(answer: OfferAnswer) -> OffersResponse:
    return OffersResponse(
        event_id=answer.event_id,
        model_version=answer.model_version,
        offers=[
            OfferOut(
                slot=o.slot,
                sku=o.sku,
                title=o.title,
                price=o.price,
                category=o.category,
                reason=o.reason,
                confidence=OfferConfidence(level=o.confidence_level, score=o.confidence_score),
                probability=o.probability,
            )
            for o in answer.offers
        ],
        no_offer=answer.no_offer,
        unknown_skus=list(answer.unknown_skus),
        backfill=answer.backfill,
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
