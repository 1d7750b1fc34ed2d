"""Archives: closed days to Parquet before pruning, read back by `xsell evaluate --archive`."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from logs.archive import Archive, ArchiveUnavailable, read_archive
from logs.db import transaction
from logs.dialect import DatabaseUrl
from logs.footprint import DAY_SECONDS
from logs.records import DecisionRecord
from logs.replay import closed_decisions
from logs.store import LogStore
from policies.base import Action, Mixing, Ranking, SlotChoice
from policies.deciding.promotions import boosted_trace, mixed_trace
from policies.deciding.sampling import choose, first_slot, seed_for, served
from policies.evaluation.replay import EvaluationOptions
from policies.learning.rewards import RewardRules
from scripts.cli import cli
from scripts.evaluate import Loaded, run, to_json
from tests.logs.helpers import decision
from tests.logs.test_payloads import _served_log

DAY = 20_000 * DAY_SECONDS  # midnight UTC
NOW = DAY + 3.5 * DAY_SECONDS


class Clock:
    def __init__(self, at: float):
        self.at = at

    def __call__(self) -> float:
        return self.at


def rewards(event) -> tuple[float, ...]:  # type: ignore[no-untyped-def]
    return RewardRules().slot_rewards(event)


@pytest.fixture
def logged(log_location: Path | DatabaseUrl) -> tuple[LogStore, Clock]:
    """Three past days of decisions (one clicked each hour), and one decision today (SQLite, PostgreSQL)."""
    clock = Clock(DAY)
    store = LogStore(log_location, clock=clock)
    store.migrate()
    for day in range(3):
        for hour in range(24):
            at = DAY + day * DAY_SECONDS + hour * 3600
            probabilities = (1 / 3, 0.1 + hour / 1000, 1 - 1 / 3 - 0.1 - hour / 1000)
            record = replace(
                decision(f"d{day}-{hour:02d}", created_at=at, window=600), probabilities=probabilities
            )
            store.record_decision(record)
            if hour % 2:
                clock.at = at + 10
                store.record_feedback(record.event_id, "click", None)
    store.record_decision(decision("today", created_at=NOW - 60, window=600))
    clock.at = NOW
    return store, clock


def test_every_closed_past_day_gets_one_file_with_the_arrays_ope_tools_expect(
    logged: tuple[LogStore, Clock], tmp_path: Path
) -> None:
    store, _ = logged
    archive = Archive(tmp_path / "archive", rewards)
    written = archive.write_closed_days(store, now=NOW)
    assert [p.name for p in written] == [
        "decisions-2024-10-04.parquet",
        "decisions-2024-10-05.parquet",
        "decisions-2024-10-06.parquet",
    ]
    table = pq.read_table(written[0]).to_pydict()
    assert len(table["event_id"]) == 24
    for column in ("action", "position", "reward", "pscore", "action_dist", "context"):
        assert column in table
    assert table["action"][0] == 0 and table["position"][0] == 0 and table["pscore"][0] == 0.5
    assert table["reward"][:2] == [0.0, 1.0]  # the odd hours were clicked
    assert archive.write_closed_days(store, now=NOW) == []  # each day once


def test_archived_days_read_back_exactly_as_the_log_replays_them(
    logged: tuple[LogStore, Clock], tmp_path: Path
) -> None:
    store, _ = logged
    Archive(tmp_path / "archive", rewards).write_closed_days(store, now=NOW)
    from logs.replay import closed_decisions

    from_log = [d for d in closed_decisions(store, rewards, closed_before=NOW) if d.event.event_id != "today"]
    from_archive = read_archive(tmp_path / "archive", rewards)
    assert from_archive and len(from_archive) == len(from_log) == 72
    strip = lambda d: replace(d.event, feedback=tuple(replace(f, log_id=0) for f in d.event.feedback))  # noqa: E731
    assert [strip(d) for d in from_archive] == [strip(d) for d in from_log]
    assert [d.rewards for d in from_archive] == [d.rewards for d in from_log]
    assert [d.event.probabilities for d in from_archive] == [d.event.probabilities for d in from_log]  # exact


def test_a_day_with_an_open_window_waits(tmp_path: Path, log_location: Path | DatabaseUrl) -> None:
    store = LogStore(log_location, clock=lambda: NOW)
    store.migrate()
    store.record_decision(decision("late", created_at=DAY + DAY_SECONDS - 1, window=7 * DAY_SECONDS))
    archive = Archive(tmp_path / "archive", rewards)
    assert archive.write_closed_days(store, now=NOW) == []
    assert archive.archived(store, now=NOW)[0] == float("-inf")


def test_with_an_archive_pruning_deletes_only_archived_days(
    logged: tuple[LogStore, Clock], tmp_path: Path
) -> None:
    store, _ = logged
    with transaction(store.conn) as conn:
        store.mark_learned(conn, {r[0]: None for r in conn.execute("SELECT event_id FROM decisions")}, "v1")
    archive = Archive(tmp_path / "archive", rewards)
    archive.write_closed_days(store, now=DAY + DAY_SECONDS + 3600)  # only the first day is over then
    created_before, closed_by = archive.archived(store, now=NOW)
    assert created_before == DAY + DAY_SECONDS
    store.prune_to_budget(1, created_before=created_before, closed_by=closed_by)
    left = {r[0] for r in store.conn.execute("SELECT event_id FROM decisions")}
    assert left and not any(e.startswith("d0-") for e in left) and any(e.startswith("d1-") for e in left)


def test_evaluate_reads_an_archive_as_it_reads_the_log(tmp_path: Path) -> None:
    log = _served_log(tmp_path / "served")
    store = LogStore(log)
    Archive(tmp_path / "archive", rewards).write_closed_days(store, now=log.stat().st_mtime + 2 * DAY_SECONDS)
    store.close()
    policies = ["--policy", "uniform", "--policy", "vw:--cb_explore_adf -q ::"]
    reports = []
    for source in (["--log", str(log)], ["--log", str(log), "--archive", str(tmp_path / "archive")]):
        result = CliRunner().invoke(cli, ["evaluate", *source, "--json", *policies])
        assert result.exit_code == 0, result.output
        reports.append(json.loads(result.stdout))
    assert reports[1]["decisions"] == reports[0]["decisions"] == 200
    assert reports[1]["policies"] == reports[0]["policies"]


def test_without_pyarrow_the_message_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(ArchiveUnavailable, match=r"xsell\[archive\]"):
        Archive(tmp_path, rewards).check()
    result = CliRunner().invoke(
        cli, ["evaluate", "--archive", str(tmp_path), "--log", str(tmp_path / "none.db")]
    )
    assert result.exit_code != 0 and "xsell[archive]" in result.output


def promoted(event_id: str, at: float, index: int) -> DecisionRecord:
    """A decision served as the rank path serves it: boosted, a campaign's share mixed in, an
    experiment's arm, per-slot exclusions and baselines, the exploration share, filters."""
    ids = ("a", "b", "c", "d")
    base = np.array([0.4, 0.3, 0.2, 0.1]) if index % 2 else np.array([0.1, 0.2, 0.3, 0.4])
    boosts = {"b": 2.5} if index % 3 else {}
    shares = [(0.15 + index / 1000, frozenset({"c", "d"}))] if index % 4 else []
    mixing = Mixing(tuple(sorted(boosts.items())), tuple(shares))
    share = 0.05
    slot_excluded = (frozenset(), frozenset({"a"})) if index % 5 else ()
    ranking = served(Ranking(ids, base), share, frozenset(), mixing)
    drawn = choose(ranking, 2, seed_for(event_id), slot_excluded=slot_excluded)
    choices = tuple(SlotChoice(c.slot, c.action_id, float(c.probability)) for c in drawn)
    rules: dict[str, object] = {
        **({"boosted": boosted_trace(boosts)} if boosts else {}),
        **mixed_trace(shares, []),
        "filters": {"exclude_tags": ["bulky"]},
    }
    return DecisionRecord(
        event_id=event_id,
        created_at=at,
        closes_at=at + 600,
        model_version="v1",
        request_sha256="",
        context={"shopper": {"device": "mobile" if index % 2 else "desktop"}},
        actions=tuple(Action(i, {"offer": {"rank": float(n)}}) for n, i in enumerate(ids)),
        excluded=frozenset(),
        probabilities=tuple(float(p) for p in first_slot(ranking, slot_excluded).probabilities),
        choices=choices,
        slots=2,
        learn_at=at,
        slot_excluded=slot_excluded,
        baseline=("d", None),
        exploration_share=share,
        experiment={"experiment": "exp-1", "arm": "treatment" if index % 2 else "control"},
        rules=rules,
    )


