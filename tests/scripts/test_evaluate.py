"""`xsell evaluate` on a log written by the real service, and on bad inputs."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from scripts.cli import cli
from scripts.devtools.synthetic import SyntheticProblem
from scripts.learn import build_learner
from service.app import create_app
from tests.conftest import make_settings
from tests.obd_fixture import write_obd


@pytest.fixture(scope="module")
def served_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A log of 600 decisions (one and two slots) served, clicked and learned through the app."""
    root = tmp_path_factory.mktemp("served")
    settings = make_settings(root, reward_window_seconds=0.001)
    app = create_app(settings)
    client = app.test_client()
    learner, _ = build_learner(settings)
    learner.start()
    problem = SyntheticProblem(seed=2)
    rng = np.random.default_rng(2)
    actions = [{"id": a.id, "features": a.features} for a in problem.actions]
    for round_index in range(600):
        context, key = problem.draw_context(rng)
        slots = 1 + round_index % 2
        answer = client.post(
            "/v1/rank", json={"context": context, "actions": actions, "slots": slots}
        ).get_json()
        for choice in answer["choices"]:
            if problem.clicks(rng, key, choice["action_id"]):
                body = {"signal": "click", "action_id": choice["action_id"]}
                client.post(f"/v1/events/{answer['event_id']}/feedback", json=body)
        if round_index % 150 == 149:
            learner.step(now=time.time() + 1)
    app.extensions["xsell"].store.close()
    time.sleep(0.01)  # let the last reward windows close
    return settings.resolved_log_path


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, ["evaluate", *args])


