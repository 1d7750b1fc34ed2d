"""`xsell bench serve`: the real service under load, measured against a trivial endpoint.

Starts `xsell serve` (gunicorn workers, threads and the learner as configured) on a
temporary log with the demo store, drives it over loopback, and reports for each
endpoint throughput and p50/p90/p99 latency as ratios to ``POST /bench/parse`` (the
same body parsed by the same app, answered without ranking or logging) measured in
the same run; then rank and offers again with business rules and an experiment active
(a request filter, a boost, a campaign share, a campaign cap; a model-vs-frozen split),
as ratios to the plain runs just before and after (issue #15's goal: within 10%); then
freshness (feedback → a model that learned it) and resident
memory per process. The load generator is wrk when it is installed (scripts/wrk.py),
otherwise closed-loop Python clients in several processes; either shares the
machine's cores with the service, so absolute figures are low and the ratios are
what to read.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import re
import sqlite3
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from scripts.devtools import wrk
from scripts.devtools.bench import bench_estimators
from scripts.devtools.bench_footprint import bytes_per_decision
from scripts.devtools.bench_rules import ADMIN_KEY, TURN_SECONDS, Measure, ruled_figures, ruled_ratios
from scripts.devtools.service_process import start_service, stop_service
from scripts.http import JsonClient

__all__ = ["ServeFigures", "run_serve_bench", "wrk_row"]

ACTIONS = [
    {"id": f"offer-{i}", "features": {"offer": {"kind": f"k{i % 5}", "price": 10.0 + i}}} for i in range(20)
]
RANK_BODY = {"context": {"shopper": {"device": "mobile", "segment": "pro"}}, "actions": ACTIONS}
OFFERS_BODY = {"cart": [{"sku": "camera-01", "qty": 1}], "device": "mobile", "max_offers": 2}
# The same 20 candidates as a Personalizer client sends them.
PERSONALIZER_BODY = {
    "contextFeatures": [{"shopper": {"device": "mobile", "segment": "pro"}}],
    "actions": [{"id": a["id"], "features": [a["features"]["offer"]]} for a in ACTIONS],
}


@dataclass(frozen=True, slots=True)
class ServeFigures:
    name: str
    requests_per_second: float
    p50_ms: float
    p90_ms: float
    p99_ms: float


def _client_process(url: str, path: str, body: Any, seconds: float, queue: Any) -> None:
    client = JsonClient(url)
    latencies = []
    deadline = time.perf_counter() + seconds
    feedback = path == "feedback"
    while time.perf_counter() < deadline:
        if feedback:
            event = client.post("/v1/rank", RANK_BODY)["event_id"]
            start = time.perf_counter()
            client.post(f"/v1/events/{event}/feedback", {"signal": "click"})
        else:
            start = time.perf_counter()
            client.post(path, body)
        latencies.append(time.perf_counter() - start)
    queue.put(latencies)


def _load(url: str, path: str, body: Any, seconds: float, clients: int) -> ServeFigures:
    queue: Any = multiprocessing.get_context("fork").Queue()
    processes = [
        multiprocessing.get_context("fork").Process(
            target=_client_process, args=(url, path, body, seconds, queue)
        )
        for _ in range(clients)
    ]
    for process in processes:
        process.start()
    latencies = np.concatenate([np.asarray(queue.get()) for _ in processes])
    for process in processes:
        process.join()
    p50, p90, p99 = np.percentile(latencies, [50, 90, 99]) * 1000
    return ServeFigures(path, len(latencies) / seconds, float(p50), float(p90), float(p99))


def _freshness(url: str, log_path: Path, trials: int, *, click_after_seconds: float) -> list[float]:
    """Seconds from a click to an answer served by a model that learned that click.

    The click comes `click_after_seconds` after the offer: right away, it is learned
    with the decision's first learning; later, as a correction. "Learned that click"
    is read from the log (the version that marked the feedback row learned), not
    guessed from any newer version, since other decisions make new versions too.
    """
    client = JsonClient(url)
    log = sqlite3.connect(f"file:{log_path}?mode=ro", uri=True)
    seconds = []
    pause = random.Random(trials)
    try:
        for _ in range(trials):
            # Back-to-back trials lock onto the learner's snapshot ticks (each starts just
            # after a model was served) and read 1.0 or 2.0 s by luck of phase; a pause of
            # random length makes each click land anywhere between ticks, as real ones do.
            time.sleep(pause.uniform(0.0, 1.0))
            answer = client.post("/v1/rank", RANK_BODY)
            time.sleep(click_after_seconds)
            start = time.perf_counter()
            client.post(f"/v1/events/{answer['event_id']}/feedback", {"signal": "click"})
            while time.perf_counter() - start < 30:
                row = log.execute(
                    "SELECT learned_in FROM feedback WHERE event_id = ?", (answer["event_id"],)
                ).fetchone()
                served = client.post("/v1/rank", RANK_BODY)["model_version"]
                if row and row[0] and _seq(served) >= _seq(row[0]):
                    break
                time.sleep(0.02)
            seconds.append(time.perf_counter() - start)
    finally:
        log.close()
    return seconds


def _seq(version: str) -> int:
    return int(version.removeprefix("v"))


def _rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def wrk_row(
    url: str, name: str, path: str, body: Any, seconds: float, connections: int, **extra: Any
) -> ServeFigures:
    payload = json.dumps(body).encode() if body is not None else None
    result = wrk.run_wrk(url, path, payload, seconds=seconds, connections=connections, **extra)
    if result.errors:
        raise RuntimeError(f"{name}: {result.errors} of {result.requests} requests failed under wrk")
    return ServeFigures(name, result.requests_per_second, result.p50_ms, result.p90_ms, result.p99_ms)


def _wrk_figures(url: str, seconds: float, connections: int, work: Path) -> list[ServeFigures]:
    """Measure every endpoint with wrk; the rank run collects event ids for the feedback run."""
    ids = work / "ids"
    ids.mkdir()

    def load(name: str, path: str, body: Any, **extra: Any) -> ServeFigures:
        return wrk_row(url, name, path, body, seconds, connections, **extra)

    figures = [
        load("/bench/parse", "/bench/parse", RANK_BODY),
        load("/v1/rank", "/v1/rank", RANK_BODY, collect_ids_to=ids),
        load("/v1/offers", "/v1/offers", OFFERS_BODY),
        load("personalizer rank", "/personalizer/v1.0/rank", PERSONALIZER_BODY),
    ]
    events = wrk.collected_events(ids, work / "events.txt")
    figures.append(load("feedback", "", None, feedback_ids=events))
    return figures


def _python_figures(url: str, seconds: float, clients: int) -> list[ServeFigures]:
    return [
        _load(url, "/bench/parse", RANK_BODY, seconds, clients),
        _load(url, "/v1/rank", RANK_BODY, seconds, clients),
        _load(url, "/v1/offers", OFFERS_BODY, seconds, clients),
        _load(url, "/personalizer/v1.0/rank", PERSONALIZER_BODY, seconds, clients),
        _load(url, "feedback", None, seconds, clients),
    ]


def _measure(url: str, seconds: float, clients: int, use_wrk: bool) -> Measure:
    if use_wrk:
        return lambda name, path, body: wrk_row(url, name, path, body, seconds, clients)
    return lambda name, path, body: replace(_load(url, path, body, seconds, clients), name=name)


def run_serve_bench(
    *, seconds: float, clients: int, workers: int, threads: int, load: str = "auto", rules: bool = True
) -> dict[str, Any]:
    """Start the service, measure it, stop it; return every figure.

    `load` is "wrk", "python" or "auto" (wrk when installed); `clients` is wrk's
    connection count or the number of Python client processes. `rules` adds the rows
    with business rules and an experiment active (#15).
    """
    use_wrk = load == "wrk" or (load == "auto" and wrk.available())
    if use_wrk and not wrk.available():
        raise RuntimeError("wrk is not installed (Debian: apt-get install wrk)")
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            "XSELL_WORKERS": str(workers),
            "XSELL_THREADS": str(threads),
            "XSELL_BENCH_ENDPOINTS": "true",
            "XSELL_GUARDRAIL_ENABLED": "false",
            "XSELL_ADMIN_API_KEYS": ADMIN_KEY,  # to set the rules and start the experiment
            "XSELL_MODEL_POLL_SECONDS": "0.5",
        }
        log = Path(data_dir) / "serve.log"
        service = start_service(Path(data_dir), log, env=env, ready_seconds=90)
        url = service.url
        try:
            log_path = Path(data_dir) / "xsell.db"
            if use_wrk:
                figures = _wrk_figures(url, seconds, clients, Path(data_dir))
            else:
                figures = _python_figures(url, seconds, clients)
            turns: dict[str, list[float]] = {}
            if rules:
                ruled, turns = ruled_figures(
                    env,
                    Path(data_dir),
                    lambda at: _measure(at, TURN_SECONDS, clients, use_wrk),
                    (RANK_BODY, OFFERS_BODY),
                    rounds=max(2, round(2 * seconds / TURN_SECONDS)),
                    poll_seconds=0.5,
                )
                figures += ruled
            fresh = _freshness(url, log_path, trials=10, click_after_seconds=0.0)
            fresh_late = _freshness(url, log_path, trials=10, click_after_seconds=3.0)
            served_footprint = _served_bytes_per_decision(log_path)
            pids = re.search(r"gunicorn pid (\d+), learner pid (\d+)", log.read_text())
            memory = {}
            if pids:
                master, learner = int(pids.group(1)), int(pids.group(2))
                memory = {
                    "worker_rss_mb": [round(_rss_mb(p), 1) for p in _children(master)],
                    "learner_rss_mb": round(_rss_mb(learner), 1),
                }
        finally:
            stop_service(service)
    baseline = figures[0]
    estimators = bench_estimators(1_000_000, repeats=1)
    same = bytes_per_decision(2000)
    distinct = bytes_per_decision(2000, distinct_contexts=True)
    return {
        "evaluator_events_per_second": {t.name: round(t.events_per_second) for t in estimators[1:]},
        "load_generator": (
            f"wrk, 2 threads, {clients} connections"
            if use_wrk
            else f"python, {clients} closed-loop keep-alive client processes"
        ),
        "clients": clients,
        "workers": workers,
        "threads": threads,
        "seconds_per_endpoint": seconds,
        "endpoints": [
            {
                "endpoint": f.name,
                "requests_per_second": round(f.requests_per_second, 1),
                "throughput_vs_trivial": round(f.requests_per_second / baseline.requests_per_second, 3),
                "p50_ms": round(f.p50_ms, 2),
                "p90_ms": round(f.p90_ms, 2),
                "p99_ms": round(f.p99_ms, 2),
                "p99_vs_trivial": round(f.p99_ms / baseline.p99_ms, 2),
            }
            for f in figures
        ],
        "ruled_vs_plain": ruled_ratios(turns) if rules else {},
        "freshness_seconds": {
            "median": round(float(np.median(fresh)), 3),
            "p95": round(float(np.percentile(fresh, 95)), 3),
        },
        "freshness_late_click_seconds": {
            "median": round(float(np.median(fresh_late)), 3),
            "p95": round(float(np.percentile(fresh_late, 95)), 3),
        },
        "log_bytes_per_decision": {
            "served": served_footprint,
            "issue_19_body": same["bytes_per_decision"],
            "issue_19_body_distinct_contexts": distinct["bytes_per_decision"],
            "issue_19_body_bytes": same["body_bytes"],
        },
        **memory,
    }


def _served_bytes_per_decision(path: Path) -> float | None:
    """Pages in use over decisions logged, in the log this run's load wrote."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        decisions = conn.execute("SELECT count(*) FROM decisions").fetchone()[0]
        pages = (
            conn.execute("PRAGMA page_count").fetchone()[0]
            - conn.execute("PRAGMA freelist_count").fetchone()[0]
        )
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    return round(pages * size / decisions, 1) if decisions else None


def render(result: dict[str, Any]) -> str:
    """Return the one table `xsell bench serve` prints."""
    lines = [
        f"{result['workers']} workers x {result['threads']} threads, {result['clients']} clients, "
        f"{result['seconds_per_endpoint']:.0f} s per endpoint, load: {result['load_generator']}",
        f"{'endpoint':<18} {'req/s':>9} {'vs trivial':>11} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} "
        f"{'p99 vs trivial':>15}",
    ]
    for row in result["endpoints"]:
        lines.append(
            f"{row['endpoint']:<18} {row['requests_per_second']:9.1f} {row['throughput_vs_trivial']:11.2f} "
            f"{row['p50_ms']:8.2f} {row['p90_ms']:8.2f} {row['p99_ms']:8.2f} {row['p99_vs_trivial']:15.2f}"
        )
    if result.get("ruled_vs_plain"):
        ratios = result["ruled_vs_plain"]
        lines.append(
            "with rules (a filter, a boost, a campaign share, a cap) and a model/frozen experiment: two new"
            " services, one ruled, loaded in turns; throughput against the plain turn beside each"
            " (goal: at least 0.90)"
        )
        for endpoint, found in ratios.items():
            turns = " ".join(f"{r:.2f}" for r in found["turns"])
            lines.append(f"  {endpoint}: {found['throughput']:.2f} (median; turn by turn {turns})")
    if result["load_generator"].startswith("python"):
        lines.append(
            "feedback: each client ranks, then posts feedback; req/s and latency count the feedback only"
        )
    else:
        lines.append("feedback: on the event ids the /v1/rank run was given, a new signal on each pass")
    fresh, late = result["freshness_seconds"], result["freshness_late_click_seconds"]
    lines.append(
        f"freshness (click -> served by a model that learned it): click at once: median {fresh['median']} s,"
        f" p95 {fresh['p95']} s; click 3 s later (a correction): median {late['median']} s,"
        f" p95 {late['p95']} s"
    )
    speeds = ", ".join(
        f"{name} {rate / 1e6:.1f} M" for name, rate in result["evaluator_events_per_second"].items()
    )
    lines.append(f"evaluator events/s on 1,000,000 decisions: {speeds}")
    footprint = result["log_bytes_per_decision"]
    lines.append(
        f"log bytes per decision: {footprint['served']} as served above; the issue #19 body"
        f" ({footprint['issue_19_body_bytes']} bytes, same offers): {footprint['issue_19_body']},"
        f" with a context of its own each time: {footprint['issue_19_body_distinct_contexts']}"
    )
    if "worker_rss_mb" in result:
        lines.append(f"memory: workers {result['worker_rss_mb']} MB, learner {result['learner_rss_mb']} MB")
    return "\n".join(lines)
