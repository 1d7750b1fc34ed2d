"""Simulated shoppers for the demo store, whose hidden intent decides what they do.

Each shopper has a camera, phone, laptop... in the cart and a persona that the
storefront can partly see (what they searched for, their device, the stage):

- a *landscape* photographer searching "landscape" wants the first complement kind
  of their anchor (a tripod for a camera), a *traveller* the second, a *creator*
  the third, a *backup* shopper the fourth: each clicks the wanted kind often,
  others rarely, and dismisses unwanted offers now and then;
- a *gift buyer* (at checkout, no search) wants nothing extra and dismisses often.

Clicks lead to purchases some of the time, worth the offer's price. Everything is
seeded: the same seed gives the same shoppers and the same choices.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from policies.offers.relations import read_rules
from scripts.demo_store import RULES_PATH, demo_products

__all__ = [
    "PERSONAS",
    "Persona",
    "ShopperWorld",
    "Tally",
    "drive",
    "expected_outcomes",
]

WANTED_CLICK, OTHER_CLICK, PURCHASE_GIVEN_CLICK = 0.5, 0.04, 0.3


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    search: str | None
    device: str
    stage: str
    wanted_position: int | None  # which complement kind of the anchor they want; None: nothing
    dismiss_unwanted: float


PERSONAS = (
    Persona("landscape", "landscape shots", "desktop", "cart", 0, 0.15),
    Persona("traveller", "travel light", "mobile", "cart", 1, 0.15),
    Persona("creator", "video creator", "mobile", "cart", 2, 0.15),
    Persona("backup", "backup spare", "desktop", "cart", 3, 0.15),
    Persona("gift", None, "mobile", "checkout", None, 0.5),
)


@dataclass
class ShopperWorld:
    """The demo store's anchors and complement kinds, and the personas' tastes."""

    seed: int = 0
    rng: np.random.Generator = field(init=False)
    anchors: dict[str, list[str]] = field(init=False)  # anchor category -> skus
    complements: dict[str, list[str]] = field(init=False)  # anchor category -> complement kinds

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng(self.seed)
        self.complements = {}
        for rule in read_rules(RULES_PATH):
            self.complements.setdefault(rule.anchor, []).append(rule.complement)
        self.anchors = {}
        for product in demo_products():
            if product.category in self.complements and product.in_stock:
                self.anchors.setdefault(product.category, []).append(product.sku)

    def draw(self) -> tuple[Persona, str, str]:
        """Return a persona, the anchor category in their cart and its sku."""
        persona = PERSONAS[int(self.rng.integers(len(PERSONAS)))]
        category = sorted(self.anchors)[int(self.rng.integers(len(self.anchors)))]
        skus = self.anchors[category]
        return persona, category, skus[int(self.rng.integers(len(skus)))]

    def click_probability(self, persona: Persona, anchor: str, category: str) -> float:
        """Return how likely this persona is to click an offer of `category` beside `anchor`."""
        kinds = self.complements[anchor]
        if persona.wanted_position is None:
            return 0.02
        wanted = kinds[persona.wanted_position % len(kinds)]
        return WANTED_CLICK if category == wanted else OTHER_CLICK

    def request(self, persona: Persona, sku: str, max_offers: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "cart": [{"sku": sku, "qty": 1}],
            "device": persona.device,
            "stage": persona.stage,
            "max_offers": max_offers,
        }
        if persona.search:
            body["search"] = persona.search
        return body


@dataclass
class Tally:
    """What 1,000 (or any number of) requests produced."""

    requests: int = 0
    offers: int = 0
    clicks: int = 0
    purchases: int = 0
    dismissals: int = 0
    revenue: float = 0.0
    kinds_bought: set[str] = field(default_factory=set)

    def row(self) -> dict[str, float]:
        shown = max(self.offers, 1)
        return {
            "requests": self.requests,
            "click_through": self.clicks / shown,
            "revenue_per_decision": self.revenue / max(self.requests, 1),
            "dismissal_rate": self.dismissals / shown,
            "kinds_bought": len(self.kinds_bought),
        }


Post = Callable[[str, dict[str, Any]], dict[str, Any]]


def drive(
    post: Post,
    world: ShopperWorld,
    requests: int,
    *,
    max_offers: int = 1,
    window: int = 1000,
    every: Callable[[int], None] | None = None,
) -> list[dict[str, float]]:
    """Send `requests` offer requests, act as the shoppers would, and tally each `window`."""
    rows: list[dict[str, float]] = []
    tally = Tally()
    for index in range(requests):
        persona, anchor, sku = world.draw()
        answer = post("/v1/offers", world.request(persona, sku, max_offers))
        tally.requests += 1
        for offer in answer.get("offers", []):
            tally.offers += 1
            _act(post, world, tally, persona, anchor, answer["event_id"], offer)
        if every is not None:
            every(index)
        if (index + 1) % window == 0:
            rows.append(tally.row())
            tally = Tally()
    if tally.requests:
        rows.append(tally.row())
    return rows


def _act(
    post: Post, world: ShopperWorld, tally: Tally, persona: Persona, anchor: str, event_id: str, offer: dict
) -> None:
    feedback = f"/v1/events/{event_id}/feedback"
    if world.rng.random() < world.click_probability(persona, anchor, offer["category"]):
        tally.clicks += 1
        post(feedback, {"signal": "click", "action_id": offer["sku"]})
        if world.rng.random() < PURCHASE_GIVEN_CLICK:
            tally.purchases += 1
            tally.revenue += offer["price"]
            tally.kinds_bought.add(offer["category"])
            post(feedback, {"signal": "purchase", "value": offer["price"], "action_id": offer["sku"]})
    elif world.rng.random() < persona.dismiss_unwanted:
        tally.dismissals += 1
        post(feedback, {"signal": "dismiss", "action_id": offer["sku"]})


def expected_outcomes(
    world: ShopperWorld,
    persona: Persona,
    anchor: str,
    categories: Sequence[str],
    probabilities: Sequence[float],
) -> tuple[float, float]:
    """Return the exact (click-through, dismissal rate) of a first offer drawn from `probabilities`."""
    clicks = np.array([world.click_probability(persona, anchor, c) for c in categories])
    weights = np.asarray(probabilities, dtype=np.float64)
    return float(weights @ clicks), float(weights @ ((1 - clicks) * persona.dismiss_unwanted))
