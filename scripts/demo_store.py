"""The bundled demo store: a seeded catalog, complement rules and order history.

`make serve` loads it into an empty catalog on the first start only, so the offers
API works with no data of your own; the first real import (or `xsell catalog clear
--demo`) removes it with its relations and order popularity, and it never comes back.
Everything is generated from one seed, so every install gets the same store.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from logs.catalog_store import CatalogStore
from policies.offers.catalog import Product
from policies.offers.relations import MiningThresholds, read_rules
from scripts.relations import build_relations

__all__ = [
    "RULES_PATH",
    "demo_orders",
    "demo_products",
    "load_demo",
    "load_demo_on_first_start",
    "remove_demo",
]

RULES_PATH = Path(__file__).parent / "demo" / "complements.toml"

# family -> anchor category -> (price range of the anchor, its complements' price range)
FAMILIES: dict[str, dict[str, tuple[tuple[float, float], tuple[float, float]]]] = {
    "photo": {"camera": ((450, 2400), (15, 160))},
    "computing": {"laptop": ((600, 2800), (15, 90))},
    "phones": {"phone": ((250, 1400), (9, 60))},
    "kitchen": {"espresso_machine": ((180, 1200), (8, 45)), "blender": ((40, 300), (10, 35))},
    "sport": {"running_shoes": ((60, 220), (6, 350)), "bicycle": ((350, 3000), (15, 120))},
    "home_cinema": {"tv": ((300, 2500), (10, 600))},
    "music": {"guitar": ((150, 2000), (8, 160))},
    "outdoor": {"tent": ((90, 700), (20, 250))},
    "baby": {"stroller": ((200, 1100), (15, 90))},
    "gaming": {"game_console": ((300, 600), (20, 180))},
    "office": {"desk_chair": ((120, 900), (15, 120))},
    "garden": {"lawn_mower": ((150, 1500), (10, 200))},
}
BRANDS = ("Alpha", "Nordic", "Vanta", "Lumo", "Kestrel", "Orbit", "Sable", "Tarn", "Quill", "Brio")
MODELS = ("One", "Pro", "Lite", "Max", "Air", "S", "X", "Neo")


def demo_products(seed: int = 7) -> list[Product]:
    """Return several hundred products across a dozen families."""
    rng = np.random.default_rng(seed)
    rules = read_rules(RULES_PATH)
    complements: dict[str, list[str]] = {}
    for rule in rules:
        complements.setdefault(rule.anchor, []).append(rule.complement)
    products = []
    for family, anchors in FAMILIES.items():
        for anchor, (anchor_prices, extra_prices) in anchors.items():
            for category, count, prices in [(anchor, 12, anchor_prices)] + [
                (c, 8, extra_prices) for c in complements.get(anchor, [])
            ]:
                for i in range(count):
                    brand, model = BRANDS[(i + len(category)) % len(BRANDS)], MODELS[i % len(MODELS)]
                    noun = category.replace("_", " ")
                    price = round(float(rng.uniform(*prices)), 2)
                    stock = 0 if rng.random() < 0.05 else int(rng.integers(1, 60))
                    products.append(
                        Product(
                            sku=f"{category}-{i + 1:02d}",
                            title=f"{brand} {model} {noun}",
                            category=category,
                            price=price,
                            family=family,
                            tags=(family, "anchor" if category == anchor else "accessory"),
                            stock=stock,
                        )
                    )
    return products


def demo_orders(products: list[Product], *, orders: int = 6000, seed: int = 7) -> list[list[str]]:
    """Return an order history where anchors pull in their complements now and then."""
    rng = np.random.default_rng(seed)
    rules = read_rules(RULES_PATH)
    by_category: dict[str, list[Product]] = {}
    for product in products:
        by_category.setdefault(product.category, []).append(product)
    anchors = sorted({r.anchor for r in rules})
    category_of = {p.sku: p.category for p in products}
    history = []
    for _ in range(orders):
        anchor_products = by_category[anchors[int(rng.integers(len(anchors)))]]
        basket = [anchor_products[int(rng.integers(len(anchor_products)))].sku]
        anchor_category = category_of[basket[0]]
        for rule in rules:
            if rule.anchor == anchor_category and rng.random() < rule.strength * 0.45:
                choices = by_category[rule.complement]
                # buyers favour the first few models of each accessory
                weights = np.linspace(2.0, 0.5, len(choices))
                basket.append(choices[int(rng.choice(len(choices), p=weights / weights.sum()))].sku)
        if rng.random() < 0.15:  # unrelated extras: noise the miner must see through
            basket.append(products[int(rng.integers(len(products)))].sku)
        history.append(basket)
    return history


def load_demo(catalog: CatalogStore) -> int:
    """Load the demo store, every row marked as the demo's; return how many products were loaded."""
    products = demo_products()
    catalog.upsert_products(products, demo=True)
    # about 40 orders per camera model: sku pairs need a lower support than the default
    thresholds = MiningThresholds(min_support=0.0005)
    build_relations(catalog, demo_orders(products), RULES_PATH, thresholds, drop_rules=True, demo=True)
    catalog.set_demo_state("loaded")
    return len(products)


def load_demo_on_first_start(catalog: CatalogStore) -> int:
    """Load the demo store if the catalog is empty and never held it; return products loaded (0: not)."""
    if catalog.count() or catalog.demo_state() is not None:
        return 0
    return load_demo(catalog)


def demo_skus(catalog: CatalogStore) -> set[str]:
    """Return the skus of the demo store's products in the catalog.

    A log whose demo was loaded before rows were marked has its demo products found
    by content: a product identical to a demo product (sku, title, category, family
    and price all equal) is the demo's.
    """
    marked = catalog.demo_skus()
    if marked or catalog.demo_state() is not None or not catalog.count():
        return marked
    mine = {_fingerprint(p) for p in demo_products()}
    return {p.sku for p in catalog.all_products().values() if _fingerprint(p) in mine}


def remove_demo(catalog: CatalogStore) -> tuple[int, int]:
    """Remove the demo store's products and relations; return how many of each went."""
    skus = demo_skus(catalog)
    if skus:  # marks unmarked (older) demo rows, and the demo's rule pairs with them
        catalog.mark_demo(skus, [(r.anchor, r.complement) for r in read_rules(RULES_PATH)])
    return catalog.remove_demo()


def _fingerprint(product: Product) -> tuple[str, str, str, str, float]:
    return (product.sku, product.title, product.category, product.family, product.price)