def test_evaluate_reports_every_policy_and_estimator_as_json(served_log: Path) -> None:
    result = invoke(
        "--log",
        str(served_log),
        "--json",
        "--policy",
        "uniform",
        "--policy",
        "most-popular",
        "--policy",
        "model:v1",
        "--policy",
        "vw:--cb_explore_adf --epsilon 0.05 -q ::",
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["decisions"] == 600
    policies = {p["policy"]: p for p in report["policies"]}
    assert list(policies) == [
        "logged",
        "uniform",
        "most-popular",
        "model:v1",
        "vw:--cb_explore_adf --epsilon 0.05 -q ::",
    ]
    for name in ("uniform", "most-popular", "vw:--cb_explore_adf --epsilon 0.05 -q ::"):
        estimates = {e["estimator"]: e for e in policies[name]["estimates"]}
        assert set(estimates) == {"IPS", "SNIPS", "DM", "DR", "SNDR"}
        for e in estimates.values():
            assert e["low"] <= e["value"] <= e["high"]
            assert e["n"] == 600
            assert 0 < e["ess"] <= 600
    # v1 is the untrained first model: every decision was made after it existed
    assert policies["model:v1"]["n"] == 600
    logged = policies["logged"]["estimates"][0]
    assert logged["estimator"] == "on-policy" and logged["n"] == 600
    assert report["summary"]["exploration"] is not None  # our log keeps the distributions


def test_a_registry_model_is_judged_only_on_decisions_after_it_was_published(served_log: Path) -> None:
    result = invoke("--log", str(served_log), "--json", "--policy", "model:active", "--no-reward-model")
    assert result.exit_code == 0, result.output
    [_, model] = json.loads(result.stdout)["policies"]
    # the active model was published at the last learner step, after decision 450
    assert model["n"] < 600
    if model["n"]:
        assert {e["estimator"] for e in model["estimates"]} == {"IPS", "SNIPS"}


def test_default_table_names_policies_estimators_and_intervals(served_log: Path) -> None:
    result = invoke("--log", str(served_log), "--no-reward-model")
    assert result.exit_code == 0, result.output
    assert "600 closed decisions" in result.output
    assert "95% intervals by normal" in result.output
    for name in ("logged", "uniform", "most-popular", "model:v"):
        assert name in result.output


def test_report_writes_markdown_and_plots(served_log: Path, tmp_path: Path) -> None:
    result = invoke(
        "--log",
        str(served_log),
        "--policy",
        "uniform",
        "--report",
        str(tmp_path / "report"),
        "--interval",
        "bootstrap",
        "--bootstrap-samples",
        "100",
    )
    assert result.exit_code == 0, result.output
    report = (tmp_path / "report" / "report.md").read_text()
    for image in ("estimates.png", "reward_over_time.png", "exploration.png"):
        assert f"]({image})" in report
        assert (tmp_path / "report" / image).read_bytes()[:4] == b"\x89PNG"
    assert "bootstrap (100 resamples)" in report
    assert "reward model for DM, DR, SNDR: logistic" in report and "held-out logged offers" in report


def test_obd_directory_is_evaluated(tmp_path: Path) -> None:
    directory = write_obd(tmp_path / "random" / "all", rows=300)
    result = invoke("--obd", str(directory), "--json", "--policy", "uniform")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    logged, uniform = report["policies"]
    # the fixture logs uniformly, so uniform's IPS is exactly the logged mean
    ips = next(e for e in uniform["estimates"] if e["estimator"] == "IPS")
    assert ips["value"] == pytest.approx(logged["estimates"][0]["value"])
    assert report["summary"]["exploration"] is None  # OBD does not keep the whole distribution


def test_the_reward_models_held_out_quality_is_reported_beside_dm_and_dr(tmp_path: Path) -> None:
    directory = write_obd(tmp_path / "random" / "all", rows=300)
    report = json.loads(invoke("--obd", str(directory), "--json", "--policy", "uniform").stdout)
    model = report["reward_model"]
    assert model["kind"] == "auto" and model["folds"] == 2
    quality = model["quality"]
    assert quality["kind"] == "logistic"
    assert quality["reason"] == "auto: every reward is within [0, 1] (seen 0 to 1)"
    assert quality["n"] == 300  # one held-out prediction per logged offer
    assert 0 < quality["brier"] < 1 and 0 < quality["baseline_brier"] < 1
    assert quality["skill"] == pytest.approx(1 - quality["brier"] / quality["baseline_brier"])
    assert 0 < quality["log_loss"] < 1 and 0 < quality["baseline_log_loss"] < 1
    assert 0 < quality["mean_prediction"] < 1
    assert {e["estimator"] for e in report["policies"][1]["estimates"]} >= {"DM", "DR"}

    table = invoke("--obd", str(directory), "--policy", "uniform").stdout
    assert "reward model for DM, DR, SNDR: logistic (auto: every reward is within [0, 1]" in table
    assert f"on 300 held-out logged offers: Brier {quality['brier']:.6f}" in table
    assert f"skill {quality['skill']:+.4f}" in table


def test_the_reward_model_can_be_chosen_and_skipped(tmp_path: Path) -> None:
    directory = write_obd(tmp_path / "random" / "all", rows=300)
    chosen = json.loads(invoke("--obd", str(directory), "--json", "--reward-model", "vw-squared").stdout)
    assert chosen["reward_model"]["quality"]["kind"] == "vw-squared"
    assert chosen["reward_model"]["quality"]["reason"] == "chosen with --reward-model"
    skipped = invoke("--obd", str(directory), "--no-reward-model")
    assert skipped.exit_code == 0, skipped.output
    assert "reward model for" not in skipped.stdout
    skipped_json = json.loads(invoke("--obd", str(directory), "--json", "--no-reward-model").stdout)
    assert skipped_json["reward_model"] is None
    unknown = invoke("--obd", str(directory), "--reward-model", "forest")
    assert unknown.exit_code == 2 and "'forest' is not one of" in unknown.output


def _empty_log(tmp_path: Path) -> list[str]:
    settings = make_settings(tmp_path)
    from service.resources import open_log_and_registry

    store, _ = open_log_and_registry(settings)
    store.close()
    return ["--log", str(settings.resolved_log_path)]


def _corrupt_log(tmp_path: Path) -> list[str]:
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is not a database at all" * 100)
    return ["--log", str(path)]


def _foreign_sqlite(tmp_path: Path) -> list[str]:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (x)")
    return ["--log", str(path)]


def _edited_copy(tmp_path: Path, served_log: Path, choices_sql: str) -> list[str]:
    """Copy the served log and rewrite one decision's choices JSON with `choices_sql`."""
    copy = tmp_path / "xsell.db"
    with sqlite3.connect(served_log) as source, sqlite3.connect(copy) as target:
        source.backup(target)
        target.execute(
            f"UPDATE decisions SET choices = {choices_sql} "
            "WHERE event_id = (SELECT min(event_id) FROM decisions)"
        )
    return ["--log", str(copy), "--policy", "uniform"]


def _zero_propensity(tmp_path: Path, served_log: Path) -> list[str]:
    return _edited_copy(tmp_path, served_log, "json_set(choices, '$[0].probability', 0)")


def _null_propensity(tmp_path: Path, served_log: Path) -> list[str]:
    return _edited_copy(tmp_path, served_log, "json_set(choices, '$[0].probability', NULL)")


def _missing_propensity(tmp_path: Path, served_log: Path) -> list[str]:
    return _edited_copy(tmp_path, served_log, "json_remove(choices, '$[0].probability')")


def _bad_obd(tmp_path: Path) -> list[str]:
    return ["--obd", str(write_obd(tmp_path / "d", rows=5, broken={2: {"propensity_score": "0"}}))]


def _obd_rewards_missing(tmp_path: Path) -> list[str]:
    return ["--obd", str(write_obd(tmp_path / "d", rows=5, broken={1: {"click": ""}}))]


@pytest.mark.parametrize(
    ("make_args", "message"),
    [
        (lambda tmp, log: ["--log", str(tmp / "missing.db")], "no xsell log at"),
        (lambda tmp, log: _empty_log(tmp), "the log is empty"),
        (lambda tmp, log: _corrupt_log(tmp), "unreadable"),
        (lambda tmp, log: _foreign_sqlite(tmp), "not an xsell log"),
        (_zero_propensity, "propensity 0 of slot 1 is outside (0, 1]"),
        (_null_propensity, "propensity None of slot 1 is outside (0, 1]"),
        (_missing_propensity, "the stored decision is malformed (missing 'probability')"),
        (lambda tmp, log: _bad_obd(tmp), "propensity 0.0 of slot 1 is outside (0, 1]"),
        (lambda tmp, log: _obd_rewards_missing(tmp), "click '' is not a number"),
        (lambda tmp, log: ["--obd", str(tmp)], "all.csv"),
        (lambda tmp, log: ["--log", str(log), "--policy", "popular"], "unknown policy 'popular'"),
        (lambda tmp, log: ["--log", str(log), "--policy", "model:v999"], "no such version"),
        (lambda tmp, log: ["--log", str(log), "--policy", "vw:--epsilon 0.1"], "--cb_explore_adf"),
    ],
)
def test_bad_input_gives_one_clear_line_and_a_nonzero_exit(tmp_path, served_log, make_args, message) -> None:
    result = invoke(*make_args(tmp_path, served_log))
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit), result.exception  # not an uncaught error
    assert message in result.output
    assert "Traceback" not in result.output


def test_log_and_obd_together_is_a_usage_error(tmp_path: Path, served_log: Path) -> None:
    result = invoke("--log", str(served_log), "--obd", str(tmp_path))
    assert result.exit_code == 2
    assert "not both" in result.output


def test_a_log_whose_decisions_are_all_open_says_so_not_that_it_is_empty(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, reward_window_seconds=600.0)
    app = create_app(settings)
    answer = app.test_client().post("/v1/rank", json={"actions": [{"id": "a"}, {"id": "b"}]})
    assert answer.status_code == 200
    app.extensions["xsell"].store.close()

    result = invoke("--log", str(settings.resolved_log_path))

    assert result.exit_code != 0 and isinstance(result.exception, SystemExit)
    assert "no closed decisions to evaluate: 1 logged, all still open (within the reward window, 600 s" in (
        result.output
    )
    assert "the log is empty" not in result.output
