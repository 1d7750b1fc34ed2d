"""ExperimentStore: experiments, their holdout answers, and the counts their results come from.

Everything an experiment's results need is in the log: the decisions served inside it
name its id and arm (decisions.experiment), the no-offer arm's answers are rows of
experiment_holdouts, and feedback is the feedback. `arm_counts` is a function of the
log alone, so a copy of the log reproduces the results exactly.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from logs.db import INTEGRITY_ERRORS, transaction
from logs.dialect import Dialect
from logs.store import LogStore
from policies.experiments.assignment import Arm
from policies.experiments.results import ArmCounts, summarise
from policies.experiments.sequences import Moments

__all__ = [
    "ASSIGNS_WITHIN_SECONDS",
    "CLOCK_SKEW_SECONDS",
    "ArmCounts",
    "Experiment",
    "ExperimentExists",
    "ExperimentStore",
    "UnknownExperiment",
    "pending_sql",
    "per_arm_sql",
]

# A worker assigns decisions to an experiment only while its view of it was read at most
# this long ago (service/experiment_arms.py), so every decision of an experiment was made
# between its start and its end plus this much. Its results read the decisions made in
# that span (with CLOCK_SKEW_SECONDS either side, for nodes whose clocks differ) through
# the decisions_created index: an index of its own cost every decision an extra page
# write (dropped in m017).
ASSIGNS_WITHIN_SECONDS = 60.0
CLOCK_SKEW_SECONDS = 300.0


class UnknownExperiment(LookupError):
    """No experiment has this id."""


class ExperimentExists(Exception):
    """The id is taken, or another experiment is running, or this one has already ended."""


@dataclass(frozen=True, slots=True)
class Experiment:
    id: str
    name: str
    arms: tuple[Arm, ...]
    alpha: float
    status: str  # running, stopped, shipped
    created_at: float
    ended_at: float | None = None
    shipped_arm: str | None = None
    reason: str | None = None

    def arm(self, name: str) -> Arm | None:
        return next((a for a in self.arms if a.name == name), None)


# One row per closed decision of the experiment, then summed per arm: a decision counts
# once however many signals it got; only feedback that arrived in the window counts.
_PER_ARM = """
SELECT arm, count(*) AS n, sum(clicked) AS clicks, sum(dismissed) AS dismissals,
       sum(revenue) AS revenue, sum(revenue * revenue) AS revenue2
FROM (
    SELECT {arm} AS arm,
           max(CASE WHEN f.signal = 'click' THEN 1 ELSE 0 END) AS clicked,
           max(CASE WHEN f.signal = 'dismiss' THEN 1 ELSE 0 END) AS dismissed,
           coalesce(sum(CASE WHEN f.signal = 'purchase' THEN f.value END), 0.0) AS revenue
    FROM decisions d{by_time} LEFT JOIN feedback f ON f.event_id = d.event_id AND f.on_time = 1
    WHERE d.created_at >= ? AND d.created_at <= ? AND d.experiment IS NOT NULL
      AND {experiment_id} = ? AND d.closes_at <= ?
    GROUP BY d.event_id
) per_decision
GROUP BY arm
"""


def json_text(dialect: Dialect, column: str, key: str) -> str:
    """SQL for one string field of a JSON text column."""
    if dialect.name == "sqlite":
        return f"json_extract({column}, '$.{key}')"
    return f"(({column})::jsonb ->> '{key}')"


# The experiment's decisions still within their reward window (deferred ones never close):
# what _PER_ARM leaves out yet.
_PENDING = (
    "SELECT {arm} AS arm, count(*) AS n FROM decisions{by_time} WHERE created_at >= ? AND created_at <= ?"
    " AND experiment IS NOT NULL AND {experiment_id} = ? AND closes_at > ? GROUP BY 1"
)


@functools.cache
def per_arm_sql(dialect: Dialect) -> str:
    """The results' query on this backend (parameters: the span's two ends, the id, now)."""
    return _spelled(_PER_ARM, dialect, "d.experiment")


@functools.cache
def pending_sql(dialect: Dialect) -> str:
    """`pending`'s query on this backend (parameters: the span's two ends, the id, now)."""
    return _spelled(_PENDING, dialect, "experiment")


def _spelled(template: str, dialect: Dialect, column: str) -> str:
    return template.format(
        arm=json_text(dialect, column, "arm"),
        experiment_id=json_text(dialect, column, "id"),
        by_time=_by_time(dialect),
    )


def _by_time(dialect: Dialect) -> str:
    """SQLite, unanalysed, would rather walk the whole table in event id order for the
    GROUP BY than range over the decisions' time index: name the index there."""
    return " INDEXED BY decisions_created" if dialect.name == "sqlite" else ""


