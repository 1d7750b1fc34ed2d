"""A corrupt active model at startup, paths in answers, and rollbacks that say what they chose.

Real log, real VW models, the Flask app as each gunicorn worker builds it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from policies.deciding.vw import VWPolicy, card_path
from policies.learning.registry import ModelRegistry, RegistryError
from scripts.cli import cli
from service.app import create_app
from service.resources import open_log_and_registry
from service.settings import Settings
from tests.conftest import make_settings, rank_body

ADMIN = {"Authorization": "Bearer admin-secret"}


def published(settings: Settings, *learned: int) -> list[str]:
    """Publish the initial model, then one active version per entry with that many events learned."""
    store, registry = open_log_and_registry(settings)
    registry.ensure_initial(settings.vw_args)
    names = ["v1"]
    for events in learned:
        model = registry.publish(
            VWPolicy(settings.vw_args, events_learned=events), parent=registry.active().version
        )
        names.append(model.version)
    store.close()
    return names


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:40])


def unreadable_card(path: Path) -> None:
    card_path(path).write_text("{not json")


def delete(path: Path) -> None:
    path.unlink()


def wrong_options(path: Path) -> None:
    """A file a checksum-matching card would not protect from: VW would obey its header."""
    data = bytearray(path.read_bytes())
    start = data.index(b"--csoaa_rank")
    data[start : start + 12] = b"--daemon    "
    path.write_bytes(bytes(data))


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, admin_api_keys="admin-secret")


@pytest.mark.parametrize("damage", [truncate, unreadable_card, delete, wrong_options])
def test_startup_with_a_broken_active_model_serves_the_newest_intact_one_and_says_so(
    settings: Settings, damage: Callable[[Path], None]
) -> None:
    v1, v2, v3 = published(settings, 10, 20)
    damage(settings.resolved_model_dir / f"{v3}.vw")
    app = create_app(settings)
    client = app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.get_json()
    body = ready.get_json()
    assert body["model_version"] == v2
    assert any(f"fell back to {v2} (was {v3})" in w for w in body["warnings"]), body
    assert str(settings.data_dir) not in ready.get_data(as_text=True)
    assert client.post("/v1/rank", json=rank_body()).get_json()["model_version"] == v2
    [change] = app.extensions["xsell"].registry.index.changes()
    assert (change.action, change.version, change.previous, change.actor) == ("fallback", v2, v3, "startup")
    assert "serving the newest intact version" in change.reason
    second = create_app(settings)  # the next worker finds v2 active and changes nothing
    assert len(second.extensions["xsell"].registry.index.changes()) == 1
    for started in (app, second):
        started.extensions["xsell"].store.close()


def test_with_no_intact_version_startup_serves_a_new_untrained_model_and_says_why(settings: Settings) -> None:
    names = published(settings, 10)
    for name in names:
        truncate(settings.resolved_model_dir / f"{name}.vw")
    app = create_app(settings)
    body = app.test_client().get("/readyz").get_json()
    assert body["status"] == "ready" and body["model_version"] == "v3"
    [change] = app.extensions["xsell"].registry.index.changes()
    assert change.action == "fallback" and "no other version is intact" in change.reason
    assert app.extensions["xsell"].registry.active().events_learned == 0
    app.extensions["xsell"].store.close()


def test_answers_about_a_broken_model_name_no_path(settings: Settings) -> None:
    v1, v2 = published(settings, 10)
    app = create_app(settings)
    client = app.test_client()
    registry: ModelRegistry = app.extensions["xsell"].registry
    truncate(settings.resolved_model_dir / f"{v1}.vw")
    refused = client.post(f"/v1/models/{v1}/activate", headers=ADMIN, json={})
    assert refused.status_code == 409 and "does not load" in refused.get_json()["message"]
    broken = registry.publish(VWPolicy(settings.vw_args, events_learned=30), parent=v2)
    delete(settings.resolved_model_dir / f"{broken.version}.json")  # the running worker cannot load it
    ready = client.get("/readyz").get_json()
    assert ready["model_version"] == v2
    assert any(f"cannot load {broken.version}" in w for w in ready["warnings"])
    for text in (refused.get_data(as_text=True), str(ready)):
        assert str(settings.data_dir) not in text and "/tmp/" not in text
    app.extensions["xsell"].store.close()


def test_a_worker_that_cannot_load_a_newer_version_logs_it_once(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    v1, v2 = published(settings, 10)
    app = create_app(settings)
    served = app.extensions["xsell"].served
    registry: ModelRegistry = app.extensions["xsell"].registry
    broken = registry.publish(VWPolicy(settings.vw_args, events_learned=30), parent=v2)
    truncate(settings.resolved_model_dir / f"{broken.version}.vw")
    with caplog.at_level("ERROR", logger="service.resources"):
        for _ in range(20):  # twenty polls
            served.refresh()
    assert served.version.version == v2
    assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 1
    app.extensions["xsell"].store.close()


def test_rollback_never_picks_an_untrained_model_unless_named(settings: Settings) -> None:
    published(settings, 0, 0)  # v1..v3, none learned anything
    app = create_app(settings)
    client = app.test_client()
    refused = client.post("/v1/models/rollback", headers=ADMIN, json={})
    assert refused.status_code == 409
    assert "no earlier version learned anything" in refused.get_json()["message"]
    assert app.extensions["xsell"].registry.active().version == "v3"
    named = client.post("/v1/models/rollback", headers=ADMIN, json={"to": "v1"}).get_json()
    assert named["version"] == "v1" and named["target"]["events_learned"] == 0
    assert "learned nothing" in named["target"]["why"]
    app.extensions["xsell"].store.close()


def test_rollback_chooses_a_trained_version_and_returns_why(settings: Settings) -> None:
    published(settings, 40, 0)  # v2 learned 40 events, v3 is a fresh reset
    app = create_app(settings)
    answer = app.test_client().post("/v1/models/rollback", headers=ADMIN, json={"reason": "bad"})
    body = answer.get_json()
    assert answer.status_code == 200 and body["version"] == "v2" and body["previous"] == "v3"
    assert body["target"]["events_learned"] == 40 and "learned events" in body["target"]["why"]
    assert body["reason"].startswith("bad; ")  # the history keeps why this version was chosen
    app.extensions["xsell"].store.close()


def test_the_cli_prints_the_chosen_version_and_why_or_refuses(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    published(settings, 0, 0)
    monkeypatch.setenv("XSELL_DATA_DIR", str(settings.data_dir))
    refused = CliRunner().invoke(cli, ["models", "rollback"])
    assert refused.exit_code == 1 and "no earlier version learned anything" in refused.output
    assert "--to" in refused.output
    named = CliRunner().invoke(cli, ["models", "rollback", "--to", "v2"])
    assert named.exit_code == 0, named.output
    assert "rollback: v2 is active (was v3)" in named.output
    assert "chosen: v2 was named (it learned nothing: an untrained model)" in named.output


def test_choose_rollback_prefers_old_enough_trained_versions(registry: ModelRegistry) -> None:
    registry.ensure_initial("--cb_explore_adf")
    for learned in (5, 6, 0):
        registry.publish(VWPolicy("--cb_explore_adf", events_learned=learned), parent=None)
    target, why = registry.choose_rollback(older_than_seconds=0.0)
    assert target.version == "v3" and "newest earlier version that learned events" in why
    target, why = registry.choose_rollback(older_than_seconds=3600.0)
    assert target.version == "v2" and "oldest kept one that learned events" in why
    with pytest.raises(RegistryError, match="no model version 'v9'"):
        registry.choose_rollback(to="v9")
