"""From a cart to candidate offers: relations, redundancy rules, reasons, confidence.

The bandit only ranks what this module lets through. Each rule here is a promise
to the shopper: nothing already in the cart, no second item of a kind the cart
already has, nothing out of stock, nothing an operator blocked, fewer or no offers
when the cart is already full, and a reason that names what really prompted the
offer (an item in the cart, one viewed, or one bought before).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from policies.base import Action, Features
from policies.offers.catalog import Product, Relation

__all__ = [
    "Candidate",
    "CartLine",
    "OfferOptions",
    "OfferRequest",
    "Shortlist",
    "Trigger",
    "candidate_action",
    "confidence",
    "context_features",
    "shortlist",
]

POPULAR_REASON = "Popular with shoppers in {family}"

Trigger = Literal["cart", "viewed", "bought", "popular"]
# What `{where}` in a reason becomes; reasons written before `{where}` existed say
# "in your cart", which is rewritten for the other triggers.
WHERE: dict[str, str] = {"cart": "in your cart", "viewed": "you viewed", "bought": "you bought before"}
_Anchor = tuple[Product, Trigger]


@dataclass(frozen=True, slots=True)
class CartLine:
    sku: str
    quantity: int
    price: float | None = None


@dataclass(frozen=True, slots=True)
class OfferRequest:
    cart: tuple[CartLine, ...]
    viewed: tuple[str, ...] = ()
    bought: tuple[str, ...] = ()  # skus this shopper bought before, newest first
    search_tokens: tuple[str, ...] = ()
    device: str | None = None
    locale: str | None = None
    hour: int | None = None
    stage: str = "browse"  # browse, cart, checkout
    personalised: bool = True
    avoid: frozenset[str] = frozenset()  # muted or tired categories and families


@dataclass(frozen=True, slots=True)
class OfferOptions:
    max_candidates: int = 20
    per_category: int = 4  # in-stock products looked at per kind, to find one not in the cart
    max_cart_lines: int = 8  # a cart this full gets no offer
    checkout_max_lines: int = 3  # at checkout, more lines than this: no offer
    checkout_max_offers: int = 1


@dataclass(frozen=True, slots=True)
class Candidate:
    """A product that may be offered, the relation that suggested it and what prompted it.

    `trigger` says where the anchor came from: the cart, a viewed product, a product
    bought before, or (``popular``) no anchor at all.
    """

    product: Product
    relation: Relation
    anchor_title: str
    trigger: Trigger = "cart"

    @property
    def reason(self) -> str:
        """Return the relation's sentence about this anchor, worded for what triggered it."""
        template = self.relation.reason
        where = WHERE.get(self.trigger, "")
        if "{where}" not in template and self.trigger in ("viewed", "bought"):
            template = template.replace("in your cart", where)
        return template.format(
            anchor=self.anchor_title, family=self.product.family.replace("_", " "), where=where
        )


@dataclass(frozen=True, slots=True)
class Shortlist:
    candidates: tuple[Candidate, ...]
    max_offers: int
    no_offer_reason: str | None  # a code when nothing may be offered
    cart: tuple[Product, ...] = ()  # the known cart lines' products, in cart order
    lines: tuple[CartLine, ...] = ()  # the known cart lines (what the answer is based on)
    unknown_skus: tuple[str, ...] = ()  # cart skus the catalog does not have, in cart order


class CatalogView(Protocol):
    def products(self, skus: Iterable[str]) -> dict[str, Product]: ...
    def in_categories(self, categories: Iterable[str], *, per_category: int) -> list[Product]: ...
    def popular(self, *, limit: int, families: Sequence[str] = ()) -> list[Product]: ...
    def relations(self, anchors: Iterable[str] | None = None) -> list[Relation]: ...
    def blocked_pairs(self) -> set[tuple[str, str]]: ...


def shortlist(
    request: OfferRequest, catalog: CatalogView, options: OfferOptions, requested: int
) -> Shortlist:
    """Return the candidates the bandit may rank, or why there is nothing to offer.

    Cart lines whose sku the catalog does not have are left out and reported in
    `unknown_skus`: a storefront's catalog and xsell's drift apart, and one stale
    line must not cost the shopper every offer. Unknown viewed or bought skus are
    ignored (product pages and orders outlive products).
    """
    known = catalog.products(
        [line.sku for line in request.cart] + list(request.viewed) + list(request.bought)
    )
    lines = tuple(line for line in request.cart if line.sku in known)
    unknown = tuple(line.sku for line in request.cart if line.sku not in known)
    cart = tuple(known[line.sku] for line in lines)

    def verdict(candidates: tuple[Candidate, ...], max_offers: int, reason: str | None) -> Shortlist:
        return Shortlist(candidates, max_offers, reason, cart, lines, unknown)

    # Fullness counts every line the shopper sees, known to xsell or not.
    if len(request.cart) >= options.max_cart_lines:
        return verdict((), 0, "cart_full")
    max_offers = requested
    if request.stage == "checkout":
        if len(request.cart) > options.checkout_max_lines:
            return verdict((), 0, "checkout_cart_full")
        max_offers = min(requested, options.checkout_max_offers)
    candidates = _candidates(request, catalog, options, cart, known)
    if not candidates:
        return verdict((), 0, "nothing_relevant")
    return verdict(candidates, max_offers, None)


