"""`xsell evaluate` on a PostgreSQL log: the same decisions give the same report as on SQLite.

One sequence of ranks, clicks and learner steps is served into a SQLite log and into a
PostgreSQL one, on one driven clock; `xsell evaluate` then runs from a directory that
holds neither log nor models (on PostgreSQL the model files come from the database),
and the two reports must agree figure for figure.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from click.testing import CliRunner

from scripts.cli import cli
from scripts.devtools.learning_loop import Clock
from scripts.devtools.synthetic import SyntheticProblem
from scripts.learn import build_learner
from service.app import create_app
from tests.conftest import make_settings
from tests.postgres_fixture import pg_log_database, pg_log_url

__all__ = ["pg_log_database", "pg_log_url"]

POLICIES = ("uniform", "most-popular", "model:v1", "model:active")


def serve(root: Path, database_url: str, decisions: int = 240) -> None:
    """Rank, click and learn into the log `database_url` names; every window closed by now."""
    settings = make_settings(root, database_url=database_url, guardrail_enabled=False)
    clock = Clock(now=time.time() - 3 * 3600)  # in the past: `evaluate` closes by the real clock
    app = create_app(settings, clock=clock)
    learner, learner_store = build_learner(settings, clock=clock)
    client = app.test_client()
    problem = SyntheticProblem(seed=5)
    rng = np.random.default_rng(5)
    actions = [{"id": a.id, "features": a.features} for a in problem.actions]
    try:
        learner.start()
        for i in range(decisions):
            context, key = problem.draw_context(rng)
            body = {"event_id": f"e{i}", "context": context, "actions": actions, "slots": 1 + i % 2}
            answer = client.post("/v1/rank", json=body).get_json()
            for choice in answer["choices"]:
                if problem.clicks(rng, key, choice["action_id"]):
                    feedback = {"signal": "click", "action_id": choice["action_id"]}
                    client.post(f"/v1/events/{answer['event_id']}/feedback", json=feedback)
            clock.now += 1.0
            if i % 100 == 99:  # publish mid-way: model:active is judged on the 40 decisions after it
                clock.now += 120.0
                while learner.step():
                    pass
                learner.snapshot()
        clock.now += 120.0
    finally:
        learner_store.close()
        app.extensions["xsell"].store.close()


def evaluate(cwd: Path, env: dict[str, str]) -> dict[str, object]:
    args = ["evaluate", "--json", "--seed", "3"]
    for policy in POLICIES:
        args += ["--policy", policy]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    report: dict[str, object] = json.loads(result.stdout)
    return report


@pytest.mark.slow
def test_evaluate_reads_a_postgresql_log_and_agrees_with_sqlite(
    tmp_path: Path, pg_log_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    sqlite_log = tmp_path / "sqlite" / "var" / "xsell.db"
    serve(tmp_path / "sqlite", f"sqlite:///{sqlite_log}")
    serve(tmp_path / "pg", pg_log_url)
    elsewhere = tmp_path / "elsewhere"  # no log and no models here
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    on_sqlite = evaluate(elsewhere, {"XSELL_LOG_PATH": str(sqlite_log)})
    on_postgres = evaluate(
        elsewhere,
        {"XSELL_DATABASE_URL": pg_log_url, "XSELL_MODEL_DIR": str(elsewhere / "model-cache")},
    )
    assert on_postgres["decisions"] == on_sqlite["decisions"] == 240
    names = [p["policy"] for p in on_postgres["policies"]]  # type: ignore[index]
    assert names == ["logged", *POLICIES]
    for mine, theirs in zip(on_postgres["policies"], on_sqlite["policies"], strict=True):  # type: ignore[call-overload]
        assert mine["n"] == theirs["n"] and mine["n"] > 0, mine["policy"]
        assert len(mine["estimates"]) == len(theirs["estimates"]) > 0
        for a, b in zip(mine["estimates"], theirs["estimates"], strict=True):
            assert a["estimator"] == b["estimator"]
            assert a["value"] == pytest.approx(b["value"], abs=1e-9), (mine["policy"], a["estimator"])
            assert a["low"] == pytest.approx(b["low"], abs=1e-9)
    # model:active is the version published last, judged only on decisions after it
    active = next(p for p in on_postgres["policies"] if p["policy"] == "model:active")  # type: ignore[union-attr]
    assert 0 < active["n"] < 240
    assert (elsewhere / "model-cache").is_dir()  # the model files came from the database


def test_evaluate_names_a_postgresql_database_without_the_log(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["evaluate"], env={"XSELL_DATABASE_URL": pg_url})
    assert result.exit_code == 1
    assert "not an xsell log (no decisions table)" in result.output
    password = urlsplit(pg_url).password
    if password:  # the role `make postgres` creates has one
        assert f":{password}@" not in result.output and ":***@" in result.output
