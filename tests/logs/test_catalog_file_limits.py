"""Product files with numbers past what the catalog can hold: refused naming the line, not a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from logs.catalog_files import CatalogFileError, read_products


@pytest.mark.parametrize("stock", ["1e300", "9223372036854775808", "1e16"])
def test_a_stock_past_the_limit_is_refused_naming_the_line(tmp_path: Path, stock: str) -> None:
    path = tmp_path / "products.csv"
    path.write_text(f"sku,title,category,price,stock\nA1,Tripod,photo,10,2\nA2,Bag,carry,5,{stock}\n")
    with pytest.raises(CatalogFileError, match="line 3: stock .* must be a whole number from 0 to"):
        read_products(path)


def test_a_large_real_stock_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "products.jsonl"
    path.write_text('{"sku": "A1", "title": "Tripod", "category": "photo", "price": 10, "stock": 1000000}\n')
    assert [p.stock for p in read_products(path).products] == [1_000_000]
