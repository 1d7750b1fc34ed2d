"""`xsell bench serve --soak SECONDS`: the real service under steady rank load, watched for growth.

Starts `xsell serve`, ranks the issue #19 body (bench_footprint.FOOTPRINT_BODY: the
same 10 offers every time) for SECONDS with wrk (or Python clients), and samples the
resident memory of every worker and of the learner as it goes. Memory that grows
without bound shows as an end far above the start; the log's bytes per decision are
read from the log the run wrote.
"""

from __future__ import annotations

import json
import re
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from scripts.devtools import wrk
from scripts.devtools.bench_footprint import FOOTPRINT_BODY
from scripts.devtools.service_process import start_service, stop_service

__all__ = ["render_soak", "run_soak"]

WARM_UP_SECONDS = 10.0  # imports, the first model load and VW's buffers settle first


def _rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024  # type: ignore[union-attr]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def run_soak(
    *, seconds: float, clients: int, workers: int, threads: int, sample_seconds: float = 10.0
) -> dict[str, Any]:
    """Rank for `seconds` against the real service; return memory samples and the log's footprint."""
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            "XSELL_WORKERS": str(workers),
            "XSELL_THREADS": str(threads),
            "XSELL_GUARDRAIL_ENABLED": "false",
        }
        service = start_service(Path(data_dir), Path(data_dir) / "serve.log", env=env, ready_seconds=90)
        try:
            pids = re.search(r"gunicorn pid (\d+), learner pid (\d+)", service.log())
            if pids is None:
                raise RuntimeError("the service did not log its gunicorn and learner pids")
            master, learner = int(pids.group(1)), int(pids.group(2))
            done: dict[str, Any] = {}
            load = threading.Thread(
                target=_drive, args=(service.url, seconds + WARM_UP_SECONDS, clients, done)
            )
            started = time.monotonic()
            load.start()
            samples = []
            while load.is_alive():
                samples.append(
                    {
                        "at_seconds": round(time.monotonic() - started, 1),
                        "worker_rss_mb": [round(_rss_mb(p), 1) for p in _children(master)],
                        "learner_rss_mb": round(_rss_mb(learner), 1),
                    }
                )
                load.join(timeout=sample_seconds)
            samples.append(
                {
                    "at_seconds": round(time.monotonic() - started, 1),
                    "worker_rss_mb": [round(_rss_mb(p), 1) for p in _children(master)],
                    "learner_rss_mb": round(_rss_mb(learner), 1),
                }
            )
            footprint = _footprint(Path(data_dir) / "xsell.db")
        finally:
            stop_service(service)
    if "error" in done:
        raise RuntimeError(done["error"])
    settled = [s for s in samples if s["at_seconds"] >= WARM_UP_SECONDS] or samples
    return {
        "seconds": seconds,
        "clients": clients,
        "workers": workers,
        "threads": threads,
        "requests": done.get("requests", 0),
        "requests_per_second": round(done.get("requests", 0) / (seconds + WARM_UP_SECONDS), 1),
        "start": settled[0],
        "end": samples[-1],
        "peak_worker_rss_mb": max(max(s["worker_rss_mb"] or [0.0]) for s in samples),
        "peak_learner_rss_mb": max(s["learner_rss_mb"] for s in samples),
        "samples": samples,
        **footprint,
    }


def _drive(url: str, seconds: float, clients: int, done: dict[str, Any]) -> None:
    """Rank the footprint body for `seconds` (wrk when installed, else Python clients)."""
    try:
        if wrk.available():
            result = wrk.run_wrk(
                url, "/v1/rank", json.dumps(FOOTPRINT_BODY).encode(), seconds=seconds, connections=clients
            )
            done["requests"] = result.requests
        else:
            from scripts.devtools.bench_serve import _load

            figures = _load(url, "/v1/rank", FOOTPRINT_BODY, seconds, clients)
            done["requests"] = round(figures.requests_per_second * seconds)
    except Exception as error:  # reported by the caller, after the service is stopped
        done["error"] = f"the load failed: {error}"


def _footprint(path: Path) -> dict[str, Any]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        decisions = conn.execute("SELECT count(*) FROM decisions").fetchone()[0]
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    used = (pages - free) * size
    return {
        "decisions_logged": decisions,
        "log_mb": round(used / 1e6, 1),
        "log_bytes_per_decision": round(used / decisions) if decisions else None,
    }


def render_soak(result: dict[str, Any]) -> str:
    """Return the lines `xsell bench serve --soak` prints."""
    start, end = result["start"], result["end"]
    span = f"at {start['at_seconds']} s -> at {end['at_seconds']} s"
    return "\n".join(
        [
            f"soak: {result['seconds']:.0f} s of /v1/rank (the issue #19 body), {result['workers']} workers"
            f" x {result['threads']} threads, {result['clients']} clients: {result['requests']} requests"
            f" ({result['requests_per_second']} req/s)",
            f"workers RSS MB {span}: {start['worker_rss_mb']} -> {end['worker_rss_mb']}"
            f" (peak {result['peak_worker_rss_mb']})",
            f"learner RSS MB {span}: {start['learner_rss_mb']} -> {end['learner_rss_mb']}"
            f" (peak {result['peak_learner_rss_mb']})",
            f"log: {result['decisions_logged']} decisions in {result['log_mb']} MB,"
            f" {result['log_bytes_per_decision']} bytes a decision",
            "memory over the run (largest worker / learner, MB):",
            *_timeline(result["samples"]),
        ]
    )


def _timeline(samples: list[dict[str, Any]], points: int = 7) -> list[str]:
    """A few samples spread evenly over the run: growth that keeps going shows as a staircase."""
    if not samples:
        return []
    step = max(1, (len(samples) - 1) // (points - 1))
    chosen = samples[::step]
    if chosen[-1] is not samples[-1]:
        chosen.append(samples[-1])
    return [
        f"  {s['at_seconds']:>7.0f} s  {max(s['worker_rss_mb'] or [0.0]):6.1f} / {s['learner_rss_mb']:6.1f}"
        for s in chosen
    ]
