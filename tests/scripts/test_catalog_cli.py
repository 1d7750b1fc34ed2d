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
