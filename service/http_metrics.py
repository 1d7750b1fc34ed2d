"""Request latency per route and errors by kind, counted in the web workers.

These live in process memory, not in the log: a flood of bad requests must not turn
into writes. gunicorn runs several workers, so ``xsell serve`` sets
``PROMETHEUS_MULTIPROC_DIR`` (under the data directory, emptied at start) and each
worker's prometheus-client keeps its values in a file there; a scrape or a console
page adds up every worker's files (``collect``). Without that directory (one
process: tests, ``flask run``) the figures are this process's own, and say so
(``scope``).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterable
from pathlib import Path

from flask import Flask, Response, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

__all__ = [
    "LATENCY",
    "NO_OFFER",
    "REQUESTS",
    "collect",
    "error_counts",
    "instrument",
    "multiprocess_env",
    "no_offer_counts",
    "scope",
]

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_OWN = CollectorRegistry()
# From a fast rank (~1 ms) to the request timeout.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
LATENCY = Histogram(
    "xsell_http_request_duration_seconds",
    "Time to answer a request, by route template and method",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
    registry=_OWN,
)
REQUESTS = Counter(
    "xsell_http_responses",
    "Responses by route template, method, status and error code (empty when none)",
    ["route", "method", "status", "error"],
    registry=_OWN,
)
NO_OFFER = Counter(
    "xsell_no_offer", "Offer requests answered with no offer, by reason", ["reason"], registry=_OWN
)
_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,47}")


def instrument(app: Flask) -> None:
    """Time every request and count its answer, by route template (bounded label values)."""

    @app.before_request
    def _start() -> None:
        g.xsell_started = time.perf_counter()

    @app.after_request
    def _count(response: Response) -> Response:
        started = g.pop("xsell_started", None)
        rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
        method = request.method if request.method in _METHODS else "other"
        if started is not None:
            LATENCY.labels(rule, method).observe(time.perf_counter() - started)
        REQUESTS.labels(rule, method, str(response.status_code), _error_code(response)).inc()
        if rule == "/v1/offers" and response.status_code == 200:
            reason = _no_offer_reason(response)
            if reason:
                NO_OFFER.labels(reason).inc()
        return response


_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


def _error_code(response: Response) -> str:
    """The JSON error code of an error answer (ours or the Personalizer shape), else ''."""
    if response.status_code < 400 or not response.is_json or response.direct_passthrough:
        return ""
    body = response.get_json(silent=True)
    code = body.get("error") if isinstance(body, dict) else None
    if isinstance(code, dict):  # Personalizer: {"error": {"code": ..., "message": ...}}
        code = code.get("code")
    return code if isinstance(code, str) and _CODE.fullmatch(code) else "other"


def _no_offer_reason(response: Response) -> str:
    """The ``no_offer`` reason of an offers answer, else '' (a byte search first: most have none)."""
    if response.direct_passthrough:
        return ""
    data = response.get_data()
    if b'"no_offer"' not in data or b'"no_offer":null' in data:
        return ""
    body = response.get_json(silent=True)
    reason = body.get("no_offer") if isinstance(body, dict) else None
    return reason if isinstance(reason, str) and _CODE.fullmatch(reason) else ("other" if reason else "")


def multiprocess_env(data_dir: Path) -> dict[str, str]:
    """Prepare an empty directory for every worker's figures; return the variable that points there.

    Emptied at each start, so the figures count from the service's start (workers
    that restart meanwhile keep theirs: their files stay).
    """
    directory = data_dir / "prometheus"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink()
    return {MULTIPROC_ENV: str(directory.resolve())}


def scope() -> str:
    """Whose requests the figures cover: every worker's, or only this process's."""
    return "all workers" if os.environ.get(MULTIPROC_ENV) else "this process"


def collect() -> Iterable[Collector]:
    """Collectors for the HTTP figures of every worker (multiprocess mode) or of this process."""
    if os.environ.get(MULTIPROC_ENV):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return [registry]
    return [_OWN]


def error_counts() -> dict[tuple[str, str, str], float]:
    """Error answers so far as {(route, status, code): count}, over every worker when shared."""
    found: dict[tuple[str, str, str], float] = {}
    for collector in collect():
        for family in collector.collect():
            if family.name != "xsell_http_responses":
                continue
            for sample in family.samples:
                if not sample.name.endswith("_total") or int(sample.labels["status"]) < 400:
                    continue
                key = (sample.labels["route"], sample.labels["status"], sample.labels["error"])
                found[key] = found.get(key, 0.0) + sample.value
    return found


def no_offer_counts() -> dict[str, float]:
    """No-offer answers so far by reason, over every worker when shared."""
    found: dict[str, float] = {}
    for collector in collect():
        for family in collector.collect():
            if family.name == "xsell_no_offer":
                for sample in family.samples:
                    if sample.name.endswith("_total"):
                        reason = sample.labels["reason"]
                        found[reason] = found.get(reason, 0.0) + sample.value
    return found
