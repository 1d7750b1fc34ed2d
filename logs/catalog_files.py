"""Read product and order files (CSV or JSON) with errors that name the line and field."""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from policies.offers.catalog import Product

__all__ = ["CatalogFileError", "read_orders", "read_products"]

PRODUCT_FIELDS = ("sku", "title", "category", "price")


class CatalogFileError(ValueError):
    """A product or order file cannot be read; the message says where and why."""


def read_products(path: Path) -> list[Product]:
    """Read products: CSV with a header, or a JSON list of objects.

    Required: sku, title, category, price. Optional: family, tags (list, or
    ``|``-separated in CSV), stock (default 0 = not offered).
    """
    rows = _json_rows(path) if path.suffix.lower() == ".json" else _csv_rows(path)
    products: dict[str, Product] = {}
    for where, row in rows:
        missing = [f for f in PRODUCT_FIELDS if row.get(f) in (None, "")]
        if missing:
            raise CatalogFileError(f"{path} {where}: missing {', '.join(missing)}")
        sku = str(row["sku"]).strip()
        price = _number(row["price"], f"{path} {where}: price")
        if price < 0:
            raise CatalogFileError(f"{path} {where}: price {price} is negative")
        stock = int(_number(row.get("stock") or 0, f"{path} {where}: stock"))
        tags = row.get("tags") or []
        if isinstance(tags, str):
            tags = [t for t in tags.split("|") if t]
        if sku in products:
            raise CatalogFileError(f"{path} {where}: sku {sku!r} appears twice")
        products[sku] = Product(
            sku=sku,
            title=str(row["title"]).strip(),
            category=str(row["category"]).strip(),
            price=price,
            family=str(row.get("family") or "").strip(),
            tags=tuple(str(t) for t in tags),
            stock=max(stock, 0),
        )
    if not products:
        raise CatalogFileError(f"{path}: no products")
    return list(products.values())


def read_orders(path: Path) -> list[list[str]]:
    """Read order lines (CSV with order_id and sku columns) into one sku list per order."""
    orders: dict[str, list[str]] = {}
    for where, row in _csv_rows(path):
        order_id, sku = row.get("order_id"), row.get("sku")
        if not order_id or not sku:
            raise CatalogFileError(f"{path} {where}: order_id and sku are required")
        orders.setdefault(order_id, []).append(sku.strip())
    return list(orders.values())


def _number(value: Any, where: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CatalogFileError(f"{where} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise CatalogFileError(f"{where} {value!r} is not finite")
    return number


def _csv_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        with path.open(newline="") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                yield f"line {line}", row
    except OSError as error:
        raise CatalogFileError(f"{path}: {error.strerror}") from error


def _json_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CatalogFileError(f"{path}: {error}") from error
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise CatalogFileError(f"{path}: expected a JSON list of product objects")
    for index, row in enumerate(data):
        yield f"item {index}", row
