"""Read product and order files (CSV, JSON Lines or JSON) with errors that name the line and field.

The product schema (docs/offers.md, "Bring your own catalog"):

========  ========  =====================================================================
column    required  meaning
========  ========  =====================================================================
sku       yes       1 to 64 characters, no spaces or control characters (as the API takes)
title     yes       shown to shoppers, up to 300 characters
category  yes       the kind of product (``memory_card``), up to 64 characters
price     yes       a number >= 0
family    no        the aisle (``photo``); default: none
tags      no        CSV: ``|``-separated (``photo|sale``); JSON: a list of strings
stock     no        a whole number >= 0; 0 is never offered. No column: all in stock
========  ========  =====================================================================

Reading never guesses quietly: every column it ignored and every default it applied
comes back as a note for the operator to read before the import is applied.
"""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policies.offers.catalog import Product

__all__ = [
    "ASSUMED_STOCK",
    "PRODUCT_COLUMNS",
    "CatalogFileError",
    "ProductFile",
    "read_orders",
    "read_products",
]

REQUIRED = ("sku", "title", "category", "price")
PRODUCT_COLUMNS = (*REQUIRED, "family", "tags", "stock")
ASSUMED_STOCK = 1  # "in stock" when the file says nothing about stock
_SKU = re.compile(r"^[^\s\x00-\x1f\x7f]{1,64}$")  # what POST /v1/offers accepts
_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")
MAX_TITLE = 300
MAX_TAGS = 20
MAX_STOCK = 10**15  # far beyond any shelf, well inside SQLite's integers


class CatalogFileError(ValueError):
    """A product or order file cannot be read; the message says where and why."""


@dataclass(slots=True)
class ProductFile:
    """The products a file holds, how it was read, and what was assumed on the way."""

    products: list[Product]
    format: str  # csv, jsonl or json
    notes: list[str] = field(default_factory=list)  # ignored columns, defaults applied


def read_products(path: Path) -> ProductFile:
    """Read products by the file's suffix: .csv, .jsonl/.ndjson (one object a line) or .json (a list).

    Raises
    ------
    CatalogFileError
        The file cannot be read, or a row breaks the schema (the message names the
        line or item and the field).
    """
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        kind, rows = "jsonl", _jsonl_rows(path)
    elif suffix == ".json":
        kind, rows = "json", _json_rows(path)
    elif suffix in (".csv", ".txt", ""):
        kind, rows = "csv", _csv_rows(path)
    else:
        raise CatalogFileError(f"{path}: unknown format {suffix!r}; use .csv, .jsonl or .json")
    found = ProductFile([], kind)
    products: dict[str, Product] = {}
    seen_columns: set[str] = set()
    no_stock: list[str] = []
    comma_tags: list[str] = []
    for where, row in rows:
        seen_columns.update(row)
        product, stock_given = _product(row, f"{path} {where}", csv_tags=kind == "csv")
        if not stock_given:
            no_stock.append(where)
        if kind == "csv" and "," in str(row.get("tags") or "") and "|" not in str(row.get("tags")):
            comma_tags.append(where)
        if product.sku in products:
            raise CatalogFileError(f"{path} {where}: sku {product.sku!r} appears twice")
        products[product.sku] = product
    if not products:
        raise CatalogFileError(f"{path}: no products")
    found.products = list(products.values())
    found.notes = _notes(seen_columns, no_stock, comma_tags, len(products))
    return found


def _product(row: dict[str, Any], where: str, *, csv_tags: bool) -> tuple[Product, bool]:
    missing = [f for f in REQUIRED if row.get(f) in (None, "")]
    if missing:
        raise CatalogFileError(f"{where}: missing {', '.join(missing)}")
    sku = str(row["sku"]).strip()
    if not _SKU.match(sku):
        raise CatalogFileError(f"{where}: sku {sku[:80]!r} must be 1-64 characters without spaces")
    title = str(row["title"]).strip()
    if len(title) > MAX_TITLE:
        raise CatalogFileError(f"{where}: title is longer than {MAX_TITLE} characters")
    category, family = _name(row["category"], where, "category"), _name(row.get("family"), where, "family")
    price = _number(row["price"], f"{where}: price")
    if price < 0:
        raise CatalogFileError(f"{where}: price {price} is negative")
    stock_given = row.get("stock") not in (None, "")
    stock = _stock(row["stock"], where) if stock_given else ASSUMED_STOCK
    product = Product(sku, title, category, price, family, _tags(row.get("tags"), where, csv_tags), stock)
    return product, stock_given


