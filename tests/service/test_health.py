from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.app import create_app
from tests.conftest import make_settings, rank_body


def test_healthz_answers_while_alive(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_reports_the_served_model(client: FlaskClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["model_version"] == "v1"


def test_readyz_fails_and_rank_answers_503_when_the_log_is_read_only(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))
    client = app.test_client()
    store = app.extensions["xsell"].store
    # Tests run as root, which ignores file modes; query_only makes every write fail
    # the way a read-only disk does.
    store.conn.execute("PRAGMA query_only = ON")
    assert client.get("/readyz").status_code == 503
    response = client.post("/v1/rank", json=rank_body())
    assert response.status_code == 503
    assert response.get_json()["error"] == "log_unavailable"


def test_worker_keeps_serving_when_a_newer_model_file_is_corrupt(app: Flask, client: FlaskClient) -> None:
    res = app.extensions["xsell"]
    current = res.served.current()[0].version
    newer = res.registry.publish(res.served.policy, parent=current)
    (res.registry.model_dir / newer.path).write_bytes(b"garbage")
    time.sleep(res.settings.model_poll_seconds * 5)  # let the worker's poll notice v2
    answer = client.post("/v1/rank", json=rank_body()).get_json()
    assert answer["model_version"] == current
    ready = client.get("/readyz").get_json()
    assert ready["status"] == "ready" and ready["model_version"] == current
    assert newer.version in ready["warnings"][0]


def test_a_full_disk_answers_503_loses_nothing_accepted_and_recovers(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))
    client = app.test_client()
    store = app.extensions["xsell"].store
    before = client.post("/v1/rank", json=rank_body())
    assert before.status_code == 200
    pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
    store.conn.execute(f"PRAGMA max_page_count = {pages}")  # the disk is now full
    for _ in range(30):  # enough writes to need a new page
        full = client.post("/v1/rank", json=rank_body(context={"s": {"pad": "x" * 200}}))
        if full.status_code != 200:
            break
    assert full.status_code == 503
    assert full.get_json()["error"] == "log_unavailable"
    store.conn.execute(f"PRAGMA max_page_count = {pages * 100}")  # space again
    assert client.post("/v1/rank", json=rank_body()).status_code == 200
    assert store.find_decision(before.get_json()["event_id"]) is not None


def test_a_read_only_log_recovers_when_writable_again(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path))
    client = app.test_client()
    store = app.extensions["xsell"].store
    store.conn.execute("PRAGMA query_only = ON")
    assert client.post("/v1/rank", json=rank_body()).status_code == 503
    store.conn.execute("PRAGMA query_only = OFF")
    assert client.post("/v1/rank", json=rank_body()).status_code == 200
    assert client.get("/readyz").status_code == 200


def test_readiness_fails_when_the_disk_holding_the_log_is_nearly_full(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Taking the write lock needs no space, so only the free space shows a full disk
    # (`xsell faults disk` checks this on a really full filesystem).
    real = os.statvfs

    def nearly_full(path: os.PathLike[str] | str) -> os.statvfs_result:
        found = real(path)
        return os.statvfs_result((*found[:4], 10, *found[5:]))  # 10 blocks free

    assert client.get("/readyz").status_code == 200
    monkeypatch.setattr(os, "statvfs", nearly_full)
    answer = client.get("/readyz")
    assert answer.status_code == 503
    assert any("disk holding the log is full" in p for p in answer.get_json()["problems"])
