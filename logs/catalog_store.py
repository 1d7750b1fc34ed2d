"""CatalogStore: products, relations and their reviews, in the log's database.

Rows the bundled demo store wrote carry ``demo = 1``, so a real catalog never mixes
with it: the first real import removes exactly those (scripts/catalog_import.py).
The SQL is the part SQLite and PostgreSQL share (docs/scaling.md): upserts name
their key, counts come from each statement's rowcount.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from logs.db import in_chunks, transaction
from logs.dialect import SQLITE
from logs.store import LogStore
from policies.offers.catalog import Product, Relation

__all__ = ["DEMO_STATE_KEY", "UNKNOWN_SKUS_COUNTER", "CatalogStore"]

DEMO_STATE_KEY = "catalog_demo"  # in `control`: unset, "loaded" or "removed"
UNKNOWN_SKUS_COUNTER = "offers_unknown_cart_skus"
RELATION_SOURCES = ("rule", "co-purchase")
_RELATION_COLUMNS = (
    "anchor",
    "complement",
    "level",
    "source",
    "strength",
    "reason",
    "support",
    "confidence",
    "lift",
    "demo",
)
# Upserts in the shared spelling (``?`` placeholders; the connection translates them).
_UPSERT_RELATION = SQLITE.upsert("relations", _RELATION_COLUMNS, ("anchor", "complement", "level", "source"))
_UPSERT_REVIEW = SQLITE.upsert(
    "relation_reviews", ("anchor", "complement", "status", "note", "reviewed_at"), ("anchor", "complement")
)


class CatalogStore:
    """Read and write the catalog beside the decision log."""

    def __init__(self, store: LogStore):
        self.store = store

    def upsert_products(self, products: Iterable[Product], *, demo: bool = False) -> int:
        """Insert or update products by sku; return how many were written."""
        rows = [
            (
                p.sku,
                p.title,
                p.category,
                p.family,
                p.price,
                orjson.dumps(list(p.tags)).decode(),
                p.stock,
                int(demo),  # an INTEGER column: PostgreSQL takes no bool for it
            )
            for p in products
        ]

        def write() -> int:
            with transaction(self.store.conn) as conn:
                conn.executemany(
                    "INSERT INTO products (sku, title, category, family, price, tags, stock, demo)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sku) DO UPDATE SET title = excluded.title,"
                    " category = excluded.category, family = excluded.family, price = excluded.price,"
                    " tags = excluded.tags, stock = excluded.stock, demo = excluded.demo",
                    rows,
                )
            return len(rows)

        return self.store.retry(write)

    def products(self, skus: Iterable[str]) -> dict[str, Product]:
        """Return the known products among `skus`."""
        wanted = list(dict.fromkeys(skus))
        if not wanted:
            return {}
        marks = ", ".join("?" * len(wanted))
        rows = self._read(f"SELECT * FROM products WHERE sku IN ({marks})", wanted)
        return {r["sku"]: _product(r) for r in rows}

    def in_categories(self, categories: Iterable[str], *, per_category: int) -> list[Product]:
        """Return the most popular in-stock products of each category."""
        found: list[Product] = []
        for category in dict.fromkeys(categories):
            rows = self._read(
                "SELECT * FROM products WHERE category = ? AND stock > 0"
                " ORDER BY popularity DESC, sku LIMIT ?",
                [category, per_category],
            )
            found += [_product(r) for r in rows]
        return found

    def popular(self, *, limit: int, families: Sequence[str] = ()) -> list[Product]:
        """Return the most popular in-stock products (of `families`, when given)."""
        sql, params = "SELECT * FROM products WHERE stock > 0", []
        if families:
            sql += f" AND family IN ({', '.join('?' * len(families))})"
            params += list(families)
        rows = self._read(sql + " ORDER BY popularity DESC, sku LIMIT ?", [*params, limit])
        return [_product(r) for r in rows]

    def page(self, *, category: str | None, offset: int, limit: int) -> tuple[list[Product], int]:
        """Return one page of products (by sku) and the total matching."""
        where, params = ("WHERE category = ?", [category]) if category else ("", [])
        total = self._read(f"SELECT count(*) AS n FROM products {where}", params)[0]["n"]
        rows = self._read(
            f"SELECT * FROM products {where} ORDER BY sku LIMIT ? OFFSET ?", [*params, limit, offset]
        )
        return [_product(r) for r in rows], int(total)

    def set_popularity(self, counts: dict[str, int]) -> None:
        """Record how many orders contained each sku."""

        def write() -> None:
            with transaction(self.store.conn) as conn:
                conn.execute("UPDATE products SET popularity = 0")
                conn.executemany(
                    "UPDATE products SET popularity = ? WHERE sku = ?", [(n, s) for s, n in counts.items()]
                )

        self.store.retry(write)

    def all_products(self) -> dict[str, Product]:
        """Return every product by sku (an import compares the file against these)."""
        return {r["sku"]: _product(r) for r in self._read("SELECT * FROM products ORDER BY sku", [])}

    def delete_products(self, skus: Iterable[str]) -> tuple[int, int]:
        """Delete products and the sku relations that name them; return (products, relations) deleted."""
        wanted = list(dict.fromkeys(skus))

        def write() -> tuple[int, int]:
            products = relations = 0
            with transaction(self.store.conn) as conn:
                for chunk, marks in in_chunks(wanted):
                    products += conn.execute(f"DELETE FROM products WHERE sku IN ({marks})", chunk).rowcount
                    relations += conn.execute(
                        f"DELETE FROM relations WHERE level = 'sku'"
                        f" AND (anchor IN ({marks}) OR complement IN ({marks}))",
                        chunk + chunk,
                    ).rowcount
            return products, relations

        return self.store.retry(write)

    def replace_relations(
        self, relations: Sequence[Relation], *, sources: Sequence[str] = RELATION_SOURCES, demo: bool = False
    ) -> None:
        """Replace the relations of `sources` (by default all) with `relations`; reviews are kept."""
        marks = ", ".join("?" * len(sources))

        def write() -> None:
            with transaction(self.store.conn) as conn:
                conn.execute(f"DELETE FROM relations WHERE source IN ({marks})", list(sources))
                conn.executemany(
                    _UPSERT_RELATION,
                    [
                        (
                            r.anchor,
                            r.complement,
                            r.level,
                            r.source,
                            r.strength,
                            r.reason,
                            r.support,
                            r.confidence,
                            r.lift,
                            int(demo),
                        )
                        for r in relations
                    ],
                )

        self.store.retry(write)

    def relations(self, anchors: Iterable[str] | None = None) -> list[Relation]:
        """Return relations (from `anchors` only, when given) with their review status."""
        sql = (
            "SELECT r.*, v.status AS review FROM relations r LEFT JOIN relation_reviews v"
            " ON v.anchor = r.anchor AND v.complement = r.complement"
        )
        params: list[object] = []
        if anchors is not None:
            wanted = list(dict.fromkeys(anchors))
            if not wanted:
                return []
            sql += f" WHERE r.anchor IN ({', '.join('?' * len(wanted))})"
            params = [*wanted]
        rows = self._read(sql + " ORDER BY r.anchor, r.strength DESC", params)
        return [
            Relation(
                r["anchor"],
                r["complement"],
                r["level"],
                r["source"],
                r["strength"],
                r["reason"],
                r["support"],
                r["confidence"],
                r["lift"],
                r["review"] or "normal",
            )
            for r in rows
        ]

    def review(self, anchor: str, complement: str, status: str | None, note: str | None = None) -> None:
        """Block or pin a pair (or clear its review with None)."""

        def write() -> None:
            with transaction(self.store.conn) as conn:
                if status is None:
                    conn.execute(
                        "DELETE FROM relation_reviews WHERE anchor = ? AND complement = ?",
                        (anchor, complement),
                    )
                else:
                    conn.execute(_UPSERT_REVIEW, (anchor, complement, status, note, time.time()))

        self.store.retry(write)

    def blocked_pairs(self) -> set[tuple[str, str]]:
        """Return every (anchor, complement) an operator blocked."""
        rows = self._read("SELECT anchor, complement FROM relation_reviews WHERE status = 'blocked'", [])
        return {(r["anchor"], r["complement"]) for r in rows}

    def count(self) -> int:
        """Return how many products the catalog holds."""
        return int(self._read("SELECT count(*) AS n FROM products", [])[0]["n"])

    def demo_counts(self) -> tuple[int, int]:
        """Return how many products and relations came from the demo store."""
        row = self._read(
            "SELECT (SELECT count(*) FROM products WHERE demo = 1) AS p,"
            " (SELECT count(*) FROM relations WHERE demo = 1) AS r",
            [],
        )[0]
        return int(row["p"]), int(row["r"])

    def demo_skus(self) -> set[str]:
        """Return the skus of products the demo store wrote."""
        return {r["sku"] for r in self._read("SELECT sku FROM products WHERE demo = 1", [])}

    def mark_demo(self, skus: Iterable[str], rule_pairs: Iterable[tuple[str, str]]) -> None:
        """Mark products (and the relations naming them, and these rule pairs) as the demo's.

        For logs whose demo store was loaded before rows carried the mark.
        """
        wanted = list(dict.fromkeys(skus))
        pairs = list(rule_pairs)

        def write() -> None:
            with transaction(self.store.conn) as conn:
                for chunk, marks in in_chunks(wanted):
                    conn.execute(f"UPDATE products SET demo = 1 WHERE sku IN ({marks})", chunk)
                    conn.execute(
                        f"UPDATE relations SET demo = 1 WHERE level = 'sku'"
                        f" AND (anchor IN ({marks}) OR complement IN ({marks}))",
                        chunk + chunk,
                    )
                conn.executemany(
                    "UPDATE relations SET demo = 1 WHERE level = 'category' AND source = 'rule'"
                    " AND anchor = ? AND complement = ?",
                    pairs,
                )

        self.store.retry(write)

    def remove_demo(self) -> tuple[int, int]:
        """Delete the demo store's products and relations; return how many of each went.

        Their order history lives on only as popularity, which goes with the products.
        """

        def write() -> tuple[int, int]:
            with transaction(self.store.conn) as conn:
                products = conn.execute("DELETE FROM products WHERE demo = 1").rowcount
                relations = conn.execute("DELETE FROM relations WHERE demo = 1").rowcount
                _set_control(conn, DEMO_STATE_KEY, "removed")
            return products, relations

        return self.store.retry(write)

    def demo_state(self) -> str | None:
        """Return "loaded" or "removed" once the demo store was ever loaded, else None."""
        rows = self._read("SELECT value FROM control WHERE key = ?", [DEMO_STATE_KEY])
        return str(rows[0]["value"]) if rows else None

    def set_demo_state(self, state: str) -> None:
        """Record that the demo store was loaded (or removed), so it is never loaded again."""

        def write() -> None:
            with transaction(self.store.conn) as conn:
                _set_control(conn, DEMO_STATE_KEY, state)

        self.store.retry(write)

    def count_unknown_skus(self, lines: int) -> None:
        """Add cart lines that named a sku the catalog lacks to the count /metrics reports."""

        def write() -> None:
            with transaction(self.store.conn) as conn:
                conn.execute(
                    "INSERT INTO counters (name, value) VALUES (?, ?)"
                    # Qualified: PostgreSQL finds a bare `value` ambiguous beside `excluded`.
                    " ON CONFLICT (name) DO UPDATE SET value = counters.value + excluded.value",
                    (UNKNOWN_SKUS_COUNTER, lines),
                )

        self.store.retry(write)

    def unknown_skus_counted(self) -> int:
        """Return how many cart lines ever named a sku the catalog lacks."""
        rows = self._read("SELECT value FROM counters WHERE name = ?", [UNKNOWN_SKUS_COUNTER])
        return int(rows[0]["value"]) if rows else 0

    def _read(self, sql: str, params: Sequence[object]) -> list[Any]:
        return self.store.retry(lambda: self.store.conn.execute(sql, list(params)).fetchall())


def _set_control(conn: Any, key: str, value: str) -> None:
    conn.execute(
        "INSERT INTO control (key, value, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (key, value, time.time()),
    )


def _product(row: Any) -> Product:
    return Product(
        sku=row["sku"],
        title=row["title"],
        category=row["category"],
        price=row["price"],
        family=row["family"],
        tags=tuple(orjson.loads(row["tags"])),
        stock=row["stock"],
    )