class ExperimentStore:
    """Read and write experiments beside the decision log."""

    def __init__(self, store: LogStore):
        self.store = store

    def create(self, experiment: Experiment) -> None:
        """Insert a running experiment; ExperimentExists if the id is taken or one is running."""

        def write() -> None:
            try:
                with transaction(self.store.conn) as conn:
                    conn.execute(
                        "INSERT INTO experiments (id, name, arms, alpha, status, created_at)"
                        " VALUES (?, ?, ?, ?, 'running', ?)",
                        (
                            experiment.id,
                            experiment.name,
                            _arms_json(experiment.arms),
                            experiment.alpha,
                            experiment.created_at,
                        ),
                    )
            except INTEGRITY_ERRORS as error:  # caught here: SQLite's retry would call it unreadable
                taken = self._row(experiment.id) is not None
                raise ExperimentExists(
                    f"experiment id {experiment.id!r} is already used"
                    if taken
                    else "another experiment is running: stop or ship it first"
                ) from error

        self.store.retry(write)

    def get(self, experiment_id: str) -> Experiment:
        row = self._row(experiment_id)
        if row is None:
            raise UnknownExperiment(f"no experiment {experiment_id!r}")
        return _experiment(row)

    def running(self) -> Experiment | None:
        rows = self.store.retry(
            lambda: self.store.conn.execute("SELECT * FROM experiments WHERE status = 'running'").fetchall()
        )
        return _experiment(rows[0]) if rows else None

    def all(self, limit: int = 100) -> list[Experiment]:
        # Same instant: the later insert first on SQLite (rowid); PostgreSQL has no
        # insertion order to read, so the id decides there.
        tie = "rowid" if self.store.dialect.name == "sqlite" else "id"
        rows = self.store.retry(
            lambda: self.store.conn.execute(
                f"SELECT * FROM experiments ORDER BY created_at DESC, {tie} DESC LIMIT ?", (limit,)
            ).fetchall()
        )
        return [_experiment(r) for r in rows]

    def end(
        self, experiment_id: str, *, status: str, at: float, arm: str | None, reason: str | None
    ) -> Experiment:
        """Stop or ship a running experiment; ExperimentExists if it has already ended."""

        def write() -> int:
            with transaction(self.store.conn) as conn:
                return conn.execute(
                    "UPDATE experiments SET status = ?, ended_at = ?, shipped_arm = ?, reason = ?"
                    " WHERE id = ? AND status = 'running'",
                    (status, at, arm, reason, experiment_id),
                ).rowcount

        if not self.store.retry(write):
            found = self.get(experiment_id)  # UnknownExperiment when there is none
            raise ExperimentExists(f"experiment {experiment_id!r} has already ended ({found.status})")
        return self.get(experiment_id)

    def record_holdout(
        self, event_id: str, experiment_id: str, arm: str, unit: str, *, created_at: float, closes_at: float
    ) -> None:
        """Log a request the no-offer arm answered with nothing (a retry is a no-op)."""
        self.store.retry(
            lambda: self.store.conn.execute(
                "INSERT INTO experiment_holdouts (event_id, experiment_id, arm, unit, created_at, closes_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (event_id, experiment_id, arm, unit, created_at, closes_at),
            )
        )

    def is_holdout(self, event_id: str) -> bool:
        row = self.store.retry(
            lambda: self.store.conn.execute(
                "SELECT 1 FROM experiment_holdouts WHERE event_id = ?", (event_id,)
            ).fetchone()
        )
        return row is not None

    def arm_counts(self, experiment: Experiment, now: float) -> list[ArmCounts]:
        """Return every arm's counts over decisions whose reward window ended by `now`."""

        per_arm = per_arm_sql(self.store.dialect)

        def read() -> tuple[list[Any], list[Any]]:
            conn = self.store.conn
            served = conn.execute(per_arm, (*_made_within(experiment), experiment.id, now)).fetchall()
            return served, _holdouts(conn, experiment.id, now, closed=True)

        served, held = self.store.retry(read)
        found = {r["arm"]: r for r in served}
        empty = Moments(0, 0.0, 0.0)
        counts = []
        for arm in experiment.arms:
            row = found.get(arm.name)
            if row is not None:
                clicks, dismissals = int(row["clicks"]), int(row["dismissals"])
                counts.append(
                    ArmCounts(
                        arm.name,
                        Moments(row["n"], clicks, clicks),  # 0/1 outcomes: squares = sum
                        Moments(row["n"], dismissals, dismissals),
                        Moments(row["n"], float(row["revenue"]), float(row["revenue2"])),
                    )
                )
            else:
                n = sum(int(r["n"]) for r in held if r["arm"] == arm.name)
                none = Moments(n, 0.0, 0.0) if n else empty  # nothing shown: nothing clicked or bought
                counts.append(ArmCounts(arm.name, none, none, none))
        return counts

    def results(self, experiment: Experiment, now: float) -> dict[str, Any]:
        """Return the experiment's results as of `now`: a function of the log alone."""
        return summarise(experiment.arms, self.arm_counts(experiment, now), experiment.alpha)

    def pending(self, experiment: Experiment, now: float) -> dict[str, int]:
        """Return per arm the decisions (and holdout answers) still within their reward window at `now`.

        The complement of what `results` counts, so early numbers can say what they leave out.
        """
        decided = pending_sql(self.store.dialect)

        def read() -> list[Any]:
            conn = self.store.conn
            served = conn.execute(decided, (*_made_within(experiment), experiment.id, now)).fetchall()
            return [*served, *_holdouts(conn, experiment.id, now, closed=False)]

        found = dict.fromkeys((a.name for a in experiment.arms), 0)
        for row in self.store.retry(read):
            if row["arm"] in found:
                found[row["arm"]] += int(row["n"])
        return found

    def popularity(self, skus: Iterable[str]) -> dict[str, int]:
        """Return the catalog's popularity of each known sku (the most-popular arm's order)."""
        wanted: Sequence[str] = list(dict.fromkeys(skus))
        if not wanted:
            return {}
        marks = ", ".join("?" * len(wanted))
        rows = self.store.retry(
            lambda: self.store.conn.execute(
                f"SELECT sku, popularity FROM products WHERE sku IN ({marks})", list(wanted)
            ).fetchall()
        )
        return {r["sku"]: int(r["popularity"]) for r in rows}

    def _row(self, experiment_id: str) -> Any:
        row: Any = self.store.retry(
            lambda: self.store.conn.execute(
                "SELECT * FROM experiments WHERE id = ?", (experiment_id,)
            ).fetchone()
        )
        return row