def _notes(columns: set[str], no_stock: list[str], comma_tags: list[str], total: int) -> list[str]:
    notes = []
    ignored = sorted(columns - set(PRODUCT_COLUMNS))
    if ignored:
        notes.append(f"ignored columns: {', '.join(ignored)} (xsell reads {', '.join(PRODUCT_COLUMNS)})")
    if "stock" not in columns:
        notes.append(
            f"no stock column: all {total} products assumed in stock"
            " (add stock, 0 for products never to offer)"
        )
    elif no_stock:
        notes.append(f"{len(no_stock)} products have no stock value, assumed in stock: {_first(no_stock)}")
    if "family" not in columns:
        notes.append("no family column: products have no family (the popular fallback cannot stay in one)")
    if comma_tags:
        notes.append(
            f"tags are |-separated: {len(comma_tags)} rows hold commas, each read as one tag: "
            f"{_first(comma_tags)}"
        )
    return notes


def _first(wheres: list[str], shown: int = 3) -> str:
    more = f" and {len(wheres) - shown} more" if len(wheres) > shown else ""
    return ", ".join(wheres[:shown]) + more


def _name(value: Any, where: str, field_name: str) -> str:
    text = str(value or "").strip()
    if text and not _NAME.match(text):
        raise CatalogFileError(f"{where}: {field_name} must be at most 64 characters, no control characters")
    return text


def _stock(value: Any, where: str) -> int:
    number = _number(value, f"{where}: stock")
    if number < 0 or number != int(number) or number > MAX_STOCK:  # 1e300 overflowed SQLite
        raise CatalogFileError(f"{where}: stock {value!r} must be a whole number from 0 to {MAX_STOCK:,}")
    return int(number)


def _tags(value: Any, where: str, csv_tags: bool) -> tuple[str, ...]:
    if value in (None, ""):
        return ()
    if isinstance(value, str) and csv_tags:
        tags = [t.strip() for t in value.split("|") if t.strip()]
    elif isinstance(value, list) and all(isinstance(t, str) for t in value):
        tags = [t.strip() for t in value if t.strip()]
    else:
        raise CatalogFileError(f"{where}: tags must be a list of strings")
    if len(tags) > MAX_TAGS or any(not _NAME.match(t) for t in tags):
        raise CatalogFileError(f"{where}: tags: at most {MAX_TAGS}, each at most 64 characters")
    return tuple(tags)


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
    if isinstance(value, bool):
        raise CatalogFileError(f"{where} {value!r} is not a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CatalogFileError(f"{where} {value!r} is not a number") from None
    if not math.isfinite(number):
        raise CatalogFileError(f"{where} {value!r} is not finite")
    return number


def _csv_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            for line, row in enumerate(reader, start=2):
                if None in row:
                    raise CatalogFileError(f"{path} line {line}: more values than the header has columns")
                yield f"line {line}", {k.strip(): v for k, v in row.items() if k is not None}
    except OSError as error:
        raise CatalogFileError(f"{path}: {error.strerror}") from error
    except (UnicodeDecodeError, csv.Error) as error:
        raise CatalogFileError(f"{path}: not a UTF-8 CSV file ({error})") from error


def _jsonl_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        with path.open(encoding="utf-8") as handle:
            for line, text in enumerate(handle, start=1):
                if not text.strip():
                    continue
                try:
                    row = json.loads(text)
                except ValueError as error:
                    raise CatalogFileError(f"{path} line {line}: not JSON ({error})") from None
                if not isinstance(row, dict):
                    raise CatalogFileError(f"{path} line {line}: expected a JSON object")
                yield f"line {line}", row
    except OSError as error:
        raise CatalogFileError(f"{path}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise CatalogFileError(f"{path}: not UTF-8 ({error})") from error


def _json_rows(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise CatalogFileError(f"{path}: {error}") from error
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise CatalogFileError(f"{path}: expected a JSON list of product objects (or use .jsonl)")
    for index, row in enumerate(data):
        yield f"item {index}", row
