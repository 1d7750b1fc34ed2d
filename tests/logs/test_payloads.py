"""The decision format: shared payloads, exact propensities, old rows, copy-on-erase."""

from __future__ import annotations

import json
import random
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from logs import payloads
from logs.db import INTEGRITY_ERRORS
from logs.dialect import DatabaseUrl
from logs.shopper_store import ShopperStore
from logs.store import LogStore
from policies.base import Action
from scripts.cli import cli
from scripts.devtools.synthetic import SyntheticProblem
from service.app import create_app
from tests.conftest import make_settings
from tests.logs.helpers import decision

OFFERS = tuple(Action(f"offer-{i}", {"offer": {f"f{j}": f"v{i}-{j}" for j in range(10)}}) for i in range(10))


def test_repeated_candidates_and_contexts_are_stored_once(store: LogStore) -> None:
    for k in range(50):
        store.record_decision(replace(decision(f"e{k}"), actions=OFFERS, probabilities=(0.1,) * 10))
    assert store.conn.execute("SELECT count(*) FROM payloads").fetchone()[0] == 2  # one context, one set
    inline = store.conn.execute("SELECT DISTINCT context, actions FROM decisions").fetchall()
    assert [tuple(r) for r in inline] == [("", "")]
    assert store.find_decision("e49").actions == OFFERS  # type: ignore[union-attr]


def test_a_large_payload_is_compressed_and_reads_back_exactly(store: LogStore) -> None:
    original = replace(decision(), actions=OFFERS, probabilities=(0.1,) * 10)
    store.record_decision(original)
    codecs = [r[0] for r in store.conn.execute("SELECT codec FROM payloads")]
    assert payloads.ZLIB in codecs
    assert store.find_decision("e1") == original


def test_propensities_round_trip_bit_for_bit(store: LogStore) -> None:
    rng = random.Random(7)
    for k in range(200):
        raw = [rng.random() ** 7 for _ in range(3)]
        probabilities = tuple(p / sum(raw) for p in raw)
        original = replace(decision(f"e{k}"), probabilities=probabilities)
        store.record_decision(original)
        stored = store.find_decision(f"e{k}")
        assert stored is not None
        assert np.array_equal(
            np.array(stored.probabilities).view(np.uint64), np.array(probabilities).view(np.uint64)
        )


def test_rows_in_the_format_before_shared_payloads_still_read(store: LogStore) -> None:
    old = decision("old", window=0.0)
    row, _ = old.to_row()
    row.update(
        context=json.dumps(old.context),
        actions=json.dumps([{"id": a.id, "features": a.features} for a in old.actions]),
        context_ref=None,
        actions_ref=None,
    )
    store.conn.execute(
        f"INSERT INTO decisions ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
        tuple(row.values()),
    )
    store.record_decision(decision("new", window=0.0))
    assert store.find_decision("old") == old
    replayed = store.replay_events(closed_before=time.time() + 1)
    assert {e.event_id: e.context for e, _ in replayed} == {"old": old.context, "new": old.context}


def test_a_payload_pruned_under_a_worker_is_written_again(log_location: Path | DatabaseUrl) -> None:
    worker, learner = LogStore(log_location), LogStore(log_location)
    worker.migrate()
    worker.record_decision(decision("first"))
    learner.delete_decisions(["first"])  # releases the payloads the worker remembers
    assert learner.conn.execute("SELECT count(*) FROM payloads").fetchone()[0] == 0
    worker.record_decision(decision("second"))
    assert worker.find_decision("second") == decision(
        "second", created_at=worker.find_decision("second").created_at
    )  # type: ignore[union-attr]


def test_a_broken_constraint_is_raised_as_it_is_not_retried_as_a_pruned_payload(store: LogStore) -> None:
    broken = replace(decision("bad"), model_version=None)  # NOT NULL
    with pytest.raises(INTEGRITY_ERRORS):
        store.record_decision(broken)  # type: ignore[arg-type]
    assert store.find_decision("bad") is None
    stored, new = store.record_decision(decision("good"))
    assert new and stored.event_id == "good"


def test_erasure_copies_a_shared_context_instead_of_changing_it(store: LogStore) -> None:
    shared = {"shopper": {"device": "mobile"}, "session": {"stage": "cart"}, "search": {"tokens": ["tent"]}}
    for event_id in ("alice-1", "bob-1"):
        store.record_decision(replace(decision(event_id), context=shared))
    shoppers = ShopperStore(store)
    shoppers.record_shown("alice-key", "alice-1", [("a", "tripod")], verdict="offer", reason="test")
    shoppers.record_shown("bob-key", "bob-1", [("a", "tripod")], verdict="offer", reason="test")
    erased = shoppers.erase("alice-key")
    assert erased.decisions_anonymised == 1
    assert store.find_decision("bob-1").context == shared  # type: ignore[union-attr]
    contexts = [e.context for e, _ in store.replay_events(closed_before=float("inf"))]
    assert sorted(map(json.dumps, contexts)) == sorted(
        map(json.dumps, [shared, {"session": {"stage": "cart"}}])
    )
    # bob's context is still shared by nobody else once bob is erased: it leaves the file
    shoppers.erase("bob-key")
    stored = [bytes(r[0]) for r in store.conn.execute("SELECT body FROM payloads")]
    assert stored and not any(b"tent" in body for body in stored)


def _served_log(root: Path) -> Path:
    settings = make_settings(root, reward_window_seconds=0.001)
    app = create_app(settings)
    client = app.test_client()
    problem = SyntheticProblem(seed=3)
    rng = np.random.default_rng(3)
    actions = [{"id": a.id, "features": a.features} for a in problem.actions]
    for round_index in range(200):
        context, key = problem.draw_context(rng)
        answer = client.post(
            "/v1/rank", json={"context": context, "actions": actions, "slots": 1 + round_index % 2}
        ).get_json()
        for choice in answer["choices"]:
            if problem.clicks(rng, key, choice["action_id"]):
                client.post(f"/v1/events/{answer['event_id']}/feedback", json={"signal": "click"})
    app.extensions["xsell"].store.close()
    time.sleep(0.01)  # let the last reward windows close
    return settings.resolved_log_path


def _inline(path: Path) -> None:
    """Rewrite every decision as the format before m010 wrote it: JSON inline, no payloads."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    rows = conn.execute(payloads.DECISION_SELECT).fetchall()
    assert rows
    for row in rows:
        conn.execute(
            "UPDATE decisions SET context = ?, actions = ?, context_ref = NULL, actions_ref = NULL"
            " WHERE event_id = ?",
            (
                bytes(payloads.read(row, "context")).decode(),
                bytes(payloads.read(row, "actions")).decode(),
                row["event_id"],
            ),
        )
    conn.execute("DELETE FROM payloads")
    conn.commit()
    conn.close()


def test_evaluate_gives_identical_estimates_on_either_format(tmp_path: Path) -> None:
    shared = _served_log(tmp_path / "shared")
    inline = tmp_path / "inline.db"
    inline.write_bytes(shared.read_bytes())
    _inline(inline)
    reports = []
    for log in (shared, inline):
        result = CliRunner().invoke(
            cli,
            [
                "evaluate",
                "--log",
                str(log),
                "--json",
                "--policy",
                "uniform",
                "--policy",
                "vw:--cb_explore_adf -q ::",
            ],
        )
        assert result.exit_code == 0, result.output
        reports.append(json.loads(result.stdout))
    assert reports[0]["decisions"] == 200
    assert reports[0]["policies"] == reports[1]["policies"]
