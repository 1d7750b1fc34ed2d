"""Where Personalizer's own test suite found xsell different, pinned on a real log and registry (#18).

tests/e2e/personalizer_suite runs Microsoft's suite itself against gunicorn; these
tests say what each difference became, and that /v1 stays strict.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import tarfile
import threading
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from policies.deciding.live_config import read_overrides
from service.effective import ConfigSource
from service.loop_health import loop_health
from service.personalizer.configuration import PERSONALIZER_DEFAULT_ARGS
from service.personalizer.signing import KEY_FILE
from service.resources import open_log_and_registry
from tests.conftest import make_settings
from tests.service.test_personalizer import (
    ACTIONS,
    ADMIN,
    MULTI,
    PREVIEW,
    V1,
    make_client,
    rank_body,
    store_of,
)

MULTI_SLOT_POLICY = "--ccb_explore_adf --epsilon 0.2 --power_t 0 -l 0.001 --cb_type mtr -q ::"


@pytest.fixture
def pclient(tmp_path: Path) -> FlaskClient:
    client, _ = make_client(tmp_path)
    return client


def unmatched(client: FlaskClient) -> dict[str, float]:
    text = client.get("/metrics").get_data(as_text=True)
    found = {}
    for line in text.splitlines():
        if line.startswith("xsell_personalizer_unmatched_total{"):
            call = line.split('call="', 1)[1].split('"', 1)[0]
            found[call] = float(line.rsplit(" ", 1)[1])
    assert found, "no xsell_personalizer_unmatched metric"
    return found


# -- 1: the multi-slot policy ------------------------------------------------------------


def test_the_multi_slot_policy_is_accepted_served_and_learned(tmp_path: Path) -> None:
    client, _ = make_client(tmp_path)
    put = client.put(
        f"{PREVIEW}/configurations/policy", headers=ADMIN, json={"name": "ms", "arguments": MULTI_SLOT_POLICY}
    )
    assert put.status_code == 200, put.get_json()
    assert (
        client.get(f"{PREVIEW}/configurations/policy", headers=ADMIN).get_json()["arguments"]
        == MULTI_SLOT_POLICY
    )
    assert client.post(f"{PREVIEW}/multislot/rank", json={**MULTI, "eventId": "m"}).status_code == 201
    refused = client.put(
        f"{PREVIEW}/configurations/policy",
        headers=ADMIN,
        json={"arguments": "--ccb_explore_adf --cb_explore_adf"},
    )
    assert refused.status_code == 400


# -- 2 and 3: unknown events, reused ids, unranked slots ------------------------------------


def test_rewards_and_activations_for_unknown_events_are_204_and_counted_but_v1_stays_404(
    pclient: FlaskClient,
) -> None:
    assert unmatched(pclient) == {"reward": 0, "activate": 0, "slot": 0}
    assert pclient.post(f"{PREVIEW}/events/nobody/reward", json={"value": 1}).status_code == 204
    assert pclient.post(f"{V1}/events/nobody/reward", json={"value": 1}).status_code == 204
    assert pclient.post(f"{PREVIEW}/events/nobody/activate").status_code == 204
    multi = {"reward": [{"slotId": "main", "value": 1}]}
    assert pclient.post(f"{PREVIEW}/multislot/events/nobody/reward", json=multi).status_code == 204
    assert unmatched(pclient) == {"reward": 3, "activate": 1, "slot": 0}
    assert store_of(pclient).conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 0
    assert pclient.post("/v1/events/nobody/reward", json={"value": 1}).status_code == 404
    # the console's health page lists them with the errors
    errors = loop_health(store_of(pclient)).errors
    found = {r["code"]: r["count"] for r in errors if r["route"] == "personalizer"}
    assert found == {"unmatched_reward": 3, "unmatched_activate": 1}


def test_a_reward_for_a_reused_id_goes_to_the_latest_decision_and_v1_refuses_the_reuse(
    pclient: FlaskClient,
) -> None:
    pclient.post(f"{V1}/rank", json=rank_body(eventId="again"))
    second = pclient.post(f"{V1}/rank", json={"actions": ACTIONS[:2], "eventId": "again"}).get_json()
    assert pclient.post(f"{V1}/events/again/reward", json={"value": 0.7}).status_code == 204
    rows = store_of(pclient).conn.execute("SELECT event_id, action_id, value FROM feedback").fetchall()
    assert [tuple(r) for r in rows] == [("again\x1e2", second["rewardActionId"], 0.7)]
    v1 = pclient.post("/v1/rank", json={"event_id": "again", "actions": [{"id": "x"}], "context": {}})
    assert v1.status_code == 409


# -- 4: service configuration ------------------------------------------------------------------


def test_average_aggregation_is_accepted_and_averages_rewards(tmp_path: Path) -> None:
    client, _ = make_client(tmp_path)
    put = client.put(
        f"{PREVIEW}/configurations/service", headers=ADMIN, json={"rewardAggregation": "average"}
    )
    assert put.status_code == 200 and put.get_json()["rewardAggregation"] == "average"
    client.post(f"{V1}/rank", json=rank_body(eventId="avg"))
    for value in (0.2, 0.6):
        client.post(f"{V1}/events/avg/reward", json={"value": value})
    event = store_of(client).closed_events(closed_before=float("inf"))[0][0]
    rules = client.application.extensions["xsell"].live_rules()
    assert rules.slot_rewards(event) == (pytest.approx(0.4),)


def test_model_retrain_days_round_trips(pclient: FlaskClient) -> None:
    put = pclient.put(f"{PREVIEW}/configurations/service", headers=ADMIN, json={"modelRetrainDays": 2})
    assert put.get_json()["modelRetrainDays"] == 2
    assert pclient.get(f"{PREVIEW}/configurations/service", headers=ADMIN).get_json()["modelRetrainDays"] == 2


# -- 5: model export and import ------------------------------------------------------------------


def test_an_import_then_export_gives_back_the_same_bytes_and_a_signature_verifies(tmp_path: Path) -> None:
    client, settings = make_client(tmp_path)
    client.post(f"{V1}/rank", json=rank_body(eventId="e"))
    before = client.get(f"{PREVIEW}/model", headers=ADMIN).get_data()
    signed = client.get(f"{PREVIEW}/model?signed=true", headers=ADMIN).get_data()
    with tarfile.open(fileobj=io.BytesIO(signed)) as archive:
        inner = archive.extractfile("model.tar").read()  # type: ignore[union-attr]
        claimed = json.loads(archive.extractfile("signature.json").read())  # type: ignore[union-attr]
    key = bytes.fromhex((settings.data_dir / KEY_FILE).read_text())
    assert inner == before
    assert claimed["signature"] == hmac.new(key, inner, hashlib.sha256).hexdigest()
    assert client.put(f"{PREVIEW}/model", headers=ADMIN, data=signed).status_code == 204
    assert client.get(f"{PREVIEW}/model", headers=ADMIN).get_data() == before
    versions = client.application.extensions["xsell"].registry.index.versions()
    assert versions[0].note.startswith("imported")  # a new version, served, with the same bytes
    forged = signed.replace(claimed["signature"].encode(), b"0" * 64)
    refused = client.put(f"{PREVIEW}/model", headers=ADMIN, data=forged)
    assert refused.status_code == 400 and "signature" in refused.get_json()["error"]["message"]


# -- 6: reset policy -----------------------------------------------------------------------------------


@pytest.mark.parametrize("setting", ["xsell", "personalizer"])
def test_reset_policy_restores_the_default_the_setting_names(tmp_path: Path, setting: str) -> None:
    client, settings = make_client(tmp_path, personalizer_reset_policy=setting)
    client.put(
        f"{PREVIEW}/configurations/policy",
        headers=ADMIN,
        json={"arguments": "--cb_explore_adf --epsilon 0.3"},
    )
    reset = client.delete(f"{PREVIEW}/configurations/policy", headers=ADMIN).get_json()
    expected = PERSONALIZER_DEFAULT_ARGS if setting == "personalizer" else settings.vw_args
    assert reset["arguments"] == expected
    assert client.get(f"{PREVIEW}/configurations/policy", headers=ADMIN).get_json()["arguments"] == expected


# -- 7: concurrent partial configuration updates -------------------------------------------------------


class ReadsTogether:
    """A worker's view of the log whose plain reads wait for the other worker's read.

    A read-then-write update through it loses one of two concurrent changes every
    time (both read the same overrides, then both write); an atomic one never reads
    this way, so it never waits.
    """

    def __init__(self, index: Any, barrier: threading.Barrier):
        self.index, self.barrier = index, barrier

    def control(self, key: str) -> str | None:
        found = self.index.control(key)
        self.barrier.wait()
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.index, name)


def test_concurrent_partial_updates_from_two_workers_never_undo_each_other(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    opened = [open_log_and_registry(settings) for _ in range(2)]  # two connections, as two workers have
    reads = threading.Barrier(2, timeout=10)
    sources = [ConfigSource(settings, ReadsTogether(registry.index, reads)) for _, registry in opened]
    barrier = threading.Barrier(2, timeout=60)
    lost: list[tuple[int, Any, Any]] = []

    def worker(k: int) -> None:
        for n in range(1, 21):
            barrier.wait()  # both change at once, each a different setting
            sources[k].change({"default_reward": float(n)} if k == 0 else {"exploration_share": n / 100})
            barrier.wait()
            if k == 0:
                saved = read_overrides(opened[0][1].index).values
                if (saved.get("default_reward"), saved.get("exploration_share")) != (n, n / 100):
                    lost.append((n, saved.get("default_reward"), saved.get("exploration_share")))

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store, _ in opened:
        store.close()
    assert lost == []
