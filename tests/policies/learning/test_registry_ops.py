"""Activation, rollback, promotion, freezing, retention and export/import on a real registry."""

from __future__ import annotations

import dataclasses
import io
import tarfile
import time
from pathlib import Path

import pytest

from logs.model_index import ModelIndex
from logs.store import LogStore
from policies.base import Action, SlotChoice
from policies.deciding.vw import VWPolicy
from policies.learning.learner import Learner, LearnerOptions
from policies.learning.registry import ModelRegistry, RegistryError, RetentionPolicy, UnknownVersion
from policies.learning.rewards import RewardRules
from tests.logs.helpers import decision

ARGS = "--cb_explore_adf --epsilon 0.2 -q ::"
ACTIONS = (Action("a"), Action("b"), Action("c"))


def trained(clicks_on: str, n: int = 200) -> VWPolicy:
    """A policy that learned that `clicks_on` is the offer to show."""
    policy = VWPolicy(ARGS)
    for i in range(n):
        chosen = "ab"[i % 2]
        event = dataclasses.replace(decision(f"t{i}").to_event(()), choices=(SlotChoice(0, chosen, 0.5),))
        policy.learn(event, [1.0 if chosen == clicks_on else 0.0])
    return policy


def publish_chain(
    registry: ModelRegistry, count: int, *, spacing: float = 0.0, events_learned: int = 10
) -> list[str]:
    """Publish `count` versions, each `spacing` seconds after the last on the registry's clock."""
    versions = []
    parent = None
    start = registry.clock()
    for i in range(count):
        if spacing:
            registry.clock = lambda at=start + i * spacing: at  # driven, not slept: any machine speed
        model = registry.publish(VWPolicy(ARGS, events_learned=events_learned), parent=parent)
        versions.append(model.version)
        parent = model.version
    return versions


def test_activate_switches_the_active_version_and_records_who_and_why(registry: ModelRegistry) -> None:
    v1, v2 = publish_chain(registry, 2)
    change = registry.activate(v1, actor="cli", reason="known good")
    assert registry.active().version == v1
    assert (change.action, change.version, change.previous) == ("activate", v1, v2)
    [recorded] = registry.index.changes()
    assert (recorded.actor, recorded.reason) == ("cli", "known good")


def test_a_corrupt_or_missing_file_is_never_activated(registry: ModelRegistry) -> None:
    v1, v2 = publish_chain(registry, 2)
    path = registry.model_dir / registry.find(v1).path
    path.write_bytes(path.read_bytes()[:-10])  # truncated
    with pytest.raises(RegistryError, match="does not load"):
        registry.activate(v1, actor="cli")
    path.unlink()
    with pytest.raises(RegistryError, match="pruned"):
        registry.activate(v1, actor="cli")
    with pytest.raises(UnknownVersion):
        registry.activate("v99", actor="cli")
    assert registry.active().version == v2


def test_rollback_defaults_to_a_version_old_enough(registry: ModelRegistry) -> None:
    versions = publish_chain(registry, 5, spacing=0.05)
    change = registry.rollback(actor="cli", older_than_seconds=0.12)
    # v1..v5 are 0.05 s apart: the newest at least 0.12 s older than v5 (0.2 s) is v2 (0.05 s)
    assert change.version == versions[1]
    assert registry.active().version == change.version
    with pytest.raises(RegistryError, match="already active"):
        registry.rollback(to=change.version, actor="cli")


def test_rollback_with_nothing_older_is_refused(registry: ModelRegistry) -> None:
    publish_chain(registry, 1)
    with pytest.raises(RegistryError, match="no earlier model"):
        registry.rollback(actor="cli")


def test_promote_takes_only_candidates(registry: ModelRegistry) -> None:
    v1, v2 = publish_chain(registry, 2)
    shadow = registry.publish(VWPolicy(ARGS), parent=None, state="candidate", note="shadow: x")
    assert registry.active().version == v2  # a candidate does not replace the active one
    with pytest.raises(RegistryError, match="not a candidate"):
        registry.promote(v1, actor="cli")
    registry.promote(shadow.version, actor="cli")
    assert registry.active().version == shadow.version


def _learner(store: LogStore, registry: ModelRegistry) -> Learner:
    learner = Learner(
        store, registry, RewardRules(), LearnerOptions(ARGS, snapshot_interval_seconds=3600, grace_seconds=0)
    )
    learner.start()
    return learner


