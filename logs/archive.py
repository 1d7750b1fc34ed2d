"""Archives: every closed day of decisions in one Parquet file, written before pruning deletes it.

A file per UTC day (``decisions-YYYY-MM-DD.parquet``), one row per decision, with the
arrays off-policy tools expect (obp's names: ``action``, ``position``, ``pscore``,
``reward``, ``action_dist``) beside everything `xsell evaluate --archive` needs to
read the day back exactly as the log held it (context, candidates, choices, on-time
feedback; floats as float64 or shortest-round-trip JSON, so propensities are
bit-for-bit the logged ones). A day is archived once it is over and every decision
of it has closed; it is written to a temporary name and renamed, so a file that
exists is complete. pyarrow is an optional extra: ``pip install 'xsell[archive]'``.

Format 2 (``xsell.archive_version`` in the file's metadata) adds each decision's
``rules`` (decisions.rules: the promotions mixed into what was served, the filters and
rules behind its exclusions, back-fill) and ``experiment`` (its arm); the replay mixes
the promotions in as it does from the log. A file without them (format 1) reads as
decisions served without promotions, as it did.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from logs.footprint import DAY_SECONDS
from logs.records import DecisionRecord
from policies.base import Action, Feedback, LoggedEvent, SlotChoice
from policies.evaluation.dataset import LoggedDecision

__all__ = ["Archive", "ArchiveUnavailable", "read_archive"]

PAGE = 1000
ARCHIVED_AT = "xsell.archived_at"  # file metadata: every decision of the day closed by then is in it
VERSION = "xsell.archive_version"  # file metadata; absent in format 1
FORMAT = 2
SlotRewards = Callable[[LoggedEvent], tuple[float, ...]]


class ArchiveUnavailable(Exception):
    """Archives cannot be written or read here (pyarrow missing, or a file is not an archive)."""


def _pyarrow() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as error:
        raise ArchiveUnavailable("decision archives need pyarrow: pip install 'xsell[archive]'") from error
    return pa, pq


def day_name(day_start: float) -> str:
    return datetime.fromtimestamp(day_start, UTC).strftime("decisions-%Y-%m-%d.parquet")


class Archive:
    """Write closed days of a log to `directory`, oldest first, each once."""

    def __init__(self, directory: Path, slot_rewards: SlotRewards):
        self.directory = Path(directory)
        self.slot_rewards = slot_rewards  # the rules in force fill the `reward` column

    def check(self) -> None:
        """Raise ArchiveUnavailable now if archives cannot be written (pyarrow missing)."""
        _pyarrow()

    def write_closed_days(self, store: Any, *, now: float | None = None) -> list[Path]:
        """Archive every day that is over and fully closed and has no file yet; return the new files."""
        now = time.time() if now is None else now
        written = []
        for day in self._days(store, now):
            path = self.directory / day_name(day)
            if path.exists() or store.decisions_open_between(day, day + DAY_SECONDS, now=now):
                continue
            if self._write_day(store, day, path, now=now):
                written.append(path)
        return written

    def archived(self, store: Any, *, now: float | None = None) -> tuple[float, float]:
        """Return (created_before, closed_by): decisions made before the first and closed by
        the second are in a file and may be deleted.

        Days count from the log's oldest until the first without a file. A deferred
        decision activated after its day was written closed later than the file: it
        stays in the log.
        """
        now = time.time() if now is None else now
        until, closed_by = -math.inf, math.inf
        for day in self._days(store, now):
            path = self.directory / day_name(day)
            if not path.exists():
                break
            until, closed_by = day + DAY_SECONDS, min(closed_by, _archived_at(path))
        return until, closed_by if until > -math.inf else -math.inf

    def _days(self, store: Any, now: float) -> Iterator[float]:
        span = store.decision_time_range()
        if span is None:
            return
        day = math.floor(span[0] / DAY_SECONDS) * DAY_SECONDS
        today = math.floor(now / DAY_SECONDS) * DAY_SECONDS
        while day < today:
            yield day
            day += DAY_SECONDS

    def _write_day(self, store: Any, day: float, path: Path, *, now: float) -> bool:
        pa, pq = _pyarrow()
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        writer = None
        cursor = None
        try:
            while True:
                page = store.replay_events(
                    closed_before=now,
                    after=cursor,
                    limit=PAGE,
                    created_from=day,
                    created_to=day + DAY_SECONDS,
                )
                if page:
                    rows = [self._row(event, store.find_decision(event.event_id)) for event, _ in page]
                    table = pa.Table.from_pylist(rows, schema=_schema(pa))
                    if writer is None:
                        stamped = table.schema.with_metadata({ARCHIVED_AT: repr(now), VERSION: str(FORMAT)})
                        writer = pq.ParquetWriter(partial, stamped, compression="zstd")
                    writer.write_table(table)
                if len(page) < PAGE:
                    break
                cursor = page[-1][1]
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            return False  # nothing closed that day
        os.replace(partial, path)
        return True

    def _row(self, event: LoggedEvent, record: DecisionRecord | None) -> dict[str, Any]:
        """One decision's row; `record` (the stored decision) gives what the event does not carry."""
        if record is None:  # replay_events just read it and a decision row is never deleted before its file
            raise ArchiveUnavailable(f"event {event.event_id!r} left the log while its day was archived")
        ids = [a.id for a in event.actions]
        first = event.choices[0] if event.choices else None
        rewards = self.slot_rewards(event)
        return {
            "event_id": event.event_id,
            "created_at": event.created_at,
            "model_version": event.model_version,
            "action": ids.index(first.action_id) if first else -1,
            "position": first.slot if first else 0,
            "pscore": first.probability if first else math.nan,
            "reward": rewards[0] if rewards else math.nan,
            "slot_rewards": list(rewards),
            "action_dist": list(event.probabilities),
            "action_ids": ids,
            "context": orjson.dumps(event.context).decode(),
            "actions": orjson.dumps([{"id": a.id, "features": a.features} for a in event.actions]).decode(),
            "excluded": sorted(event.excluded),
            "choices": orjson.dumps([[c.slot, c.action_id, c.probability] for c in event.choices]).decode(),
            "feedback": orjson.dumps(
                [[f.signal, f.action_id, f.value, f.received_at, f.learned] for f in event.feedback]
            ).decode(),
            "slot_excluded": orjson.dumps([sorted(s) for s in event.slot_excluded]).decode(),
            "baseline": orjson.dumps(list(event.baseline)).decode(),
            "exploration_share": event.exploration_share,
            "served_baseline": event.served_baseline,
            "rules": None if record.rules is None else orjson.dumps(record.rules).decode(),
            "experiment": None if record.experiment is None else orjson.dumps(record.experiment).decode(),
        }


