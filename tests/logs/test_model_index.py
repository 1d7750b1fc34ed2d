"""ModelIndex on SQLite and PostgreSQL (tests/logs/conftest.py): compare-and-swap, history, switches."""

from __future__ import annotations

import threading

import pytest

from logs.model_index import ModelIndex
from logs.store import LogStore
from policies.learning.registry import ActiveChanged, ModelChange, ModelVersion, UnknownVersion
from tests.logs.helpers import decision


def _version(index: ModelIndex, name: str, state: str = "active") -> ModelVersion:
    return ModelVersion(index.reserve_seq(), name, None, "vw", "--cb_explore_adf", 1.0, 0, "sha", name, state)


def test_publish_is_a_compare_and_swap_and_marks_what_was_learned(store: LogStore) -> None:
    index = ModelIndex(store)
    store.record_decision(decision("e1", created_at=1.0))
    index.publish(_version(index, "v1"), ["e1"])
    with pytest.raises(ActiveChanged):
        index.publish(_version(index, "v2"), expect_active="v0")
    index.publish(_version(index, "v2"), expect_active="v1")
    index.publish(_version(index, "shadow", "candidate"))
    assert index.active() is not None and index.active().version == "v2"  # type: ignore[union-attr]
    assert [v.version for v in index.versions()] == ["shadow", "v2", "v1"]
    assert [v.seq for v in index.versions()] == [4, 3, 1]  # the refused publish's 2 is never reused
    learned = store.conn.execute("SELECT learned_in FROM decisions WHERE event_id = 'e1'").fetchone()[0]
    assert learned == "v1"


def test_activate_records_who_and_can_relearn(store: LogStore) -> None:
    index = ModelIndex(store)
    store.record_decision(decision("e1", created_at=1.0))
    index.publish(_version(index, "v1"))
    index.publish(_version(index, "v2"), ["e1"])
    assert index.activate("v1", action="rollback", actor="cli", reason="worse", relearn=True) == "v2"
    assert store.conn.execute("SELECT learned_in FROM decisions").fetchone()[0] is None
    with pytest.raises(UnknownVersion):
        index.activate("nope", action="activate", actor="cli", reason=None)
    index.record_change(ModelChange(5.0, "import", "v2", None, "cli", None))
    assert [(c.action, c.version, c.previous) for c in index.changes()] == [
        ("import", "v2", None),
        ("rollback", "v1", "v2"),
    ]
    assert index.find("v2") is not None and index.find("v3") is None


def test_switches_read_and_written_together_never_lose_an_update(store: LogStore) -> None:
    index = ModelIndex(store)
    index.set_control("learning_frozen", "1")
    assert index.control("learning_frozen") == "1"
    index.set_control("learning_frozen", None)
    assert index.control("learning_frozen") is None

    def add_one() -> None:
        for _ in range(15):
            index.update_control("count", lambda v: str(int(v or 0) + 1))

    threads = [threading.Thread(target=add_one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert index.control("count") == "45"
    seqs: list[int] = []

    def reserve() -> None:
        seqs.extend(index.reserve_seq() for _ in range(10))

    reservers = [threading.Thread(target=reserve) for _ in range(3)]
    for thread in reservers:
        thread.start()
    for thread in reservers:
        thread.join()
    assert sorted(seqs) == list(range(1, 31))
