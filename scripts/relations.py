"""`xsell relations build`: mine orders, merge the rules, store the relations."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from logs.catalog_store import CatalogStore
from policies.offers.relations import MiningThresholds, mine_co_purchases, read_rules

__all__ = ["build_relations"]


def build_relations(
    catalog: CatalogStore, orders: list[list[str]], rules_path: Path | None, thresholds: MiningThresholds
) -> int:
    """Mine `orders`, merge with the rules in `rules_path`, store both; return how many relations."""
    known = {p.sku: p for p in catalog.page(category=None, offset=0, limit=1_000_000)[0]}
    rules = read_rules(rules_path) if rules_path else []
    relations = rules + mine_co_purchases(orders, known, thresholds)
    catalog.replace_relations(relations)
    catalog.set_popularity(dict(Counter(sku for order in orders for sku in set(order))))
    return len(relations)
