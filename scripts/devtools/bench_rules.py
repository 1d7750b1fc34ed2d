"""`xsell bench serve`'s rows with business rules and an experiment active (issue #15).

Rank and offers are measured with a request filter, a boost, a campaign share, a
campaign cap and a model-versus-frozen experiment in force, between plain runs of the
same endpoints, so drift over the run (a growing log, the learner) shows and the ratio
compares like with like. The goal: at least 0.90 of the plain throughput.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from scripts.http import JsonClient

if TYPE_CHECKING:
    from scripts.devtools.bench_serve import ServeFigures

__all__ = ["ADMIN_KEY", "Measure", "ruled_figures", "ruled_ratios"]

ADMIN_KEY = "bench-admin-key"  # the bench's service takes it, to set the rules and the experiment
RULES = {
    "boosts": [{"sku": "offer-3", "factor": 2.0}, {"sku": "tripod-02", "factor": 2.0}],
    "campaigns": [
        {"name": "bench-share", "products": ["offer-7", "offer-8", "camera_bag-02"], "min_share": 0.2},
        # a cap the run never reaches: counted on every decision, never removing anything
        {"name": "bench-cap", "products": ["offer-12", "camera_battery-03"], "max_impressions": 10**9},
    ],
    "reason": "xsell bench serve",
}
Measure = Callable[[str, str, Any], "ServeFigures"]  # (row name, path, body) -> figures


def ruled_figures(
    url: str,
    log_path: Path,
    measure: Measure,
    bodies: tuple[dict[str, Any], dict[str, Any]],
    *,
    poll_seconds: float,
) -> list[ServeFigures]:
    """Rank and offers (`bodies`) with rules and an experiment active, between plain runs of each.

    The rank body's candidates become catalog products first (a boost and a campaign
    name products of the catalog); plain requests never read the catalog.
    """
    from logs.catalog_store import CatalogStore
    from logs.store import LogStore
    from policies.offers.catalog import Product

    rank_body, offers_body = bodies
    store = LogStore(log_path)
    try:
        offers = [a["features"]["offer"] for a in rank_body["actions"]]
        products = [
            Product(a["id"], a["id"], o["kind"], o["price"], stock=9)
            for a, o in zip(rank_body["actions"], offers, strict=True)
        ]
        CatalogStore(store).upsert_products(products)
    finally:
        store.close()
    ruled_rank = {**rank_body, "filters": {"exclude_skus": ["offer-19"], "max_price": 1000.0}}
    ruled_offers = {**offers_body, "filters": {"max_price": 1000.0}}
    figures = [
        measure("/v1/rank plain", "/v1/rank", rank_body),
        measure("/v1/offers plain", "/v1/offers", offers_body),
    ]
    version = JsonClient(url).post("/v1/rank", rank_body)["model_version"]
    arms = [
        {"name": "bandit", "policy": "model", "share": 0.5},
        {"name": "frozen", "policy": "frozen", "share": 0.5, "version": version},
    ]
    _admin(url, "PUT", "/v1/rules", RULES)
    _admin(url, "POST", "/v1/experiments", {"id": "bench", "arms": arms})
    time.sleep(2 * poll_seconds + 1)  # every worker has read both
    figures += [
        measure("/v1/rank ruled", "/v1/rank", ruled_rank),
        measure("/v1/offers ruled", "/v1/offers", ruled_offers),
    ]
    _admin(url, "POST", "/v1/experiments/bench/stop", {"reason": "bench over"})
    _admin(url, "PUT", "/v1/rules", {"reason": "bench over"})
    time.sleep(2 * poll_seconds + 1)
    return [
        *figures,
        measure("/v1/rank again", "/v1/rank", rank_body),
        measure("/v1/offers again", "/v1/offers", offers_body),
    ]


def ruled_ratios(figures: list[ServeFigures]) -> dict[str, float]:
    """Throughput with rules over the mean of the plain runs either side of it, per endpoint."""
    by_name = {f.name: f.requests_per_second for f in figures}
    ratios = {}
    for endpoint in ("/v1/rank", "/v1/offers"):
        plain = (by_name[f"{endpoint} plain"] + by_name[f"{endpoint} again"]) / 2
        ratios[endpoint] = round(by_name[f"{endpoint} ruled"] / plain, 3)
    return ratios


def _admin(url: str, method: str, path: str, body: Any) -> Any:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {ADMIN_KEY}"}
        conn.request(method, path, body=json.dumps(body).encode(), headers=headers)
        response = conn.getresponse()
        answer = json.loads(response.read() or b"null")
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {answer}")
        return answer
    finally:
        conn.close()
