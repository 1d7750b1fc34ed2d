"""Version numbers come from the log under its lock: concurrent publishers never collide.

660 concurrent ``DELETE /personalizer/model`` during load once gave HTTP 500s and
learner crashes: a reset and the learner both read ``MAX(seq) + 1``, wrote the same
file and failed on the second insert.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from flask import Flask

from logs.model_index import ModelIndex
from logs.store import LogStore
from policies.deciding.vw import VWPolicy, file_sha256
from policies.learning.learner import Learner, LearnerOptions
from policies.learning.registry import ModelRegistry
from policies.learning.rewards import RewardRules
from service.app import create_app
from tests.conftest import make_settings
from tests.logs.helpers import decision

ARGS = "--cb_explore_adf --epsilon 0.2 -q ::"
ADMIN = {"Ocp-Apim-Subscription-Key": "admin-key"}


def open_registry(tmp_path: Path) -> tuple[LogStore, ModelRegistry]:
    store = LogStore(tmp_path / "log.db")
    store.migrate()
    return store, ModelRegistry(tmp_path / "models", ModelIndex(store))


def test_a_publish_that_overlaps_another_gets_its_own_version_and_file(tmp_path: Path) -> None:
    store_a, first = open_registry(tmp_path)
    store_b, second = open_registry(tmp_path)
    first.ensure_initial(ARGS)
    overlapping = VWPolicy(ARGS)
    real_save = overlapping.save

    def save_after_the_other_publishes(path: Path):  # type: ignore[no-untyped-def]
        second.publish(VWPolicy(ARGS), parent=None, state="candidate")  # lands between number and insert
        return real_save(path)

    overlapping.save = save_after_the_other_publishes  # type: ignore[method-assign]
    mine = first.publish(overlapping, parent="v1")
    versions = {m.version: m for m in first.index.versions()}
    assert sorted(versions) == ["v1", "v2", "v3"] and mine.version == "v2"
    for model in versions.values():
        assert file_sha256(first.model_dir / model.path) == model.sha256  # nobody's file was overwritten
    store_a.close()
    store_b.close()


def test_reserved_numbers_are_never_handed_out_again(tmp_path: Path) -> None:
    store, registry = open_registry(tmp_path)
    registry.ensure_initial(ARGS)
    seqs = [registry.index.reserve_seq() for _ in range(3)]  # reserved, never published
    assert seqs == [2, 3, 4]
    assert registry.publish(VWPolicy(ARGS), parent="v1").version == "v5"
    store.close()


def test_many_concurrent_resets_while_the_learner_publishes(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, admin_api_keys="admin-key")
    workers = [create_app(settings) for _ in range(4)]  # one log connection each, like gunicorn workers
    store = LogStore(settings.resolved_log_path)  # the learner's own connection to the same log
    registry = ModelRegistry(settings.resolved_model_dir, ModelIndex(store))
    learner = Learner(
        store, registry, RewardRules(), LearnerOptions(ARGS, snapshot_interval_seconds=3600, grace_seconds=0)
    )
    learner.start()
    start = threading.Barrier(len(workers) + 1)
    resets_done = threading.Event()
    statuses: list[int] = []
    failures: list[BaseException] = []
    outcomes = {"published": 0, "dropped": 0}

    def reset_many(app: Flask) -> None:
        client = app.test_client()
        start.wait()
        for _ in range(15):
            statuses.append(client.delete("/personalizer/v1.0/model", headers=ADMIN).status_code)

    def learn_and_publish() -> None:
        start.wait()
        n = 0
        try:
            while not resets_done.is_set() or n < 5:
                n += 1
                now = time.time()
                store.record_decision(decision(f"e{n}", created_at=now - 100, window=1))
                learner.step(now=now)
                outcomes["published" if learner.snapshot() else "dropped"] += 1
        except BaseException as error:  # the learner must not crash
            failures.append(error)

    threads = [threading.Thread(target=reset_many, args=(app,)) for app in workers]
    threads.append(threading.Thread(target=learn_and_publish))
    for thread in threads:
        thread.start()
    for thread in threads[:-1]:
        thread.join()
    resets_done.set()
    threads[-1].join()

    assert statuses and set(statuses) == {204}, statuses
    assert len(statuses) == 60 and failures == []
    assert outcomes["published"] + outcomes["dropped"] >= 5
    versions = registry.index.versions()
    assert len({m.seq for m in versions}) == len(versions) >= 61
    resets = [c for c in registry.index.changes(limit=1000) if c.action == "reset"]
    assert len(resets) == 60
    kept = [m for m in versions if registry.has_file(m)]
    assert kept
    for model in kept:  # every file on disk is the one its record describes
        assert file_sha256(registry.model_dir / model.path) == model.sha256
    registry.load(registry.active())
    for app in workers:
        app.extensions["xsell"].store.close()
    store.close()
