"""`xsell catalog import`: compare a product file with the catalog, then (unless a dry run) apply it.

An import says what it will do before it does it: products added, updated, left as
they were and (with `replace`) removed, and whether the demo store goes. The demo
never mixes with a real catalog: the first real import removes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from logs.catalog_files import ProductFile
from logs.catalog_store import CatalogStore
from scripts.demo_store import demo_skus, remove_demo

__all__ = ["ImportPlan", "apply_import", "plan_import"]


@dataclass(frozen=True, slots=True)
class ImportPlan:
    """What importing a file would change in the catalog."""

    file: ProductFile
    added: tuple[str, ...]
    updated: tuple[str, ...]
    unchanged: int
    removed: tuple[str, ...]  # missing from the file, with replace
    kept: int  # missing from the file, kept without replace
    demo_products: int  # the demo store's products this import removes

    def lines(self, *, applied: bool) -> list[str]:
        """Describe the plan in the tense it happened (or would happen) in."""
        will = "" if applied else "would be "
        lines = [
            f"{len(self.file.products)} products read ({self.file.format}): {len(self.added)} {will}added,"
            f" {len(self.updated)} {will}updated, {self.unchanged} unchanged"
        ]
        if self.removed:
            lines.append(f"{len(self.removed)} products not in the file {will}removed: {_few(self.removed)}")
        elif self.kept:
            lines.append(f"{self.kept} products not in the file kept (--replace removes them)")
        if self.demo_products:
            lines.append(
                f"demo store {will}removed: {self.demo_products} products with its relations and orders"
            )
        return lines + [f"note: {note}" for note in self.file.notes]


def plan_import(catalog: CatalogStore, file: ProductFile, *, replace: bool) -> ImportPlan:
    """Compare `file` with the catalog; change nothing."""
    demo = demo_skus(catalog)
    current = {sku: p for sku, p in catalog.all_products().items() if sku not in demo}
    incoming = {p.sku: p for p in file.products}
    added = tuple(sku for sku in incoming if sku not in current)
    updated = tuple(sku for sku, p in incoming.items() if sku in current and current[sku] != p)
    missing = tuple(sorted(set(current) - set(incoming)))
    return ImportPlan(
        file=file,
        added=added,
        updated=updated,
        unchanged=len(incoming) - len(added) - len(updated),
        removed=missing if replace else (),
        kept=0 if replace else len(missing),
        demo_products=len(demo),
    )


def apply_import(catalog: CatalogStore, plan: ImportPlan) -> tuple[int, int]:
    """Remove the demo store (if present), apply the plan; return the demo (products, relations) removed."""
    removed_demo = remove_demo(catalog)
    if plan.removed:
        catalog.delete_products(plan.removed)
    catalog.upsert_products(plan.file.products)
    return removed_demo


def _few(skus: tuple[str, ...], shown: int = 5) -> str:
    more = f" and {len(skus) - shown} more" if len(skus) > shown else ""
    return ", ".join(skus[:shown]) + more
