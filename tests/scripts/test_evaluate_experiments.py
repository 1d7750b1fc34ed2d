"""`xsell evaluate --policy served` on a log an experiment with rules served: every arm's
decisions replay to what they were served, so the served policy's IPS equals what the
log earned, and the holdout's answers (nothing chosen) are not decisions to evaluate."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from policies.offers.catalog import Product
from scripts.cli import cli
from scripts.devtools.synthetic import SyntheticProblem
from service.app import create_app
from tests.conftest import make_settings

ADMIN = {"Authorization": "Bearer admin-key"}


def test_served_replays_a_log_with_an_experiment_rules_and_promotions_to_what_it_earned(
    tmp_path: Path,
) -> None:
    settings = make_settings(
        tmp_path, reward_window_seconds=0.001, admin_api_keys="admin-key", shopper_id_secret="e"
    )
    app = create_app(settings)
    client = app.test_client()
    first = app.extensions["xsell"].registry.active().version
    problem = SyntheticProblem(seed=3)
    rng = np.random.default_rng(3)
    actions = [{"id": a.id, "features": a.features} for a in problem.actions]
    arms = [
        {"name": "bandit", "policy": "model", "share": 0.3},
        {"name": "frozen", "policy": "frozen", "share": 0.2, "version": first},
        {"name": "popular", "policy": "most-popular", "share": 0.2},
        {"name": "holdout", "policy": "no-offer", "share": 0.3},
    ]
    assert client.post("/v1/experiments", headers=ADMIN, json={"id": "x", "arms": arms}).status_code == 201
    catalog = app.extensions["xsell"].catalog  # promotions name products of the catalog
    catalog.upsert_products(Product(a.id, a.id, a.id, 10.0, stock=3) for a in problem.actions)
    rules = {
        "never_categories": ["nothing-here"],
        "boosts": [{"sku": "warranty", "factor": 3.0}, {"sku": "case", "factor": 0.5}],
        "campaigns": [
            {"name": "share", "products": ["tripod", "charger"], "min_share": 0.6, "period_seconds": 60},
            {"name": "cap", "products": ["headphones"], "min_share": 0.2, "max_impressions": 10},
        ],
    }
    assert client.put("/v1/rules", headers=ADMIN, json=rules).status_code == 200
    held = 0
    for k in range(300):
        context, key = problem.draw_context(rng)
        body = {"event_id": f"e{k}", "context": context, "actions": actions, "slots": 1 + k % 2}
        body["filters"] = {"exclude_skus": [actions[k % len(actions)]["id"]]}
        answer = client.post("/v1/rank", json=body).get_json()
        held += not answer["choices"]
        for choice in answer["choices"]:
            if problem.clicks(rng, key, choice["action_id"]):
                feedback = {"signal": "click", "action_id": choice["action_id"]}
                client.post(f"/v1/events/{answer['event_id']}/feedback", json=feedback)
    traces = [app.extensions["xsell"].store.find_decision(f"e{k}") for k in range(300)]
    traces = [d.rules for d in traces if d is not None]
    assert sum("boosted" in t for t in traces) > 50 and sum("mixed" in t for t in traces) > 50
    assert sum(t["removed"].get("headphones") == "rules.campaigns.cap.cap" for t in traces) > 50
    app.extensions["xsell"].store.close()
    time.sleep(0.01)  # let the last reward windows close
    assert held > 50
    result = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--log",
            str(settings.resolved_log_path),
            "--json",
            "--policy",
            "served",
            "--no-reward-model",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["decisions"] == 300 - held  # the holdout's answers are not decisions
    policies = {p["policy"]: p for p in report["policies"]}
    logged = policies["logged"]["estimates"][0]["value"]
    ips = next(e for e in policies["served"]["estimates"] if e["estimator"] == "IPS")
    assert ips["n"] == 300 - held
    assert ips["value"] == pytest.approx(logged, abs=1e-12)  # every propensity replayed exactly
