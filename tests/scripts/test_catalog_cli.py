"""`xsell catalog import` and `xsell relations build|review` on real files and a real log."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from scripts.cli import cli
from scripts.demo_store import RULES_PATH


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The data directory of a service that has made its log (commands refuse a missing one)."""
    from service.resources import open_log_and_registry
    from tests.conftest import make_settings

    store, _ = open_log_and_registry(make_settings(tmp_path))
    store.close()
    monkeypatch.setenv("XSELL_DATA_DIR", str(tmp_path / "var"))
    return tmp_path / "var"


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def write_shop(tmp_path: Path) -> tuple[Path, Path]:
    products = tmp_path / "products.csv"
    products.write_text(
        "sku,title,category,price,family,tags,stock\n"
        "cam-1,Alpha One camera,camera,899,photo,photo|anchor,5\n"
        "cam-2,Nordic Pro camera,camera,1299,photo,photo|anchor,2\n"
        "sd-1,Vanta memory card,memory_card,19.9,photo,photo,40\n"
        "mug-1,Tarn mug,mug,9,kitchen,,10\n"
    )
    orders = tmp_path / "orders.csv"
    rows = ["order_id,sku"]
    for i in range(20):
        rows += [f"o{i},cam-{1 + i % 2}", f"o{i},sd-1"]
    rows += [f"m{i},mug-1" for i in range(20)]
    orders.write_text("\n".join(rows) + "\n")
    return products, orders


def test_import_build_and_review(tmp_path: Path) -> None:
    products, orders = write_shop(tmp_path)
    assert "imported 4 products" in run("catalog", "import", str(products)).output
    result = run("relations", "build", str(orders), "--rules", str(RULES_PATH))
    assert result.exit_code == 0, result.output
    found = json.loads(run("relations", "review", "--anchor", "camera", "--json").stdout)
    mined = [r for r in found if r["source"] == "co-purchase" and r["complement"] == "memory_card"]
    assert mined and mined[0]["lift"] == pytest.approx(2.0)  # sd-1 in 20 of 40 orders, in every camera order
    assert any(r["source"] == "rule" and r["complement"] == "tripod" for r in found)
    result = run("relations", "review", "--block", "camera", "memory_card", "--note", "test")
    assert "camera -> memory_card: blocked" in result.output
    found = json.loads(run("relations", "review", "--anchor", "camera", "--json").stdout)
    assert {r["status"] for r in found if r["complement"] == "memory_card"} == {"blocked"}


def test_json_products_import(tmp_path: Path) -> None:
    path = tmp_path / "products.json"
    path.write_text(
        json.dumps([{"sku": "a", "title": "A", "category": "c", "price": 1, "tags": ["x"], "stock": 1}])
    )
    assert run("catalog", "import", str(path)).exit_code == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("sku,title,category,price\na,A,c,cheap\n", "line 2: price 'cheap' is not a number"),
        ("sku,title,category,price\na,A,c,-1\n", "line 2: price -1.0 is negative"),
        ("sku,title,category\na,A,c\n", "line 2: missing price"),
        ("sku,title,category,price\na,A,c,1\na,B,c,2\n", "line 3: sku 'a' appears twice"),
        ("sku,title,category,price\n", "no products"),
    ],
)
def test_bad_product_files_give_one_clear_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "products.csv"
    path.write_text(content)
    result = run("catalog", "import", str(path))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert message in result.output


def test_bad_orders_and_rules_give_one_clear_line(tmp_path: Path) -> None:
    products, orders = write_shop(tmp_path)
    run("catalog", "import", str(products))
    bad_orders = tmp_path / "bad.csv"
    bad_orders.write_text("order_id,sku\n,cam-1\n")
    assert "order_id and sku are required" in run("relations", "build", str(bad_orders)).output
    bad_rules = tmp_path / "rules.toml"
    bad_rules.write_text('[[rule]]\nanchor = "camera"\n')
    result = run("relations", "build", str(orders), "--rules", str(bad_rules))
    assert result.exit_code == 1 and "needs a list of complement" in result.output


def test_purge_deletes_only_what_is_older_than_the_age(data_dir: Path) -> None:
    import time

    from service.resources import open_log_and_registry
    from tests.conftest import make_settings
    from tests.logs.helpers import decision

    settings = make_settings(data_dir.parent)
    store, _ = open_log_and_registry(settings)
    store.record_decision(decision("old", created_at=time.time() - 100 * 86_400, window=3 * 10**9))
    store.record_feedback("old", "click", None)
    store.record_decision(decision("new"))
    assert "would delete 1 decisions" in run("logs", "purge", "--older-than", "90d", "--dry-run").output
    result = run("logs", "purge", "--older-than", "90d")
    assert result.exit_code == 0, result.output
    assert "decisions: 1" in result.output and "feedback: 1" in result.output
    assert [r[0] for r in store.conn.execute("SELECT event_id FROM decisions")] == ["new"]
    store.close()


@pytest.mark.parametrize("age", ["90", "ninety-d", "-3d", "5w"])
def test_purge_refuses_an_unclear_age(age: str) -> None:
    result = run("logs", "purge", "--older-than", age)
    assert result.exit_code == 2 and "use" in result.output


