"""Read the rollups (logs/rollups.py) and the few rows they have not reached yet.

Every query here reads a rollup table over a range of its leading key, or the log
past a watermark (a range of positions, logs/commit_order.py, bounded by
``tail_limit``), so its cost depends on the window asked for, never on the size of
the log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from logs.commit_order import Position, decision_id, ordered_read
from logs.rollup_figures import delay_bucket, explored
from logs.rollups import Rollups, Watermarks, read_watermarks
from logs.rule_store import counted_of, counted_sql, merge
from logs.store import LogStore

__all__ = ["RollupReader", "Tail"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Tail:
    """Rows the rollups have not reached, counted from the log itself."""

    rows: tuple[Any, ...]
    complete: bool  # False when more than the limit were waiting (the rollups are far behind)


class RollupReader:
    """Queries the console and /metrics run; each one bounded by its window."""

    def __init__(self, store: LogStore, *, tail_limit: int = 20_000):
        self.store = store
        self.tail_limit = tail_limit

    def _all(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        return self.store.retry(lambda: self.store.conn.execute(sql, params).fetchall())

    def _past(self, alias: str, id_column: str, after: Position) -> tuple[str, tuple[int, ...]]:
        """WHERE ... ORDER BY ... for every visible row past `after` (the rollups' read order)."""
        read = ordered_read(self.store.dialect, alias, id_column, bounded=False)
        return f"WHERE {read.condition} ORDER BY {read.order}", read.params(after, None)

    def watermarks(self) -> Watermarks:
        return Rollups(self.store).watermarks()

    # -- decisions -------------------------------------------------------------------

    def decisions_by_minute(self, first_minute: int) -> list[Any]:
        """Per minute and model version from `first_minute` on: counts, and ended-window sums."""
        return self._all(
            "SELECT minute, model_version, decisions, explored, served_baseline, exploration_share_sum,"
            " ended, answered, reward_sum, reward_sq FROM rollup_decisions WHERE minute >= ?"
            " ORDER BY minute",
            (first_minute,),
        )

    def decisions_tail(self, marks: Watermarks) -> Tail:
        """Decisions logged after the decisions watermark, as (minute, model_version, explored, ...)."""
        where, params = self._past("d", decision_id(self.store.dialect), marks.decisions)
        rows = self._all(
            "SELECT d.created_at, d.model_version, d.probabilities, d.choices, d.exploration_share,"
            f" d.served_baseline FROM decisions d {where} LIMIT ?",
            (*params, self.tail_limit + 1),
        )
        return Tail(tuple(rows[: self.tail_limit]), len(rows) <= self.tail_limit)

    @staticmethod
    def explored(row: Any) -> int:
        """Whether a tail decision's first offer was explored (same rule as the rollup)."""
        return explored(row["probabilities"], row["choices"])

    def decisions_total(self, limit: int = 50) -> list[Any]:
        """All-time decisions of the `limit` model versions with the most (rolled up part only)."""
        return self._all(
            "SELECT key AS model_version, count AS decisions FROM rollup_totals WHERE name = 'decisions'"
            " ORDER BY count DESC LIMIT ?",
            (limit,),
        )

    # -- feedback --------------------------------------------------------------------

    def feedback_by_minute(self, first_minute: int) -> list[Any]:
        """Per minute received, signal, on time or late, and delay bucket."""
        return self._all(
            "SELECT minute, signal, on_time, delay_bucket, count FROM rollup_feedback WHERE minute >= ?",
            (first_minute,),
        )

    def feedback_tail(self, marks: Watermarks) -> tuple[list[tuple[int, str, int, int]], bool]:
        """Feedback past the watermark as (minute, signal, on_time, delay bucket) rows."""
        where, params = self._past("f", "id", marks.feedback)
        rows = self._all(
            "SELECT f.received_at, f.signal, f.on_time, coalesce(d.activated_at, d.created_at) AS shown_at"
            f" FROM feedback f JOIN decisions d USING (event_id) {where} LIMIT ?",
            (*params, self.tail_limit + 1),
        )
        found = [
            (
                int(r["received_at"] // 60),
                r["signal"],
                int(r["on_time"]),
                delay_bucket(r["received_at"] - r["shown_at"]),
            )
            for r in rows[: self.tail_limit]
        ]
        return found, len(rows) <= self.tail_limit

    def feedback_total(self) -> list[Any]:
        """All-time feedback per signal (rolled up part only)."""
        return self._all("SELECT key AS signal, count FROM rollup_totals WHERE name = 'feedback'")

    # -- offers and pacing -----------------------------------------------------------

    def offers(self, first_hour: int, *, by: str, limit: int = 100) -> list[Any]:
        """Offer figures from `first_hour` on, by ``category`` or ``action_id``, most shown first."""
        column = {"category": "category", "offer": "action_id"}[by]  # allowlist: a column name
        return self._all(
            f"SELECT {column} AS name, sum(shown) AS shown, sum(clicked) AS clicked,"
            " sum(positive) AS positive, sum(dismissed) AS dismissed, sum(purchased) AS purchased,"
            f" sum(revenue) AS revenue FROM rollup_offers WHERE hour >= ? GROUP BY {column}"
            " ORDER BY shown DESC LIMIT ?",
            (first_hour, limit),
        )

    def pacing(self, first_minute: int) -> list[Any]:
        """Pacing verdicts and reasons from `first_minute` on."""
        return self._all(
            "SELECT verdict, reason, sum(count) AS count FROM rollup_pacing WHERE minute >= ?"
            " GROUP BY verdict, reason ORDER BY count DESC",
            (first_minute,),
        )

    # -- drift and learning ----------------------------------------------------------

    def features(self, first_minute: int, end_minute: int) -> list[Any]:
        """Hashed feature counts per namespace and bucket over [first_minute, end_minute)."""
        return self._all(
            "SELECT namespace, bucket, sum(count) AS count, min(example) AS example FROM rollup_features"
            " WHERE minute >= ? AND minute < ? GROUP BY namespace, bucket",
            (first_minute, end_minute),
        )

    def reward_series(
        self, first_minute: int, bucket_minutes: int, max_groups: int
    ) -> tuple[list[Any], dict[int, str], list[Any]]:
        """Ended decisions, reward sum and sum of squares per time bucket and group of model versions.

        The learner publishes a version every second or so: versions are grouped into at
        most `max_groups` ranges of consecutive ones (by their sequence in the model
        index), summed in SQL, so the answer has at most buckets x groups rows however
        many versions served. Returns (rows of bucket, grp, n, total, squares), the name
        of each group, and the same sums per bucket for versions the model index does
        not know (an imported log), by version.
        """
        joined = (
            " FROM rollup_decisions r LEFT JOIN models m ON m.version = r.model_version"
            " WHERE r.minute >= ? AND r.ended > 0"
        )
        low, high = self._all(f"SELECT min(m.seq), max(m.seq){joined}", (first_minute,))[0]
        sums = "sum(r.ended) AS n, sum(r.reward_sum) AS total, sum(r.reward_sq) AS squares"
        rows: list[Any] = []
        names: dict[int, str] = {}
        if low is not None:
            width = -(-(high - low + 1) // max_groups)
            rows = self._all(
                "SELECT r.minute / ? AS bucket, (m.seq - ?) / ? AS grp, min(m.seq) AS first,"
                f" max(m.seq) AS last, {sums}{joined} AND m.seq IS NOT NULL GROUP BY bucket, grp",
                (bucket_minutes, low, width, first_minute),
            )
            ends: dict[int, list[int]] = {}
            for row in rows:
                span = ends.setdefault(row["grp"], [row["first"], row["last"]])
                span[0], span[1] = min(span[0], row["first"]), max(span[1], row["last"])
            seqs = sorted({seq for span in ends.values() for seq in span})
            marks = ", ".join("?" * len(seqs))
            version = {
                int(r[0]): str(r[1])
                for r in self._all(f"SELECT seq, version FROM models WHERE seq IN ({marks})", seqs)
            }
            for grp, (first, last) in ends.items():
                names[grp] = version[first] if first == last else f"{version[first]}–{version[last]}"
        unknown = self._all(
            f"SELECT r.minute / ? AS bucket, r.model_version AS served, {sums}{joined} AND m.seq IS NULL"
            " GROUP BY bucket, served",
            (bucket_minutes, first_minute),
        )
        return rows, names, unknown

    def reward_totals(self, first_minute: int, end_minute: int) -> Any:
        """Ended decisions, reward sum and sum of squares over minutes [first_minute, end_minute)."""
        return self._all(
            "SELECT coalesce(sum(ended), 0) AS n, coalesce(sum(reward_sum), 0.0) AS total,"
            " coalesce(sum(reward_sq), 0.0) AS squares, coalesce(sum(decisions), 0) AS decisions"
            " FROM rollup_decisions WHERE minute >= ? AND minute < ?",
            (first_minute, end_minute),
        )[0]

    def learning_estimates(self, first_hour: int, *, newest_from: int | None = None) -> list[Any]:
        """Estimated reward per hour for the logged, uniform and most-popular policies from
        `first_hour` on; with `newest_from`, from the newest hour estimated since then if no
        hour from `first_hour` on is estimated yet (an hour is estimated only once all its
        reward windows ended: a window that has just moved past an hour would otherwise
        show no completed hour for a while)."""
        start = first_hour
        if newest_from is not None and newest_from < first_hour:
            newest = self._all(
                "SELECT max(hour) AS hour FROM learning_estimates WHERE n > 0 AND hour >= ?", (newest_from,)
            )[0]["hour"]
            start = first_hour if newest is None else min(first_hour, int(newest))
        return self._all(
            "SELECT hour, policy, estimator, value, low, high, n, decisions, computed_at"
            " FROM learning_estimates WHERE hour >= ? ORDER BY hour, policy",
            (start,),
        )

    def latest_drift(self) -> list[Any]:
        """The newest drift check of each subject."""
        return self._all(
            "SELECT d.* FROM drift_checks d JOIN (SELECT subject, max(at) AS at FROM drift_checks"
            " GROUP BY subject) latest USING (subject, at) ORDER BY d.kind, d.subject"
        )

    # -- learner ---------------------------------------------------------------------

    def control_count(self, key: str) -> int:
        """A count the learner keeps in the control table (e.g. decisions it skipped as too costly)."""
        rows = self._all("SELECT value FROM control WHERE key = ?", (key,))
        return int(rows[0][0]) if rows and str(rows[0][0]).isdigit() else 0

    # -- campaigns ---------------------------------------------------------------------

    def campaign_counts(self, periods: Mapping[str, float]) -> dict[str, tuple[int, int]]:
        """Campaign -> (eligible, shown) in the period starting at `periods[campaign]`, exact now.

        The rolled-up counts plus those the decisions past the watermark carry, read in
        one snapshot: a roll between the reads can neither drop nor double a decision.
        When more than ``tail_limit`` decisions wait (the rollups are far behind: is a
        learner running?) only that many are counted, and a warning says so.
        """
        if not periods:
            return {}
        keys = list(periods.items())
        read = ordered_read(self.store.dialect, "d", decision_id(self.store.dialect), bounded=False)
        matches = " OR ".join(["(campaign = ? AND period_start = ?)"] * len(keys))

        def fetch() -> tuple[list[Any], list[Any]]:
            conn = self.store.conn
            conn.execute("BEGIN")  # one snapshot: the watermark, the rolled-up counts and the tail
            try:
                marks = read_watermarks(conn)
                rolled = conn.execute(
                    f"SELECT campaign, period_start, eligible, shown FROM campaign_counts WHERE {matches}",
                    [value for key in keys for value in key],
                ).fetchall()
                counted = counted_sql(self.store.dialect, "d.rules")
                tail = conn.execute(
                    f"SELECT {counted} AS counted FROM decisions d WHERE {read.condition}"
                    " AND d.rules IS NOT NULL LIMIT ?",
                    (*read.params(marks.decisions, None), self.tail_limit + 1),
                ).fetchall()
            finally:
                conn.execute("COMMIT")
            return rolled, tail

        rolled, tail = self.store.retry(fetch)
        if len(tail) > self.tail_limit:
            log.warning(
                "more than %d ruled decisions wait for the rollups (is a learner running?):"
                " the campaigns' counts leave the rest out",
                self.tail_limit,
            )
        counted = merge(
            [(r["campaign"], float(r["period_start"]), int(r["eligible"]), int(r["shown"])) for r in rolled]
            + [count for r in tail[: self.tail_limit] for count in counted_of(r["counted"])]
        )
        found: dict[str, tuple[int, int]] = {}
        for name, start in keys:
            eligible, shown = counted.get((name, start), (0, 0))
            found[name] = (eligible, shown)
        return found

    def learner_lag(self, due_before: float) -> tuple[int, float | None]:
        """Decisions due for learning that no published model has learned, and the newest snapshot time."""
        due = self._all(
            "SELECT count(*) FROM decisions WHERE learned_in IS NULL AND learn_at <= ?", (due_before,)
        )[0][0]
        last = self._all("SELECT max(created_at) FROM models WHERE kind != 'import'")[0][0]
        return int(due), last


def detail(row: Any) -> dict[str, object]:
    """A drift check's JSON detail."""
    loaded = orjson.loads(row["detail"])
    return loaded if isinstance(loaded, dict) else {}
