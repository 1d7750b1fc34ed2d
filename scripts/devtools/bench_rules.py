"""`xsell bench serve`'s rows with business rules and an experiment active (issue #15).

Two new services run side by side, each on an empty log, one with a request filter,
a boost, a campaign share, a campaign cap and a model-versus-frozen experiment in
force; the two are loaded in turns of a few seconds, who goes first alternating, and each ratio is
the median of the turn-by-turn ratios (ruled turn against the plain turn beside it).
This machine's speed was seen to swing by half between minutes, which runs of each
a minute apart took for the rules' cost. The goal: at least 0.90 of the plain throughput.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np

from scripts.devtools.service_process import RunningService, start_service, stop_service
from scripts.http import JsonClient

if TYPE_CHECKING:
    from scripts.devtools.bench_serve import ServeFigures

__all__ = ["ADMIN_KEY", "TURN_SECONDS", "Measure", "ruled_figures", "ruled_ratios"]

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
# Short turns, many of them: this machine's speed drifts within seconds, and a pair of
# turns 3 s long meets less drift than a pair 5 s long (wrk counts whole seconds).
TURN_SECONDS = 3.0
ENDPOINTS = ("/v1/rank", "/v1/offers")


def ruled_figures(
    env: Mapping[str, str],
    work: Path,
    measure_on: Callable[[str], Measure],
    bodies: tuple[dict[str, Any], dict[str, Any]],
    *,
    rounds: int,
    poll_seconds: float,
) -> tuple[list[ServeFigures], dict[str, list[float]]]:
    """Rank and offers (`bodies`) on two new services side by side, one with rules, turn by turn.

    Both start from an empty log, so neither carries the other rows' history.
    `measure_on(url)` loads one service for one turn. The rank body's candidates become
    catalog products in both logs first (a boost and a campaign name products of the
    catalog; plain requests never read it). Returns the median figures of each side and
    every turn's ratio, per endpoint.
    """
    rank_body, offers_body = bodies
    started: list[RunningService] = []
    try:
        for side in ("plain", "ruled"):
            started.append(start_service(work / side, work / f"{side}.log", env=env, ready_seconds=90))
        plain, ruled = started
        for service in (plain, ruled):
            _catalog(service.data_dir / "xsell.db", rank_body)
        version = JsonClient(ruled.url).post("/v1/rank", rank_body)["model_version"]
        arms = [
            {"name": "bandit", "policy": "model", "share": 0.5},
            {"name": "frozen", "policy": "frozen", "share": 0.5, "version": version},
        ]
        _admin(ruled.url, "PUT", "/v1/rules", RULES)
        _admin(ruled.url, "POST", "/v1/experiments", {"id": "bench", "arms": arms})
        time.sleep(2 * poll_seconds + 1)  # every worker has read both
        rank_filters = {"exclude_skus": ["offer-19"], "max_price": 1000.0}
        requests = {
            "/v1/rank": (rank_body, {**rank_body, "filters": rank_filters}),
            "/v1/offers": (offers_body, {**offers_body, "filters": {"max_price": 1000.0}}),
        }
        sides = {"plain": measure_on(plain.url), "ruled": measure_on(ruled.url)}
        figures: list[ServeFigures] = []
        ratios: dict[str, list[float]] = {}
        for endpoint in ENDPOINTS:
            turns: dict[str, list[ServeFigures]] = {"plain": [], "ruled": []}
            for turn in range(rounds):
                order = ("plain", "ruled") if turn % 2 == 0 else ("ruled", "plain")
                for side in order:
                    body = requests[endpoint][side == "ruled"]
                    turns[side].append(sides[side](f"{endpoint} {side}", endpoint, body))
            figures += [_median(f"{endpoint} {side}", turns[side]) for side in ("plain", "ruled")]
            ratios[endpoint] = [
                r.requests_per_second / p.requests_per_second
                for p, r in zip(turns["plain"], turns["ruled"], strict=True)
            ]
        return figures, ratios
    finally:
        for service in started:
            stop_service(service)


def ruled_ratios(turns: dict[str, list[float]]) -> dict[str, Any]:
    """Per endpoint, the median of the turn-by-turn ratios (ruled over plain) and every turn's."""
    return {
        endpoint: {"throughput": round(float(np.median(found)), 3), "turns": [round(r, 2) for r in found]}
        for endpoint, found in turns.items()
    }


def _median(name: str, turns: list[ServeFigures]) -> ServeFigures:
    from scripts.devtools.bench_serve import ServeFigures

    def mid(figure: str) -> float:
        return float(np.median([getattr(t, figure) for t in turns]))

    return ServeFigures(name, mid("requests_per_second"), mid("p50_ms"), mid("p90_ms"), mid("p99_ms"))


def _catalog(log_path: Path, rank_body: dict[str, Any]) -> None:
    """Make the rank body's candidates products of the catalog in this log."""
    from logs.catalog_store import CatalogStore
    from logs.store import LogStore
    from policies.offers.catalog import Product

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
