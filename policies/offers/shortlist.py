"""From a cart to candidate offers: relations, redundancy rules, reasons, confidence.

The bandit only ranks what this module lets through. Each rule here is a promise
to the shopper: nothing already in the cart, no second item of a kind the cart
already has, nothing out of stock, nothing an operator blocked, and fewer or no
offers when the cart is already full.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from policies.base import Action, Features
from policies.offers.catalog import Product, Relation

__all__ = [
    "Candidate",
    "CartLine",
    "OfferOptions",
    "OfferRequest",
    "Shortlist",
    "UnknownProduct",
    "candidate_action",
    "confidence",
    "context_features",
    "shortlist",
]

POPULAR_REASON = "Popular with shoppers in {family}"


class UnknownProduct(LookupError):
    """A cart line names a sku the catalog does not have."""

    def __init__(self, index: int, sku: str):
        super().__init__(f"cart[{index}].sku {sku!r} is not in the catalog")
        self.index, self.sku = index, sku
        self.field = f"cart.{index}.sku"


@dataclass(frozen=True, slots=True)
class CartLine:
    sku: str
    quantity: int
    price: float | None = None


@dataclass(frozen=True, slots=True)
class OfferRequest:
    cart: tuple[CartLine, ...]
    viewed: tuple[str, ...] = ()
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
    """A product that may be offered, and the relation (and cart item) that suggested it."""

    product: Product
    relation: Relation
    anchor_title: str

    @property
    def reason(self) -> str:
        return self.relation.reason.format(
            anchor=self.anchor_title, family=self.product.family.replace("_", " ")
        )


@dataclass(frozen=True, slots=True)
class Shortlist:
    candidates: tuple[Candidate, ...]
    max_offers: int
    no_offer_reason: str | None  # a code when nothing may be offered
    cart: tuple[Product, ...] = ()  # the cart's products, in cart order


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

    Raises
    ------
    UnknownProduct
        A cart line names an unknown sku (viewed skus that are unknown are ignored:
        product pages outlive products).
    """
    known = catalog.products([line.sku for line in request.cart] + list(request.viewed))
    for index, line in enumerate(request.cart):
        if line.sku not in known:
            raise UnknownProduct(index, line.sku)
    cart = [known[line.sku] for line in request.cart]
    viewed = [known[sku] for sku in request.viewed if sku in known]
    lines = len(request.cart)
    if lines >= options.max_cart_lines:
        return Shortlist((), 0, "cart_full", tuple(cart))
    max_offers = requested
    if request.stage == "checkout":
        if lines > options.checkout_max_lines:
            return Shortlist((), 0, "checkout_cart_full", tuple(cart))
        max_offers = min(requested, options.checkout_max_offers)

    in_cart = {p.sku for p in cart}
    covered = {p.category for p in cart}  # a kind the cart already has is not offered again
    blocked = catalog.blocked_pairs()
    candidates: dict[str, Candidate] = {}

    def consider(product: Product, relation: Relation, anchor: Product | None) -> None:
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
        candidate = Candidate(product, relation, title)
        current = candidates.get(product.sku)
        if current is None or _rank_key(candidate) > _rank_key(current):
            candidates[product.sku] = candidate

    anchors = cart + [p for p in viewed if p.sku not in in_cart]
    if request.personalised and anchors:
        by_anchor = _relations_by_anchor(
            catalog.relations([a.sku for a in anchors] + [a.category for a in anchors])
        )
        for anchor in anchors:
            relations = by_anchor.get(anchor.sku, []) + by_anchor.get(anchor.category, [])
            usable = [r for r in relations if r.status != "blocked"]
            skus = [r.complement for r in usable if r.level == "sku"]
            products = catalog.products(skus)
            for relation in usable:
                if relation.level == "sku" and relation.complement in products:
                    consider(products[relation.complement], relation, anchor)
            categories = [r for r in usable if r.level == "category"]
            in_categories = catalog.in_categories(
                [r.complement for r in categories], per_category=options.per_category
            )
            for relation in categories:
                for product in in_categories:
                    if product.category == relation.complement:
                        consider(product, relation, anchor)
    if not candidates:
        # Cold start (empty cart, nothing related) or personalisation off: broad relevance.
        families = sorted({p.family for p in anchors if p.family}) if request.personalised else []
        for product in catalog.popular(limit=options.max_candidates * 2, families=families):
            fallback = Relation(product.family, product.sku, "sku", "popularity", 0.2, POPULAR_REASON)
            consider(product, fallback, None)
    # One product per kind: three camera bags are not three offers. The strongest
    # relation wins; among equals, the most popular product (the catalog's order).
    per_kind: dict[str, Candidate] = {}
    for candidate in sorted(candidates.values(), key=_rank_key, reverse=True):
        per_kind.setdefault(candidate.product.category, candidate)
    ordered = list(per_kind.values())[: options.max_candidates]
    if not ordered:
        return Shortlist((), 0, "nothing_relevant", tuple(cart))
    return Shortlist(tuple(ordered), max_offers, None, tuple(cart))


def _rank_key(candidate: Candidate) -> tuple[int, float]:
    return (int(candidate.relation.status == "pinned"), candidate.relation.strength)


def _relations_by_anchor(relations: Sequence[Relation]) -> dict[str, list[Relation]]:
    grouped: dict[str, list[Relation]] = {}
    for relation in relations:
        grouped.setdefault(relation.anchor, []).append(relation)
    return grouped


def context_features(request: OfferRequest, cart: Sequence[Product]) -> Features:
    """Return what the bandit may know about the shopper and cart (no ids, no raw text)."""
    value = sum(
        (line.price if line.price is not None else p.price) * line.quantity
        for line, p in zip(request.cart, cart, strict=True)
    )
    features: dict[str, dict] = {
        "cart": {
            "categories": sorted({p.category for p in cart}),
            "families": sorted({p.family for p in cart if p.family}),
            "lines": len(request.cart),
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