def catalog_store(data_dir: Path):
    from logs.catalog_store import CatalogStore
    from service.resources import open_log_and_registry
    from tests.conftest import make_settings

    store, _ = open_log_and_registry(make_settings(data_dir.parent))
    return CatalogStore(store)


def test_a_csv_without_stock_is_imported_in_stock_and_says_so(tmp_path: Path, data_dir: Path) -> None:
    path = tmp_path / "shop.csv"
    path.write_text("sku,title,category,price,colour\na,A,c,1,red\nb,B,c,2,blue\n")
    result = run("catalog", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "no stock column: all 2 products assumed in stock" in result.output
    assert "ignored columns: colour" in result.output
    assert "no family column" in result.output
    products = catalog_store(data_dir).all_products()
    assert sorted(products) == ["a", "b"] and all(p.in_stock for p in products.values())


def test_csv_tags_with_commas_are_flagged(tmp_path: Path) -> None:
    path = tmp_path / "shop.csv"
    path.write_text('sku,title,category,price,stock,tags\na,A,c,1,1,"red,sale"\nb,B,c,1,1,red|sale\n')
    result = run("catalog", "import", str(path))
    assert "tags are |-separated: 1 rows hold commas, each read as one tag: line 2" in result.output


def test_json_lines_import_with_errors_naming_the_line(tmp_path: Path, data_dir: Path) -> None:
    path = tmp_path / "shop.jsonl"
    rows = [
        {"sku": "a", "title": "A", "category": "c", "price": 1, "tags": ["x", "y"], "stock": 0},
        {"sku": "b", "title": "B", "category": "c", "price": 2.5, "family": "f", "stock": 3},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    result = run("catalog", "import", str(path))
    assert result.exit_code == 0 and "2 products read (jsonl): 2 added" in result.output
    products = catalog_store(data_dir).all_products()
    assert products["a"].tags == ("x", "y") and not products["a"].in_stock and products["b"].stock == 3
    path.write_text(json.dumps(rows[0]) + "\n{not json\n")
    result = run("catalog", "import", str(path))
    assert result.exit_code == 1 and "line 2: not JSON" in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("sku,title,category,price,stock\na,A,c,1,2.5\n", "line 2: stock '2.5' must be a whole number"),
        ("sku,title,category,price\na b,A,c,1\n", "line 2: sku 'a b' must be 1-64 characters"),
        ("sku,title,category,price\na,A,c,1,extra\n", "line 2: more values than the header"),
    ],
)
def test_more_bad_product_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "products.csv"
    path.write_text(content)
    result = run("catalog", "import", str(path))
    assert result.exit_code == 1 and message in result.output


def test_dry_run_shows_what_would_change_and_changes_nothing(tmp_path: Path, data_dir: Path) -> None:
    products, _ = write_shop(tmp_path)
    run("catalog", "import", str(products))
    changed = tmp_path / "changed.csv"
    changed.write_text(
        "sku,title,category,price,family,tags,stock\n"
        "cam-1,Alpha One camera,camera,799,photo,photo|anchor,5\n"  # cheaper
        "cam-2,Nordic Pro camera,camera,1299,photo,photo|anchor,2\n"
        "bag-1,Kestrel bag,camera_bag,49,photo,photo,7\n"
    )
    before = catalog_store(data_dir).all_products()
    result = run("catalog", "import", str(changed), "--dry-run", "--replace")
    assert result.exit_code == 0, result.output
    assert "3 products read (csv): 1 would be added, 1 would be updated, 1 unchanged" in result.output
    assert "2 products not in the file would be removed: mug-1, sd-1" in result.output
    assert "dry run: nothing changed" in result.output
    assert catalog_store(data_dir).all_products() == before


def test_replace_removes_products_missing_from_the_file_and_plain_import_keeps_them(
    tmp_path: Path, data_dir: Path
) -> None:
    products, orders = write_shop(tmp_path)
    run("catalog", "import", str(products))
    run("relations", "build", str(orders))
    smaller = tmp_path / "smaller.csv"
    smaller.write_text("sku,title,category,price,stock\ncam-1,Alpha One camera,camera,899,5\n")
    kept = run("catalog", "import", str(smaller))
    assert "3 products not in the file kept (--replace removes them)" in kept.output
    assert len(catalog_store(data_dir).all_products()) == 4
    replaced = run("catalog", "import", str(smaller), "--replace")
    assert replaced.exit_code == 0, replaced.output
    assert "3 products not in the file removed: cam-2, mug-1, sd-1" in replaced.output
    store = catalog_store(data_dir)
    assert list(store.all_products()) == ["cam-1"]
    left = [r for r in store.relations() if r.level == "sku"]
    assert all(r.anchor == "cam-1" == r.complement or "sd-1" not in (r.anchor, r.complement) for r in left)


