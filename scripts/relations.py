"""`xsell relations build`: mine orders, merge the rules, store the relations, say what changed.

Hand-kept rules are an operator's work: a build without a rules file keeps the ones
in the catalog (before, 2,061 relations silently became 102). `--rules FILE` replaces
them with the file's; only an explicit `drop_rules` removes them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from logs.catalog_store import CatalogStore
from policies.offers.catalog import Relation
from policies.offers.relations import MiningThresholds, mine_co_purchases, read_rules

__all__ = ["RelationChanges", "build_relations"]

_Key = tuple[str, str, str, str]


@dataclass(frozen=True, slots=True)
class SourceChanges:
    """How one source's relations (rules or co-purchases) changed."""

    source: str
    added: int
    removed: int
    changed: int  # same pair, another strength or reason
    unchanged: int
    kept: bool = False  # left as they were (no rules file given)

    def describe(self) -> str:
        name = "rules" if self.source == "rule" else "co-purchase relations"
        if self.kept and not self.unchanged:
            return f"{name}: none (--rules FILE adds hand-kept rules)"
        if self.kept:
            return f"{name}: kept all {self.unchanged} (no --rules given; --drop-rules removes them)"
        return (
            f"{name}: {self.added} added, {self.removed} removed, {self.changed} changed,"
            f" {self.unchanged} unchanged"
        )


@dataclass(frozen=True, slots=True)
class RelationChanges:
    """What a build did, source by source, and how many relations the catalog now holds."""

    sources: tuple[SourceChanges, ...]
    total: int
    orders: int

    def lines(self) -> list[str]:
        return [s.describe() for s in self.sources] + [f"{self.total} relations from {self.orders} orders"]


def build_relations(
    catalog: CatalogStore,
    orders: list[list[str]],
    rules_path: Path | None,
    thresholds: MiningThresholds,
    *,
    drop_rules: bool = False,
    demo: bool = False,
    progress: Callable[[int], None] | None = None,
) -> RelationChanges:
    """Mine `orders`, take the rules from `rules_path` (or keep the stored ones), store both.

    `progress` hears of orders mined, twice each (see `mine_co_purchases`).

    Raises
    ------
    RulesError
        The rules file cannot be used.
    """
    known = catalog.all_products()
    before = catalog.relations()
    replace: list[str] = ["co-purchase"]
    relations = mine_co_purchases(orders, known, thresholds, progress)
    if rules_path is not None or drop_rules:
        replace.append("rule")
        relations = (read_rules(rules_path) if rules_path else []) + relations
    catalog.replace_relations(relations, sources=replace, demo=demo)
    catalog.set_popularity(dict(Counter(sku for order in orders for sku in set(order))))
    changes = tuple(
        _compare(source, before, relations, kept=source not in replace) for source in ("rule", "co-purchase")
    )
    return RelationChanges(changes, len(catalog.relations()), len(orders))


def _compare(source: str, before: list[Relation], after: list[Relation], *, kept: bool) -> SourceChanges:
    old = {_key(r): r for r in before if r.source == source}
    if kept:
        return SourceChanges(source, 0, 0, 0, len(old), kept=True)
    new = {_key(r): r for r in after if r.source == source}
    both = old.keys() & new.keys()
    changed = sum(
        1
        for k in both
        if (round(old[k].strength, 9), old[k].reason) != (round(new[k].strength, 9), new[k].reason)
    )
    return SourceChanges(
        source, len(new.keys() - old.keys()), len(old.keys() - new.keys()), changed, len(both) - changed
    )


def _key(relation: Relation) -> _Key:
    return (relation.anchor, relation.complement, relation.level, relation.source)
