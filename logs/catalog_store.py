"""CatalogStore: products, relations and their reviews, in the log's SQLite file."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import orjson

from logs.db import retrying, transaction
from logs.store import LogStore
from policies.offers.catalog import Product, Relation

__all__ = ["CatalogStore"]


class CatalogStore:
    """Read and write the catalog beside the decision log."""

    def __init__(self, store: LogStore):
        self.store = store

    @property
    def _deadline(self) -> float:
        return self.store.options.busy_timeout_seconds

    def upsert_products(self, products: Iterable[Product]) -> int:
        """Insert or update products by sku; return how many were written."""
        rows = [
            (p.sku, p.title, p.category, p.family, p.price, orjson.dumps(list(p.tags)).decode(), p.stock)
            for p in products
        ]

        def write() -> int:
            with transaction(self.store.conn) as conn:
                conn.executemany(
                    "INSERT INTO products (sku, title, category, family, price, tags, stock)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sku) DO UPDATE SET title = excluded.title,"
                    " category = excluded.category, family = excluded.family, price = excluded.price,"
                    " tags = excluded.tags, stock = excluded.stock",
                    rows,
                )
            return len(rows)

        return retrying(write, deadline_seconds=self._deadline)

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

        retrying(write, deadline_seconds=self._deadline)

    def replace_relations(self, relations: Sequence[Relation]) -> None:
        """Replace every relation (rules and mined) at once; reviews are kept."""

        def write() -> None:
            with transaction(self.store.conn) as conn:
                conn.execute("DELETE FROM relations")
                conn.executemany(
                    "INSERT OR REPLACE INTO relations (anchor, complement, level, source, strength, reason,"
                    " support, confidence, lift) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                        )
                        for r in relations
                    ],
                )

        retrying(write, deadline_seconds=self._deadline)

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
            params = wanted
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
                    conn.execute(
                        "INSERT OR REPLACE INTO relation_reviews"
                        " (anchor, complement, status, note, reviewed_at) VALUES (?, ?, ?, ?, ?)",
                        (anchor, complement, status, note, time.time()),
                    )

        retrying(write, deadline_seconds=self._deadline)

    def blocked_pairs(self) -> set[tuple[str, str]]:
        """Return every (anchor, complement) an operator blocked."""
        rows = self._read("SELECT anchor, complement FROM relation_reviews WHERE status = 'blocked'", [])
        return {(r["anchor"], r["complement"]) for r in rows}

    def count(self) -> int:
        """Return how many products the catalog holds."""
        return int(self._read("SELECT count(*) AS n FROM products", [])[0]["n"])

    def _read(self, sql: str, params: Sequence[object]) -> list:
        return retrying(
            lambda: self.store.conn.execute(sql, list(params)).fetchall(), deadline_seconds=self._deadline
        )


def _product(row) -> Product:
    return Product(
        sku=row["sku"],
        title=row["title"],
        category=row["category"],
        price=row["price"],
        family=row["family"],
        tags=tuple(orjson.loads(row["tags"])),
        stock=row["stock"],
    )