@pytest.fixture
def promoted_log(log_location: Path | DatabaseUrl) -> LogStore:
    return promoted_store(log_location)


def promoted_store(log_location: Path | DatabaseUrl) -> LogStore:
    """A day of decisions served under promotions and an experiment, half of them clicked."""
    clock = Clock(DAY)
    store = LogStore(log_location, clock=clock)
    store.migrate()
    for index in range(80):
        record = promoted(f"p{index:02d}", DAY + index * 60, index)
        store.record_decision(record)
        if index % 2 or index % 7 == 0:
            clock.at = record.created_at + 10
            store.record_feedback(record.event_id, "click", None, action_id=record.choices[0].action_id)
    clock.at = NOW
    return store


def evaluated(loaded: Loaded) -> dict[str, object]:
    options = EvaluationOptions()
    reports, summary, quality = run(loaded, ["uniform", "most-popular"], options)
    report = to_json(loaded, reports, summary, options, quality)
    report.pop("source")
    return report


def test_an_archive_of_promoted_decisions_evaluates_to_the_bit_as_its_log(
    promoted_log: LogStore, tmp_path: Path
) -> None:
    store = promoted_log
    Archive(tmp_path / "archive", rewards).write_closed_days(store, now=NOW)
    from_log = closed_decisions(store, rewards, closed_before=NOW)
    from_archive = read_archive(tmp_path / "archive", rewards)
    assert len(from_log) == 80 and any(d.event.mixing for d in from_log)
    assert [d.event.mixing for d in from_archive] == [d.event.mixing for d in from_log]
    # The served policy's value and every estimate of every candidate, to the bit.
    from_log_report = evaluated(Loaded("log", from_log, 0, None))
    assert from_log_report == evaluated(Loaded("archive", from_archive, 0, None))
    assert json.dumps(from_log_report) == json.dumps(evaluated(Loaded("archive", from_archive, 0, None)))
    # The archive keeps the decision's whole trace: filters, promotions, the experiment's arm.
    table = pq.read_table(tmp_path / "archive" / "decisions-2024-10-04.parquet").to_pylist()
    assert json.loads(table[1]["experiment"]) == {"experiment": "exp-1", "arm": "treatment"}
    assert json.loads(table[1]["rules"])["filters"] == {"exclude_tags": ["bulky"]}