def _made_within(experiment: Experiment) -> tuple[float, float]:
    """When the experiment's decisions were made, at the widest (ASSIGNS_WITHIN_SECONDS)."""
    end = float("inf") if experiment.ended_at is None else experiment.ended_at
    return experiment.created_at - CLOCK_SKEW_SECONDS, end + ASSIGNS_WITHIN_SECONDS + CLOCK_SKEW_SECONDS


def _holdouts(conn: Any, experiment_id: str, now: float, *, closed: bool) -> list[Any]:
    """Holdout answers per arm whose reward window ended by `now` (closed) or not yet."""
    window = "closes_at <= ?" if closed else "closes_at > ?"
    return list(
        conn.execute(
            "SELECT arm, count(*) AS n FROM experiment_holdouts"
            f" WHERE experiment_id = ? AND {window} GROUP BY arm",
            (experiment_id, now),
        ).fetchall()
    )


def _arms_json(arms: Sequence[Arm]) -> str:
    return orjson.dumps(
        [{"name": a.name, "policy": a.policy, "share": a.share, "version": a.version} for a in arms]
    ).decode()


def _experiment(row: Any) -> Experiment:
    return Experiment(
        id=row["id"],
        name=row["name"],
        arms=tuple(
            Arm(a["name"], a["policy"], a["share"], a.get("version")) for a in orjson.loads(row["arms"])
        ),
        alpha=row["alpha"],
        status=row["status"],
        created_at=row["created_at"],
        ended_at=row["ended_at"],
        shipped_arm=row["shipped_arm"],
        reason=row["reason"],
    )
