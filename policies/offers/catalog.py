"""Products and the complement relations between them (plain data, no storage)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Product", "Relation"]


@dataclass(frozen=True, slots=True)
class Product:
    """One sellable product. `category` is its kind (``memory_card``), `family` its aisle."""

    sku: str
    title: str
    category: str
    price: float
    family: str = ""
    tags: tuple[str, ...] = ()
    stock: int = 0

    @property
    def in_stock(self) -> bool:
        return self.stock > 0


@dataclass(frozen=True, slots=True)
class Relation:
    """ "Customers with `anchor` in the cart may want `complement`", with its evidence.

    Anchors and complements are categories (from the hand-kept rules, or mined and
    rolled up) or skus (mined pairs). `source` is ``rule`` or ``co-purchase``;
    `strength` in [0, 1] is the rule's stated strength or the mined confidence.
    `reason` is a sentence template with ``{anchor}`` (the cart item's title).
    """

    anchor: str
    complement: str
    level: str  # "category" or "sku"
    source: str  # "rule" or "co-purchase"
    strength: float
    reason: str
    support: float | None = None
    confidence: float | None = None
    lift: float | None = None
    status: str = "normal"  # normal, pinned, blocked (set in review)
    extra: dict[str, str] = field(default_factory=dict)
