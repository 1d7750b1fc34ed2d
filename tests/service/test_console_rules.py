"""The console's Experiments page shows the business rules in force, read-only, with each
campaign's progress in its period as the log counts it (campaign_counts)."""

from __future__ import annotations

import re

from flask import Flask

from logs.rollup_queries import RollupReader
from policies.offers.catalog import Product
from scripts.devtools.learning_loop import Clock
from service.console.filters import percent
from tests.service.test_console_experiments import ADMIN, clock, shop, signed_in

__all__ = ["clock", "shop"]  # fixtures, used by name


def test_the_rules_in_force_and_each_campaigns_progress_are_shown_read_only(
    shop: Flask, clock: Clock
) -> None:
    res = shop.extensions["xsell"]
    skus = [f"p{k}" for k in range(6)]
    res.catalog.upsert_products(
        [
            Product(s, s.upper(), ("bag", "strap", "lens")[k % 3], 10.0 + k, "photo", (), 5)
            for k, s in enumerate(skus)
        ]
    )
    browser, _ = signed_in(shop)
    assert 'id="rules-none"' in browser.get("/console/experiments").text
    rules = {
        "pins": [{"name": "launch", "sku": "p5"}],
        "margin_floor": 2.5,
        "never_categories": ["lens"],
        "max_per_category": 2,
        "boosts": [{"sku": "p1", "factor": 3.0}],
        "campaigns": [{"name": "summer", "products": ["p0", "p3"], "min_share": 0.2, "max_impressions": 500}],
    }
    assert shop.test_client().put("/v1/rules", headers=ADMIN, json=rules).status_code == 200
    client = shop.test_client()
    for k in range(30):
        body = {"event_id": f"e{k}", "actions": [{"id": s} for s in skus[:4]]}
        assert client.post("/v1/rank", json=body).status_code == 200
    html = browser.get("/console/experiments").text
    assert "launch: p5" in html and "p1 ×3" in html and ">lens<" in html and ">2.5<" in html
    period = {"summer": clock.now // 86400 * 86400}
    eligible, shown = RollupReader(res.store).campaign_counts(period)["summer"]
    assert eligible == 30 and 0 < shown <= 30
    row = table_row(html, "summer")
    assert row["eligible"] == "30" and row["shown"] == str(shown)
    assert row["share"] == percent(shown / eligible) and row["cap-left"] == str(500 - shown)
    assert "PUT /v1/rules" in html and "Read-only here" in html
    assert "<form" not in html.split('id="rules-help"')[1].split("</table>")[0]  # nothing to edit here


def table_row(html: str, campaign: str) -> dict[str, str]:
    row = re.search(rf'<tr data-campaign="{campaign}">(.*?)</tr>', html, re.S)
    assert row, f"no campaign row {campaign}"
    return dict(re.findall(r'<td class="num ([\w-]+)">([^<]*)<', row.group(1)))
