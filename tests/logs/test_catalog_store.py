"""CatalogStore on SQLite and PostgreSQL (tests/logs/conftest.py): upserts, counts, demo marks."""

from __future__ import annotations

from logs.catalog_store import CatalogStore
from logs.store import LogStore
from policies.offers.catalog import Product, Relation


def _product(sku: str, category: str = "tripod", *, stock: int = 3, family: str = "photo") -> Product:
    return Product(sku, f"{sku} title", category, 10.0, family, ("t",), stock)


def _relation(anchor: str, complement: str, level: str = "sku", strength: float = 0.5) -> Relation:
    return Relation(anchor, complement, level, "co-purchase", strength, "with {anchor}", 0.1, strength, 2.0)


def test_products_upsert_by_sku_and_read_back(store: LogStore) -> None:
    catalog = CatalogStore(store)
    assert catalog.upsert_products([_product("a"), _product("b", "bag")]) == 2
    catalog.upsert_products([Product("a", "new title", "tripod", 12.5, "photo", ("x", "y"), 0)])
    found = catalog.products(["a", "b", "missing"])
    assert found["a"] == Product("a", "new title", "tripod", 12.5, "photo", ("x", "y"), 0)
    assert set(found) == {"a", "b"} and catalog.count() == 2
    catalog.set_popularity({"b": 7})
    assert [p.sku for p in catalog.popular(limit=5)] == ["b"]  # "a" is out of stock
    assert [p.sku for p in catalog.popular(limit=5, families=["kitchen"])] == []
    assert [p.sku for p in catalog.in_categories(["bag", "tripod"], per_category=2)] == ["b"]
    page, total = catalog.page(category=None, offset=1, limit=1)
    assert [p.sku for p in page] == ["b"] and total == 2


def test_deleting_products_counts_them_and_the_relations_naming_them(store: LogStore) -> None:
    catalog = CatalogStore(store)
    catalog.upsert_products([_product(sku) for sku in ("a", "b", "c")])
    pairs = [("a", "b"), ("c", "a"), ("b", "c")]
    catalog.replace_relations([*(_relation(*p) for p in pairs), _relation("tripod", "bag", "category")])
    assert catalog.delete_products(["a", "a", "zzz"]) == (1, 2)
    assert {(r.anchor, r.complement) for r in catalog.relations()} == {("b", "c"), ("tripod", "bag")}
    assert catalog.delete_products([]) == (0, 0)


def test_replacing_relations_keeps_the_last_of_a_pair_and_reviews_persist(store: LogStore) -> None:
    catalog = CatalogStore(store)
    catalog.replace_relations([_relation("a", "b", strength=0.2), _relation("a", "b", strength=0.9)])
    assert [r.strength for r in catalog.relations(["a"])] == [0.9]
    catalog.review("a", "b", "blocked", "not a match")
    catalog.review("a", "b", "pinned")  # a second review replaces the first
    catalog.replace_relations([_relation("a", "b", strength=0.4)])
    assert [(r.strength, r.status) for r in catalog.relations(["a"])] == [(0.4, "pinned")]
    catalog.review("a", "c", "blocked")
    assert catalog.blocked_pairs() == {("a", "c")}
    catalog.review("a", "c", None)
    assert catalog.blocked_pairs() == set()


def test_demo_rows_are_marked_counted_and_removed(store: LogStore) -> None:
    catalog = CatalogStore(store)
    catalog.upsert_products([_product("real"), _product("d1")])
    catalog.upsert_products([_product("d2")], demo=True)
    rule = Relation("tripod", "bag", "category", "rule", 0.5, "with {anchor}")
    catalog.replace_relations([_relation("real", "d1"), _relation("real", "other"), rule])
    assert catalog.demo_counts() == (1, 0)
    catalog.mark_demo(["d1", "d1"], [("tripod", "bag")])
    assert catalog.demo_counts() == (2, 2) and catalog.demo_skus() == {"d1", "d2"}
    catalog.set_demo_state("loaded")
    assert catalog.demo_state() == "loaded"
    assert catalog.remove_demo() == (2, 2)
    assert catalog.demo_state() == "removed" and set(catalog.all_products()) == {"real"}
    assert [(r.anchor, r.complement) for r in catalog.relations()] == [("real", "other")]


def test_unknown_sku_counts_add_up(store: LogStore) -> None:
    catalog = CatalogStore(store)
    assert catalog.unknown_skus_counted() == 0
    catalog.count_unknown_skus(2)
    catalog.count_unknown_skus(3)
    assert catalog.unknown_skus_counted() == 5