def _anchors(request: OfferRequest, cart: Sequence[Product], known: dict[str, Product]) -> list[_Anchor]:
    """Return the products offers may start from, each once, cart first, then bought, then viewed."""
    anchors: dict[str, _Anchor] = {p.sku: (p, "cart") for p in cart}
    triggers: tuple[tuple[Trigger, Sequence[str]], ...] = (
        ("bought", request.bought),
        ("viewed", request.viewed),
    )
    for trigger, skus in triggers:
        for sku in skus:
            if sku in known and sku not in anchors:
                anchors[sku] = (known[sku], trigger)
    return list(anchors.values())


def _candidates(
    request: OfferRequest,
    catalog: CatalogView,
    options: OfferOptions,
    cart: Sequence[Product],
    known: dict[str, Product],
) -> tuple[Candidate, ...]:
    in_cart = {p.sku for p in cart}
    covered = {p.category for p in cart}  # a kind the cart already has is not offered again
    blocked = catalog.blocked_pairs()
    candidates: dict[str, Candidate] = {}

    def consider(product: Product, relation: Relation, anchor: Product | None, trigger: Trigger) -> None:
        if product.sku in in_cart or product.category in covered or not product.in_stock:
            return
        if product.category in request.avoid or product.family in request.avoid:
            return
        if anchor is not None and (
            (anchor.sku, product.sku) in blocked
            or (anchor.category, product.category) in blocked
            or (anchor.category, product.sku) in blocked
        ):
            return
        title = anchor.title if anchor else product.family
        candidate = Candidate(product, relation, title, trigger)
        current = candidates.get(product.sku)
        if current is None or _rank_key(candidate) > _rank_key(current):
            candidates[product.sku] = candidate

    anchors = _anchors(request, cart, known)
    if request.personalised and anchors:
        by_anchor = _relations_by_anchor(
            catalog.relations([a.sku for a, _ in anchors] + [a.category for a, _ in anchors])
        )
        for anchor, trigger in anchors:
            relations = by_anchor.get(anchor.sku, []) + by_anchor.get(anchor.category, [])
            usable = [r for r in relations if r.status != "blocked"]
            skus = [r.complement for r in usable if r.level == "sku"]
            products = catalog.products(skus)
            for relation in usable:
                if relation.level == "sku" and relation.complement in products:
                    consider(products[relation.complement], relation, anchor, trigger)
            categories = [r for r in usable if r.level == "category"]
            in_categories = catalog.in_categories(
                [r.complement for r in categories], per_category=options.per_category
            )
            for relation in categories:
                for product in in_categories:
                    if product.category == relation.complement:
                        consider(product, relation, anchor, trigger)
    if not candidates:
        # Cold start (empty cart, nothing related) or personalisation off: broad relevance.
        families = sorted({a.family for a, _ in anchors if a.family}) if request.personalised else []
        for product in catalog.popular(limit=options.max_candidates * 2, families=families):
            fallback = Relation(product.family, product.sku, "sku", "popularity", 0.2, POPULAR_REASON)
            consider(product, fallback, None, "popular")
    # One product per kind: three camera bags are not three offers. The strongest
    # relation wins; among equals, the most popular product (the catalog's order).
    per_kind: dict[str, Candidate] = {}
    for candidate in sorted(candidates.values(), key=_rank_key, reverse=True):
        per_kind.setdefault(candidate.product.category, candidate)
    return tuple(list(per_kind.values())[: options.max_candidates])


def _rank_key(candidate: Candidate) -> tuple[int, float]:
    return (int(candidate.relation.status == "pinned"), candidate.relation.strength)


def _relations_by_anchor(relations: Sequence[Relation]) -> dict[str, list[Relation]]:
    grouped: dict[str, list[Relation]] = {}
    for relation in relations:
        grouped.setdefault(relation.anchor, []).append(relation)
    return grouped


def context_features(request: OfferRequest, found: Shortlist) -> Features:
    """Return what the bandit may know about the shopper and cart (no ids, no raw text).

    Only the known cart lines count: an unknown sku has no category or price band.
    """
    cart = found.cart
    value = sum(
        (line.price if line.price is not None else p.price) * line.quantity
        for line, p in zip(found.lines, cart, strict=True)
    )
    features: dict[str, dict] = {
        "cart": {
            "categories": sorted({p.category for p in cart}),
            "families": sorted({p.family for p in cart if p.family}),
            "lines": len(found.lines),
            "value_band": _band(value),
        },
        "session": {"stage": request.stage},
    }
    if request.device:
        features["session"]["device"] = request.device
    if request.locale:
        features["session"]["locale"] = request.locale
    if request.hour is not None:
        features["session"]["daypart"] = ("night", "morning", "afternoon", "evening")[request.hour // 6]
    if request.search_tokens:
        features["search"] = {"tokens": list(request.search_tokens)}
    return features


def candidate_action(candidate: Candidate) -> Action:
    """Return the bandit's view of a candidate: its kind, family, price band and evidence."""
    product, relation = candidate.product, candidate.relation
    return Action(
        product.sku,
        {
            "offer": {
                "category": product.category,
                "family": product.family,
                "price_band": _band(product.price),
                "source": relation.source,
                "strength": round(relation.strength, 2),
            }
        },
    )


def confidence(candidate: Candidate, probability: float) -> tuple[str, float]:
    """Return (high|medium|low, score): half the relation's strength, half the model's probability."""
    score = round(0.5 * candidate.relation.strength + 0.5 * probability, 3)
    level = "high" if score >= 0.6 else "medium" if score >= 0.35 else "low"
    return level, score


def _band(value: float) -> str:
    for limit, name in ((25, "under_25"), (100, "25_100"), (500, "100_500"), (2000, "500_2000")):
        if value < limit:
            return name
    return "over_2000"
