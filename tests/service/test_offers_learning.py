"""Through the real offers path, the bandit learns what simulated shoppers want.

Flask test client, SQLite log, learner and model reloads are all real. After
3,000 requests the policy the app serves is judged exactly (the shoppers' click
and dismissal probabilities are known) against the two rankings a store would use
without learning: co-purchase popularity (always the strongest relation's offer)
and uniform random over the same candidates.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from scripts.devtools.learning_loop import Clock
from scripts.devtools.shoppers import PERSONAS, ShopperWorld, drive, expected_outcomes
from scripts.learn import build_learner
from tests.conftest import demo_shop, make_settings

SECONDS_PER_REQUEST = 0.5  # of the test's own clock: what is learned never depends on machine speed


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_the_bandit_beats_popularity_and_uniform_with_fewer_dismissals(tmp_path: Path, seed: int) -> None:
    clock = Clock()
    settings = make_settings(tmp_path, guardrail_enabled=False)
    app = demo_shop(tmp_path, clock=clock, guardrail_enabled=False)
    client = app.test_client()
    learner, _ = build_learner(settings, clock=clock)
    learner.start()
    served = app.extensions["xsell"].served

    def tick(index: int) -> None:
        clock.now += SECONDS_PER_REQUEST
        if index % 100 == 99:
            learner.step()
            served.refresh()

    requests_made = itertools.count()

    def post(path: str, body: dict) -> dict:
        if path == "/v1/offers":  # event ids seed the sampler: named, a run repeats exactly
            body = {**body, "event_id": f"offers-{seed}-{next(requests_made)}"}
        response = client.post(path, json=body)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    world = ShopperWorld(seed=seed)
    drive(post, world, 3000, every=tick)

    store = app.extensions["xsell"].store
    catalog = app.extensions["xsell"].catalog
    click = {"bandit": [], "popularity": [], "uniform": []}
    dismiss = {"bandit": [], "popularity": [], "uniform": []}
    for persona in PERSONAS:
        for anchor, skus in sorted(world.anchors.items()):
            answer = post("/v1/offers", world.request(persona, skus[0], 1))
            record = store.find_decision(answer["event_id"])
            kinds = [a.features["offer"]["category"] for a in record.actions]
            n = len(kinds)
            # co-purchase popularity: the kind most often bought with this anchor in the order history
            mined = {
                r.complement: r.confidence or 0.0
                for r in catalog.relations([anchor])
                if r.source == "co-purchase" and r.level == "category"
            }
            best = int(np.argmax([mined.get(kind, 0.0) for kind in kinds]))
            policies = {
                "bandit": record.probabilities,
                "popularity": [float(i == best) for i in range(n)],
                "uniform": [1 / n] * n,
            }
            for name, probabilities in policies.items():
                expected_click, expected_dismissal = expected_outcomes(
                    world, persona, anchor, kinds, probabilities
                )
                click[name].append(expected_click)
                dismiss[name].append(expected_dismissal)
    ctr = {name: float(np.mean(values)) for name, values in click.items()}
    dismissals = {name: float(np.mean(values)) for name, values in dismiss.items()}
    # A learner that learned nothing serves uniform (0.161 here); co-purchase popularity is 0.167.
    assert ctr["bandit"] >= ctr["popularity"] + 0.05, ctr
    assert ctr["bandit"] >= ctr["uniform"] + 0.08, ctr
    assert dismissals["bandit"] < min(dismissals["popularity"], dismissals["uniform"]), dismissals
