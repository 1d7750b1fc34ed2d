"""Before `xsell serve` serves: the demo store on the first start only, a free port, one summary."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from logs.catalog_files import ProductFile
from logs.catalog_store import CatalogStore
from policies.offers.catalog import Product
from scripts.demo_store import demo_products
from scripts.startup import PortInUse, check_port_free, startup_summary
from service.resources import open_log_and_registry
from tests.conftest import make_settings


def test_the_demo_store_loads_on_the_first_start_only(tmp_path: Path) -> None:
    from scripts.catalog_import import apply_import, plan_import
    from scripts.serve import prepare

    settings = make_settings(tmp_path)
    assert prepare(settings) is not None  # the initial model is active
    store, _ = open_log_and_registry(settings)
    catalog = CatalogStore(store)
    assert catalog.count() == len(demo_products())
    mine = ProductFile([Product("mine-1", "Mine", "camera", 10.0, stock=1)], "csv")
    apply_import(catalog, plan_import(catalog, mine, replace=False))
    prepare(settings)
    assert list(catalog.all_products()) == ["mine-1"]
    catalog.delete_products(["mine-1"])
    prepare(settings)  # an emptied catalog stays empty: the demo came once
    assert catalog.count() == 0
    store.close()


def test_a_port_in_use_is_refused_with_one_sentence() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse, match=f"127.0.0.1:{port} is already in use"):
            check_port_free("127.0.0.1", port)
    check_port_free("127.0.0.1", port)  # free again


def test_the_summary_names_keys_but_never_their_values(tmp_path: Path) -> None:
    keys = tmp_path / "admin.keys"
    keys.write_text("admin-value-1\nadmin-value-2\n")
    settings = make_settings(tmp_path, api_keys="store-value-1", admin_api_key_file=keys, port=8123)
    lines = startup_summary(settings, "v7")
    text = "\n".join(lines)
    assert lines[0] == "serving on http://127.0.0.1:8123"
    assert f"log:          {settings.resolved_log_path.resolve()}" in text
    assert "active model: v7" in text
    assert "storefront keys: 1 set (XSELL_API_KEYS)" in text
    assert f"admin keys:      2 set (XSELL_ADMIN_API_KEY_FILE {keys})" in text
    assert "http://127.0.0.1:8123/openapi.json" in text and "http://127.0.0.1:8123/console/" in text
    assert "value" not in text
    bare = "\n".join(startup_summary(make_settings(tmp_path), None))
    assert "storefront keys: not set" in bare and "active model: none yet" in bare
