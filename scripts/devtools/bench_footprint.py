"""Bytes per decision: the real app logs a body many times; the log's growth is measured.

In-process (create_app and its test client, no HTTP), so it measures the log's format,
not the load generator. The body is the one issue #19 measured: 20 context features
and 10 offers of 10 features (about 2.7 KB), the same offers every time; a second run
gives every decision a context of its own, as real shoppers do.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["FOOTPRINT_BODY", "bytes_per_decision", "footprint_body"]


def footprint_body(shopper: int = 0) -> dict[str, Any]:
    """The issue's rank body; `shopper` varies the context (0: the same every time)."""
    context = {
        "shopper": {f"trait_{k}": f"value-{(shopper * 7 + k) % 50}" for k in range(10)},
        "session": {f"signal_{k}": round(0.1 * k + shopper % 13, 3) for k in range(10)},
    }
    actions = [
        {
            "id": f"sku-{i:05d}",
            "features": {
                "offer": {
                    "category": f"category-{i % 4}",
                    "family": f"family-{i % 2}",
                    "brand": f"brand-name-{i}",
                    "price": 19.99 + i,
                    "margin": 0.25 + i / 100,
                    "rating": 4.1 + i / 50,
                    "in_stock": 120 + i,
                    "colour": f"colour-{i % 3}",
                    "size": f"size-{i % 5}",
                    "season": "autumn-winter",
                }
            },
        }
        for i in range(10)
    ]
    return {"context": context, "actions": actions}


FOOTPRINT_BODY = footprint_body()


def bytes_per_decision(decisions: int = 2000, *, distinct_contexts: bool = False) -> dict[str, float]:
    """Log `decisions` ranks through the app; return the body's size and the log's bytes per decision."""
    import orjson

    from service.app import create_app
    from service.settings import Settings

    with tempfile.TemporaryDirectory() as root:
        settings = Settings(data_dir=Path(root) / "var", guardrail_enabled=False)  # type: ignore[call-arg]
        app = create_app(settings)
        client = app.test_client()
        path = settings.resolved_log_path
        before = _used_bytes(path)
        for k in range(decisions):
            body = footprint_body(k + 1) if distinct_contexts else FOOTPRINT_BODY
            response = client.post("/v1/rank", json=body)
            if response.status_code != 200:
                raise RuntimeError(
                    f"/v1/rank answered {response.status_code}: {response.get_data(as_text=True)}"
                )
        app.extensions["xsell"].store.close()
        grown = _used_bytes(path) - before
    return {
        "body_bytes": len(orjson.dumps(FOOTPRINT_BODY)),
        "decisions": decisions,
        "bytes_per_decision": round(grown / decisions, 1),
    }


def _used_bytes(path: Path) -> int:
    """Pages in use once the WAL is checkpointed into the file."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        free = conn.execute("PRAGMA freelist_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)
    finally:
        conn.close()


if __name__ == "__main__":
    print(bytes_per_decision(), bytes_per_decision(distinct_contexts=True))