def test_the_learner_never_publishes_on_top_of_a_rolled_back_model(
    store: LogStore, registry: ModelRegistry
) -> None:
    learner = _learner(store, registry)  # publishes v1
    now = time.time()
    store.record_decision(decision("e1", created_at=now - 100, window=1))
    learner.step(now=now)
    good = learner.snapshot()  # v2 learned e1
    store.record_decision(decision("e2", created_at=now - 50, window=1))
    learner.step(now=now)
    bad = learner.snapshot()  # v3 learned e2
    store.record_decision(decision("e3", created_at=now - 10, window=1))
    learner.step(now=now)  # e3 learned in memory on top of v3 ...
    registry.rollback(to=good.version, actor="cli", reason="v3 is bad")
    assert learner.snapshot() is None  # ... and dropped: v3 is no longer active
    assert learner.version.version == good.version
    learner.step(now=now)
    published = learner.snapshot()
    assert published.parent == good.version  # the restored lineage continues
    learned = dict(store.conn.execute("SELECT event_id, learned_in FROM decisions").fetchall())
    assert learned == {"e1": good.version, "e2": bad.version, "e3": published.version}


def test_rollback_with_relearn_hands_the_discarded_events_to_the_restored_model(
    store: LogStore, registry: ModelRegistry
) -> None:
    learner = _learner(store, registry)
    now = time.time()
    store.record_decision(decision("e1", created_at=now - 100, window=1))
    learner.step(now=now)
    good = learner.snapshot()
    store.record_decision(decision("e2", created_at=now - 50, window=1))
    learner.step(now=now)
    learner.snapshot()
    registry.rollback(to=good.version, actor="cli", relearn=True)
    learner.step(now=now)
    published = learner.snapshot()
    learned = dict(store.conn.execute("SELECT event_id, learned_in FROM decisions").fetchall())
    assert learned == {"e1": good.version, "e2": published.version}


def test_frozen_learning_learns_nothing_until_unfrozen(store: LogStore, registry: ModelRegistry) -> None:
    learner = _learner(store, registry)
    store.record_decision(decision("e1", created_at=time.time() - 100, window=1))
    registry.freeze_learning(True, actor="cli", reason="investigating")
    assert registry.learning_frozen()
    assert learner.step() == 0
    registry.freeze_learning(False, actor="cli")
    assert learner.step() == 1
    assert [c.action for c in registry.index.changes()] == ["unfreeze", "freeze"]


def test_retention_keeps_recent_files_checkpoints_and_activated_versions(
    tmp_path: Path, store: LogStore
) -> None:
    registry = ModelRegistry(
        tmp_path / "models",
        ModelIndex(store),
        retention=RetentionPolicy(keep_recent=2, checkpoint_seconds=3600, keep_checkpoints=1),
        clock=lambda: 1_800_000_000.0 + 60,  # inside one hour, whenever the test runs
    )
    publish_chain(registry, 2)
    registry.activate("v1", actor="cli")
    registry.activate("v2", actor="cli")
    for _ in range(5):
        registry.publish(VWPolicy(ARGS), parent=None)  # v3..v7, pruning as they come
    kept = {m.version for m in registry.index.versions() if registry.has_file(m)}
    # the newest 2 retired (v5, v6), the hour's checkpoint (its oldest, v1), every
    # version ever activated (v1, v2), and the active v7; v3 and v4 are pruned
    assert kept == {"v1", "v2", "v5", "v6", "v7"}


def test_export_then_import_gives_the_same_model_as_a_candidate(
    tmp_path: Path, registry: ModelRegistry
) -> None:
    source = registry.publish(trained("b"), parent=None)
    exported = tmp_path / "model.tar"
    registry.export(source.version, exported)
    other_store = LogStore(tmp_path / "other.db")
    other_store.migrate()
    other = ModelRegistry(tmp_path / "other-models", ModelIndex(other_store))
    imported = other.import_file(exported, actor="cli")
    assert imported.state == "candidate" and imported.sha256 == source.sha256
    assert source.version in imported.note
    context = {"shopper": {"device": "mobile"}}
    before = registry.load(source).rank(context, ACTIONS, frozenset()).probabilities
    after = other.load(imported).rank(context, ACTIONS, frozenset()).probabilities
    assert before.tolist() == after.tolist()
    other_store.close()


def test_import_refuses_a_tampered_or_foreign_file(tmp_path: Path, registry: ModelRegistry) -> None:
    source = registry.publish(VWPolicy(ARGS), parent=None)
    exported = tmp_path / "model.tar"
    registry.export(source.version, exported)
    tampered = tmp_path / "tampered.tar"
    with tarfile.open(exported) as original, tarfile.open(tampered, "w") as copy:
        for member in original.getmembers():
            data = original.extractfile(member).read()
            if member.name == "model.vw":
                data = data[:-5] + b"xxxxx"
            member.size = len(data)
            copy.addfile(member, io.BytesIO(data))
    with pytest.raises(RegistryError, match="checksum it states does not match"):
        registry.import_file(tampered, actor="cli")
    foreign = tmp_path / "foreign.tar"
    foreign.write_bytes(b"not a tar file")
    with pytest.raises(RegistryError, match="cannot read"):
        registry.import_file(foreign, actor="cli")
    assert [m.version for m in registry.index.versions()] == [source.version]
