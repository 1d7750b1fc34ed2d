"""The app and the learner with XSELL_DATABASE_URL=postgresql://…: several nodes, one database.

Each "node" here is a create_app (or build_learner) with its own data directory and
the same PostgreSQL database (tests/postgres_fixture.py), so nothing passes between
them but the database: decisions, feedback, the model index and the model files
(models_blob). The same tests run on SQLite too, the nodes then sharing one log file
and one model directory (one box). Time is the test's clock; the learner is stepped
by hand.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask

from scripts.devtools.learning_loop import Clock
from scripts.learn import build_learner
from service.app import create_app
from service.settings import Settings
from tests.conftest import make_settings, rank_body
from tests.postgres_fixture import pg_log_database, pg_log_url, pg_server

__all__ = ["pg_log_database", "pg_log_url", "pg_server"]

ADMIN = {"Authorization": "Bearer admin-secret"}
REPO = Path(__file__).resolve().parents[2]


def node_settings(root: Path, url: str, name: str) -> Settings:
    shared = {}
    if url.startswith("sqlite:"):  # one box: the nodes share the model directory as well
        shared = {"model_dir": root / "models"}
    return make_settings(
        root / name, database_url=url, admin_api_keys="admin-secret", guardrail_enabled=False, **shared
    )


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shared.db'}"
    return str(request.getfixturevalue("pg_log_url"))


@pytest.fixture
def nodes(tmp_path: Path, database: str) -> Iterator[tuple[Flask, Flask, Clock]]:
    clock = Clock()
    apps = [create_app(node_settings(tmp_path, database, name), clock=clock) for name in ("a", "b")]
    yield apps[0], apps[1], clock
    for app in apps:
        app.extensions["xsell"].store.close()


def count(url: str, table: str) -> int:
    if url.startswith("sqlite:"):
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        finally:
            conn.close()
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
        return int(row[0]) if row else 0


def test_the_app_opens_the_postgresql_log_not_a_sqlite_file(tmp_path: Path, pg_log_url: str) -> None:
    clock = Clock()
    a = create_app(node_settings(tmp_path, pg_log_url, "a"), clock=clock)
    try:
        _opens_postgresql(a, pg_log_url)
    finally:
        a.extensions["xsell"].store.close()


def _opens_postgresql(a: Flask, pg_log_url: str) -> None:
    res = a.extensions["xsell"]
    assert res.store.dialect.name == "postgresql"
    assert res.registry.shared is not None  # model files go to the database
    assert not res.settings.resolved_log_path.exists()  # no SQLite log was created beside it
    assert a.test_client().post("/v1/rank", json=rank_body(event_id="e-1")).status_code == 200
    assert count(pg_log_url, "decisions") == 1


def test_any_node_answers_a_retry_the_same_and_a_reused_event_id_is_409_on_both(nodes, database: str) -> None:
    a, b, _ = nodes
    first = a.test_client().post("/v1/rank", json=rank_body(event_id="order-1"))
    assert first.status_code == 200
    retried = b.test_client().post("/v1/rank", json=rank_body(event_id="order-1"))
    assert retried.status_code == 200
    assert retried.get_json()["chosen"] == first.get_json()["chosen"]
    assert retried.get_json()["model_version"] == first.get_json()["model_version"]
    other = rank_body(event_id="order-1", context={"shopper": {"device": "desktop"}})
    for app in (a, b):
        reused = app.test_client().post("/v1/rank", json=other)
        assert reused.status_code == 409, reused.get_json()
    feedback = b.test_client().post("/v1/events/order-1/feedback", json={"signal": "click"})
    assert feedback.status_code in (200, 201, 202), feedback.get_json()
    again = a.test_client().post("/v1/events/order-1/feedback", json={"signal": "click"})
    assert again.status_code in (200, 201, 202)
    assert count(database, "decisions") == 1 and count(database, "feedback") == 1


def test_a_learner_on_a_third_node_publishes_and_every_node_serves_it_then_a_rollback(
    tmp_path: Path, nodes, database: str
) -> None:
    a, b, clock = nodes
    learner, learner_store = build_learner(node_settings(tmp_path, database, "learner"), clock=clock)
    try:
        learner.start()
        first = a.extensions["xsell"].served.version
        assert first is not None and first.version == "v1"
        for i in range(20):
            clock.now += 1.0
            answer = a.test_client().post("/v1/rank", json=rank_body(event_id=f"e-{i}")).get_json()
            b.test_client().post(f"/v1/events/{answer['event_id']}/feedback", json={"signal": "click"})
        clock.now += 120.0  # past every decision's first learning
        learner.step()
        published = learner.version
        assert published is not None and published.version != "v1"
        for app in (a, b):
            res = app.extensions["xsell"]
            if res.store.is_postgresql:  # no node's directory had the file: it came from the database
                assert not (res.settings.resolved_model_dir / Path(published.path).name).exists()
            res.served.refresh()
            assert res.served.version is not None and res.served.version.version == published.version
            ranked = app.test_client().post("/v1/rank", json=rank_body()).get_json()
            assert ranked["model_version"] == published.version
        # A rollback on node b reaches node a: it loads what the index names next.
        rolled = b.test_client().post("/v1/models/rollback", headers=ADMIN, json={"to": "v1", "freeze": True})
        assert rolled.status_code == 200, rolled.get_json()
        a.extensions["xsell"].served.refresh()
        assert a.test_client().post("/v1/rank", json=rank_body()).get_json()["model_version"] == "v1"
    finally:
        learner_store.close()


def _serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run `xsell serve` with only `env` and wait for it to give up."""
    return subprocess.run(
        [sys.executable, "-m", "scripts", "serve"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_serve_with_an_unreachable_database_says_so_in_one_line_and_exits_non_zero(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "XSELL_DATA_DIR": str(tmp_path / "var"),
        "XSELL_PORT": "18931",
        # Port 1 on loopback: nothing listens, the connection is refused at once.
        "XSELL_DATABASE_URL": "postgresql://xsell:s3cret@127.0.0.1:1/xsell",
        "XSELL_SHOPPER_ID_SECRET": "one-key-for-every-node",
    }
    done = _serve(env)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
    assert len(errors) == 1, done.stderr
    assert "not starting" in errors[0] and "127.0.0.1:1" in errors[0] and "unreachable" in errors[0], errors
    assert "s3cret" not in done.stderr and "Traceback" not in done.stderr


def test_serve_on_postgresql_without_one_shopper_key_for_every_node_is_refused(tmp_path: Path) -> None:
    # Each node would otherwise make its own DATA_DIR/shopper-id.key.
    env = {
        "PATH": "/usr/bin:/bin",
        "XSELL_DATA_DIR": str(tmp_path / "var"),
        "XSELL_PORT": "18933",
        "XSELL_DATABASE_URL": "postgresql://xsell@127.0.0.1:1/xsell",
    }
    done = _serve(env)
    assert done.returncode == 2
    assert "XSELL_SHOPPER_ID_SECRET" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "var" / "shopper-id.key").exists()
