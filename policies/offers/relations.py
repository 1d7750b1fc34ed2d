"""Find complements: mine co-purchases from orders, and read the hand-kept rules.

Mining (Agrawal & Srikant's association rules, restricted to pairs): for products
A and B over N orders,

- support(A→B) = orders with both / N
- confidence(A→B) = orders with both / orders with A
- lift(A→B) = confidence(A→B) / (orders with B / N)

A pair is kept when its support, confidence and lift reach the thresholds (lift
> 1 means B is bought with A more often than on its own). Pairs are also rolled
up to categories (camera → memory_card), so a new camera inherits what buyers of
other cameras added.
"""

from __future__ import annotations

import itertools
import string
import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from policies.offers.catalog import Product, Relation

__all__ = ["MiningThresholds", "RulesError", "mine_co_purchases", "read_rules"]

DEFAULT_REASON = "Often bought with the {anchor} {where}"
PROGRESS_STEP = 1000  # orders between progress reports
REASON_PLACEHOLDERS = frozenset({"anchor", "where", "family"})


class RulesError(ValueError):
    """The rules file cannot be used; the message names the rule and the problem."""


@dataclass(frozen=True, slots=True)
class MiningThresholds:
    min_support: float = 0.002
    min_confidence: float = 0.05
    min_lift: float = 1.2
    min_orders: int = 3  # orders containing the pair


def mine_co_purchases(
    orders: Iterable[Sequence[str]],
    products: Mapping[str, Product],
    thresholds: MiningThresholds,
    progress: Callable[[int], None] | None = None,
) -> list[Relation]:
    """Return sku→sku and category→category relations that pass the thresholds.

    `progress`, when given, is told how many orders each pass has got through
    (two passes: skus, then categories), so a long build can show how far it is.
    """
    tell = progress or (lambda done: None)
    all_baskets = [sorted({sku for sku in order if sku in products}) for order in orders]
    baskets = [b for b in all_baskets if b]
    total = len(baskets)
    if total == 0:
        tell(2 * len(all_baskets))
        return []
    tell(len(all_baskets) - total)  # orders of unknown skus only: nothing to count
    relations = _pairs(baskets, total, thresholds, level="sku", tell=tell)
    tell(len(all_baskets) - total)
    category_baskets = [sorted({products[sku].category for sku in b}) for b in baskets]
    relations += _pairs(category_baskets, total, thresholds, level="category", tell=tell)
    return relations


def _pairs(
    baskets: list[list[str]],
    total: int,
    thresholds: MiningThresholds,
    *,
    level: str,
    tell: Callable[[int], None],
) -> list[Relation]:
    singles: Counter[str] = Counter(item for basket in baskets for item in basket)
    pairs: Counter[tuple[str, str]] = Counter()
    for start in range(0, len(baskets), PROGRESS_STEP):
        chunk = baskets[start : start + PROGRESS_STEP]
        pairs.update(pair for basket in chunk for pair in itertools.permutations(basket, 2))
        tell(len(chunk))
    found = []
    for (a, b), both in pairs.items():
        support = both / total
        confidence = both / singles[a]
        lift = confidence / (singles[b] / total)
        if (
            both >= thresholds.min_orders
            and support >= thresholds.min_support
            and confidence >= thresholds.min_confidence
            and lift >= thresholds.min_lift
        ):
            found.append(
                Relation(
                    anchor=a,
                    complement=b,
                    level=level,
                    source="co-purchase",
                    strength=min(confidence, 1.0),
                    reason=DEFAULT_REASON,
                    support=support,
                    confidence=confidence,
                    lift=lift,
                )
            )
    return found


def read_rules(path: Path) -> list[Relation]:
    """Read the hand-kept complement rules (TOML), e.g.::

    [[rule]]
    anchor = "camera"            # a category in the cart
    complements = ["memory_card", "tripod", "camera_bag"]
    reason = "Stores the photos from the {anchor} {where}"   # optional
    strength = 0.8               # optional, in (0, 1]

    `{anchor}` becomes the title of the product that prompted the offer and `{where}`
    what prompted it: "in your cart", "you viewed" or "you bought before".
    """
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise RulesError(f"{path}: {error}") from error
    relations = []
    for index, rule in enumerate(data.get("rule", []), start=1):
        anchor = rule.get("anchor")
        complements = rule.get("complements")
        if not isinstance(anchor, str) or not anchor:
            raise RulesError(f"{path}: rule {index} needs an anchor category")
        if (
            not isinstance(complements, list)
            or not complements
            or not all(isinstance(c, str) for c in complements)
        ):
            raise RulesError(f"{path}: rule {index} ({anchor}) needs a list of complement categories")
        strength = rule.get("strength", 0.7)
        if not isinstance(strength, int | float) or not 0 < strength <= 1:
            raise RulesError(f"{path}: rule {index} ({anchor}) strength must be in (0, 1]")
        reason = rule.get("reason", DEFAULT_REASON)
        if not isinstance(reason, str) or "{anchor}" not in reason:
            raise RulesError(f"{path}: rule {index} ({anchor}) reason must mention {{anchor}}")
        unknown = _placeholders(reason) - REASON_PLACEHOLDERS
        if unknown:
            raise RulesError(
                f"{path}: rule {index} ({anchor}) reason may use only {{anchor}} and {{where}},"
                f" not {', '.join('{' + name + '}' for name in sorted(unknown))}"
            )
        for complement in complements:
            relations.append(Relation(anchor, complement, "category", "rule", float(strength), reason))
    return relations


def _placeholders(template: str) -> set[str]:
    """Return the names a reason template fills in; a stray brace counts as an unknown name."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return {"(unbalanced brace)"}
    # A format spec or conversion counts as unknown too: {anchor:>300000000} made every
    # offer's reason 300 MB long.
    return {
        name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "")
        for _, name, spec, conv in parsed
        if name is not None
    }