def test_the_first_real_import_removes_the_demo_store(tmp_path: Path, data_dir: Path) -> None:
    from scripts.demo_store import demo_products, load_demo_on_first_start

    store = catalog_store(data_dir)
    assert load_demo_on_first_start(store) == len(demo_products())
    assert store.demo_counts()[0] == len(demo_products()) and store.demo_counts()[1] > 0
    products, _ = write_shop(tmp_path)
    dry = run("catalog", "import", str(products), "--dry-run")
    assert "4 would be added" in dry.output and "0 products not in the file" not in dry.output
    assert f"demo store would be removed: {len(demo_products())} products" in dry.output
    result = run("catalog", "import", str(products))
    assert result.exit_code == 0, result.output
    removed = f"demo store removed: {len(demo_products())} products with its relations and orders"
    assert removed in result.output
    assert "the catalog holds 4" in result.output
    assert sorted(store.all_products()) == ["cam-1", "cam-2", "mug-1", "sd-1"]
    assert store.relations() == [] and store.demo_counts() == (0, 0)
    # it never comes back, even into an empty catalog
    store.delete_products(["cam-1", "cam-2", "mug-1", "sd-1"])
    assert load_demo_on_first_start(store) == 0 and store.count() == 0


def test_the_demo_loads_only_into_an_empty_catalog(tmp_path: Path, data_dir: Path) -> None:
    from scripts.demo_store import load_demo_on_first_start

    products, _ = write_shop(tmp_path)
    run("catalog", "import", str(products))
    store = catalog_store(data_dir)
    assert load_demo_on_first_start(store) == 0 and store.count() == 4


def test_catalog_clear_demo_keeps_your_products(tmp_path: Path, data_dir: Path) -> None:
    from policies.offers.catalog import Product
    from scripts.demo_store import demo_products, load_demo

    store = catalog_store(data_dir)
    load_demo(store)
    store.upsert_products([Product("mine-1", "Mine", "camera", 10.0, stock=1)])
    result = run("catalog", "clear", "--demo")
    assert result.exit_code == 0, result.output
    assert f"removed the demo store: {len(demo_products())} products" in result.output
    assert list(store.all_products()) == ["mine-1"] and store.relations() == []
    again = run("catalog", "clear", "--demo")
    assert "no demo store to remove" in again.output
    assert run("catalog", "clear").exit_code == 2


def test_a_demo_loaded_before_rows_were_marked_is_found_and_removed(tmp_path: Path, data_dir: Path) -> None:
    from scripts.demo_store import demo_products, load_demo

    store = catalog_store(data_dir)
    load_demo(store)
    # as an older xsell left it: no marks, no record that the demo was loaded
    store.store.conn.execute("UPDATE products SET demo = 0")
    store.store.conn.execute("UPDATE relations SET demo = 0")
    store.store.conn.execute("DELETE FROM control WHERE key = 'catalog_demo'")
    products, _ = write_shop(tmp_path)
    result = run("catalog", "import", str(products))
    assert f"demo store removed: {len(demo_products())} products" in result.output
    assert sorted(store.all_products()) == ["cam-1", "cam-2", "mug-1", "sd-1"]
    assert not [r for r in store.relations() if r.source == "rule"]  # the demo's rules went too


def test_relations_build_keeps_the_rules_unless_told_and_says_what_changed(tmp_path: Path) -> None:
    products, orders = write_shop(tmp_path)
    run("catalog", "import", str(products))
    assert "rules: none (--rules FILE adds hand-kept rules)" in run("relations", "build", str(orders)).output
    first = run("relations", "build", str(orders), "--rules", str(RULES_PATH))
    assert first.exit_code == 0, first.output
    rules = [r for r in json.loads(run("relations", "review", "--json").stdout) if r["source"] == "rule"]
    assert rules and f"rules: {len(rules)} added, 0 removed" in first.output
    assert "co-purchase relations: " in first.output and " added, 0 removed" in first.output
    again = run("relations", "build", str(orders))
    assert again.exit_code == 0, again.output
    assert f"rules: kept all {len(rules)} (no --rules given" in again.output
    assert "co-purchase relations: 0 added, 0 removed, 0 changed" in again.output
    after = [r for r in json.loads(run("relations", "review", "--json").stdout) if r["source"] == "rule"]
    assert len(after) == len(rules)
    dropped = run("relations", "build", str(orders), "--drop-rules")
    assert f"rules: 0 added, {len(rules)} removed" in dropped.output
    assert not [r for r in json.loads(run("relations", "review", "--json").stdout) if r["source"] == "rule"]
    both = run("relations", "build", str(orders), "--drop-rules", "--rules", str(RULES_PATH))
    assert both.exit_code == 2


@pytest.mark.parametrize(
    ("age", "seconds"), [("30d", 30 * 86_400), ("12h", 43_200), ("90min", 5_400), ("45s", 45)]
)
def test_purge_takes_unambiguous_units(age: str, seconds: float) -> None:
    from scripts.commands.logs import parse_age

    assert parse_age(age) == seconds
    assert run("logs", "purge", "--older-than", age, "--dry-run").exit_code == 0


@pytest.mark.parametrize("age", ["1m", "3M", "2mo", "1month"])
def test_purge_refuses_m_as_minute_or_month(age: str) -> None:
    result = run("logs", "purge", "--older-than", age)
    assert result.exit_code == 2 and "ambiguous" in result.output and "min" in result.output