def _archived_at(path: Path) -> float:
    _, pq = _pyarrow()
    metadata = pq.read_schema(path).metadata or {}
    return float(metadata.get(ARCHIVED_AT.encode(), b"-inf"))


def _schema(pa: Any) -> Any:
    text, real = pa.string(), pa.float64()
    return pa.schema(
        [
            ("event_id", text),
            ("created_at", real),
            ("model_version", text),
            ("action", pa.int32()),
            ("position", pa.int32()),
            ("pscore", real),
            ("reward", real),
            ("slot_rewards", pa.list_(real)),
            ("action_dist", pa.list_(real)),
            ("action_ids", pa.list_(text)),
            ("context", text),
            ("actions", text),
            ("excluded", pa.list_(text)),
            ("choices", text),
            ("feedback", text),
            ("slot_excluded", text),
            ("baseline", text),
            ("exploration_share", real),
            ("served_baseline", pa.bool_()),
            ("rules", text),  # format 2: decisions.rules as logged (JSON), null when none
            ("experiment", text),  # format 2: the experiment arm (JSON), null outside one
        ]
    )


def read_archive(
    directory: Path, slot_rewards: SlotRewards, *, limit: int | None = None
) -> list[LoggedDecision]:
    """Read every archived day in `directory`, oldest first, as the evaluator reads the log.

    Rewards come from `slot_rewards` (the rules in force now), as for the log itself.

    Raises
    ------
    ArchiveUnavailable
        pyarrow is missing, there are no archive files, or a file is not an archive.
    """
    _, pq = _pyarrow()
    files = sorted(Path(directory).glob("decisions-*.parquet"))
    if not files:
        raise ArchiveUnavailable(f"{directory}: no decisions-YYYY-MM-DD.parquet files")
    found: list[LoggedDecision] = []
    for path in files:
        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as error:  # pyarrow raises its own errors for a damaged file
            raise ArchiveUnavailable(f"{path}: not a readable archive ({error})") from error
        for row in rows:
            try:
                event = _event(row)
            except (KeyError, TypeError, ValueError) as error:
                raise ArchiveUnavailable(
                    f"{path}: event {row.get('event_id')!r} is malformed ({error})"
                ) from error
            found.append(LoggedDecision(event, slot_rewards(event)))
            if limit is not None and len(found) >= limit:
                return found
    return found


def _event(row: dict[str, Any]) -> LoggedEvent:
    return LoggedEvent(
        event_id=row["event_id"],
        created_at=row["created_at"],
        model_version=row["model_version"],
        context=orjson.loads(row["context"]),
        actions=tuple(Action(a["id"], a["features"]) for a in orjson.loads(row["actions"])),
        excluded=frozenset(row["excluded"]),
        choices=tuple(SlotChoice(s, a, p) for s, a, p in orjson.loads(row["choices"])),
        probabilities=tuple(row["action_dist"]),
        feedback=tuple(
            Feedback(s, a, v, t, learned=bool(lr)) for s, a, v, t, lr in orjson.loads(row["feedback"])
        ),
        slot_excluded=tuple(frozenset(ids) for ids in orjson.loads(row["slot_excluded"])),
        baseline=tuple(orjson.loads(row["baseline"])),
        exploration_share=row["exploration_share"],
        served_baseline=row["served_baseline"],
        # as DecisionRecord.to_event reads the log; format 1 files have no rules column
        rules=orjson.loads(row["rules"]) if row.get("rules") is not None else None,
    )