def test_xsell_evaluate_gives_the_same_report_on_a_promoted_log_and_its_archive(tmp_path: Path) -> None:
    log = tmp_path / "log.db"
    store = promoted_store(log)
    Archive(tmp_path / "archive", rewards).write_closed_days(store, now=NOW)
    store.close()
    reports = []
    for source in (["--log", str(log)], ["--log", str(log), "--archive", str(tmp_path / "archive")]):
        result = CliRunner().invoke(cli, ["evaluate", *source, "--json", "--policy", "uniform"])
        assert result.exit_code == 0, result.output
        reports.append(json.loads(result.stdout))
    assert reports[1]["decisions"] == reports[0]["decisions"] == 80
    assert reports[1]["policies"] == reports[0]["policies"]


def test_an_archive_written_before_rules_were_kept_still_reads(
    promoted_log: LogStore, tmp_path: Path
) -> None:
    (path,) = Archive(tmp_path / "archive", rewards).write_closed_days(promoted_log, now=NOW)
    table = pq.read_table(path).drop_columns(["rules", "experiment"])
    pq.write_table(table.replace_schema_metadata({b"xsell.archived_at": repr(NOW).encode()}), path)
    events = [d.event for d in read_archive(tmp_path / "archive", rewards)]
    assert len(events) == 80 and all(e.mixing is None for e in events)  # served without promotions, as before
