"""Oversized and mistyped requests against the real server (gunicorn + learner).

Flask's test client does not send chunked bodies the way gunicorn passes them on,
so the chunked case is checked here; the others confirm the same answers come
through gunicorn, and that a worker keeps answering after each.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import requests

from tests.e2e.conftest import RunningService, start_service, stop_service

pytestmark = pytest.mark.e2e
JSON = {"Content-Type": "application/json"}
RANK = {"actions": [{"id": "a"}, {"id": "b"}]}
LIMIT = 256 * 1024  # XSELL_MAX_BODY_BYTES, default


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    running = start_service(tmp_path_factory.mktemp("limits"), XSELL_REWARD_WINDOW_SECONDS="600")
    yield running
    stop_service(running)


def chunks(raw: bytes, size: int = 16 * 1024) -> Iterator[bytes]:
    """A generator body: requests sends it with Transfer-Encoding: chunked."""
    for start in range(0, len(raw), size):
        yield raw[start : start + size]


def count(service: RunningService, table: str) -> int:
    conn = sqlite3.connect(Path(service.data_dir) / "xsell.db")
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


def test_a_chunked_body_over_the_limit_is_413_not_cut(service: RunningService) -> None:
    # Cut at the limit, this body would still be valid JSON with one "a" action.
    raw = b'{"actions": [{"id": "a"}], "context": {"u": {"x": "y"}}}' + b" " * LIMIT
    response = requests.post(f"{service.url}/v1/rank", data=chunks(raw), headers=JSON, timeout=60)
    assert response.status_code == 413, response.text[:300]
    assert response.json()["error"] == "request_entity_too_large"
    small = requests.post(f"{service.url}/v1/rank", data=chunks(orjson.dumps(RANK)), headers=JSON, timeout=60)
    assert small.status_code == 200, small.text[:300]


def test_the_44000_feature_request_gets_a_413_and_the_worker_goes_on(service: RunningService) -> None:
    context = {f"n{k}": {f"l{m}": [str(i) for i in range(55)] for m in range(25)} for k in range(32)}
    raw = orjson.dumps({"context": context, "actions": [{"id": f"a{j}"} for j in range(50)]})
    response = requests.post(f"{service.url}/v1/rank", data=raw, headers=JSON, timeout=60)
    assert response.status_code == 413, response.text[:300]
    assert response.json()["details"][0]["limit"] == "XSELL_MAX_CONTEXT_FEATURES"
    assert requests.post(f"{service.url}/v1/rank", json=RANK, timeout=60).status_code == 200


def test_cross_site_feedback_is_415_and_records_nothing(service: RunningService) -> None:
    event_id = requests.post(f"{service.url}/v1/rank", json=RANK, timeout=60).json()["event_id"]
    before = count(service, "feedback")
    url = f"{service.url}/v1/events/{event_id}/feedback"
    plain = requests.post(
        url, data=b'{"signal": "click"}', headers={"Content-Type": "text/plain"}, timeout=60
    )
    form = requests.post(url, data={"signal": "click"}, timeout=60)  # form-encoded
    assert (plain.status_code, form.status_code) == (415, 415)
    assert plain.json()["error"] == "unsupported_media_type"
    assert count(service, "feedback") == before
    assert requests.post(url, json={"signal": "click"}, timeout=60).status_code == 200
