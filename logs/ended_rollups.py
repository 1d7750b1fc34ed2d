"""What an ended decision adds to the reward and offer rollups, in one place.

The learner's ended-window pass (logs/rollups.py) adds it; erasing a shopper
(logs/shopper_store.py) takes out what their rolled-up decisions added and puts back
what the same decisions add once anonymised (an order value rounded), so the console's
figures keep matching the log and no exact order value stays in the rollups' sums.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from logs import payloads
from logs.commit_order import decision_id
from logs.connection import LogConnection
from logs.dialect import Dialect
from logs.rollup_figures import POSITIVE_SIGNALS, categories
from policies.base import Feedback

__all__ = [
    "ROLLUPS_LOCK",
    "Contributions",
    "RewardOf",
    "added",
    "ended_rows",
    "ended_select",
    "feedback_of",
    "restated",
]

RewardOf = Callable[[Sequence[Feedback], str], float]  # RewardRules.reward_for
ROLLUPS_LOCK = "rollups"  # logs.db.exclusive: one roller moves the watermarks at a time
OFFER_FIGURES = ("shown", "clicked", "positive", "dismissed", "purchased", "revenue")


@dataclass
class Contributions:
    """Per (minute, version): ended, answered, reward sum and sum of squares; per
    (hour, offer, category): shown, clicked, positive, dismissed, purchased, revenue."""

    minutes: dict[tuple[int, str], list[float]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0.0, 0.0])
    )
    offers: dict[tuple[int, str, str], list[float]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0, 0, 0, 0.0])
    )

    def add(self, rows: Iterable[Any], feedback: dict[str, list[Feedback]], reward_of: RewardOf) -> None:
        """Add what each decision row (with its on-time feedback) contributes."""
        sets: dict[bytes, dict[str, str]] = {}  # a shared candidate set is read once
        for row in rows:
            items = feedback.get(row["event_id"], [])
            choices = [c["action_id"] for c in orjson.loads(row["choices"])]
            reward = sum(reward_of(items, action_id) for action_id in choices)
            totals = self.minutes[(int(row["created_at"] // 60), row["model_version"])]
            totals[0] += 1
            totals[1] += int(bool(items))
            totals[2] += reward
            totals[3] += reward * reward
            shared = row["actions_ref"]
            category_of = sets.get(shared) if shared is not None else None
            if category_of is None:
                category_of = categories(payloads.read(row, "actions"))
                if shared is not None:
                    sets[shared] = category_of
            hour = int(row["created_at"] // 3600)
            for action_id in choices:
                own = [f for f in items if f.action_id == action_id]
                signals = {f.signal for f in own}
                figures = self.offers[(hour, action_id, category_of.get(action_id, ""))]
                figures[0] += 1
                figures[1] += int("click" in signals)
                figures[2] += int(bool(signals & POSITIVE_SIGNALS))
                figures[3] += int("dismiss" in signals)
                figures[4] += int("purchase" in signals)
                figures[5] += sum(f.value or 0.0 for f in own if f.signal == "purchase")

    def write(self, conn: LogConnection, sign: int = 1) -> None:
        """Add these contributions to the rollups (`sign` -1: take them out)."""
        conn.executemany(
            "INSERT INTO rollup_decisions (minute, model_version, ended, answered, reward_sum, reward_sq)"
            " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (minute, model_version) DO UPDATE SET"
            + added("rollup_decisions", "ended", "answered", "reward_sum", "reward_sq"),
            [(m, v, *(sign * x for x in t)) for (m, v), t in self.minutes.items()],
        )
        conn.executemany(
            "INSERT INTO rollup_offers"
            " (hour, action_id, category, shown, clicked, positive, dismissed, purchased, revenue)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (hour, action_id, category) DO UPDATE SET"
            + added("rollup_offers", *OFFER_FIGURES),
            [(*key, *(sign * x for x in f)) for key, f in self.offers.items()],
        )


@functools.cache
def added(table: str, *columns: str) -> str:
    """`` column = table.column + excluded.column, ...``: an upsert that adds to a count.

    The stored column is named with its table: PostgreSQL calls a bare name ambiguous
    beside ``excluded``.
    """
    return " " + ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in columns)


def ended_select(dialect: Dialect) -> str:
    """``SELECT ... FROM decisions d ...`` of what `Contributions.add` reads of a decision
    (its id for the ended watermark as ``row_id``); the caller adds WHERE and ORDER BY."""
    row_id = f"d.{decision_id(dialect)}"
    return (
        f"SELECT {row_id} AS row_id, d.closes_at, d.event_id, d.created_at, d.model_version,"
        " d.choices, d.actions, d.actions_ref, pa.codec AS actions_codec, pa.body AS actions_body"
        " FROM decisions d LEFT JOIN payloads pa ON pa.digest = d.actions_ref"
    )


def ended_rows(
    conn: LogConnection, dialect: Dialect, event_ids: Sequence[str], ended: tuple[float, int]
) -> list[Any]:
    """The decisions among `event_ids` that the ended-window pass has already rolled up
    (at or before its ``(closes_at, decision id)`` watermark `ended`)."""
    row_id = f"d.{decision_id(dialect)}"
    found: list[Any] = []
    for start in range(0, len(event_ids), 500):
        chunk = event_ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        found += conn.execute(
            f"{ended_select(dialect)} WHERE d.event_id IN ({marks}) AND (d.closes_at, {row_id}) <= (?, ?)",
            (*chunk, *ended),
        ).fetchall()
    return found


def feedback_of(conn: LogConnection, event_ids: list[str]) -> dict[str, list[Feedback]]:
    """The on-time feedback of each decision, in the order it came."""
    found: dict[str, list[Feedback]] = defaultdict(list)
    for start in range(0, len(event_ids), 500):
        chunk = event_ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for row in conn.execute(
            "SELECT event_id, action_id, signal, value, received_at FROM feedback"
            f" WHERE on_time = 1 AND event_id IN ({marks}) ORDER BY id",
            chunk,
        ):
            found[row["event_id"]].append(
                Feedback(row["signal"], row["action_id"], row["value"], row["received_at"])
            )
    return found


def restated(
    conn: LogConnection,
    dialect: Dialect,
    event_ids: Sequence[str],
    reward_of: RewardOf,
    change: Callable[[], Mapping[str, str]],
) -> Mapping[str, str]:
    """Run `change` (it returns each decision's new event id by its old one; so does this)
    and restate what the decisions already rolled up add to the rollups: take out what
    they added, add what they add now.
    Rewards are taken out as `reward_of` computes them now: if the reward rules changed
    since those decisions were rolled up, their minute's reward sums move by the difference.

    Call it in a transaction holding ``exclusive(conn, ROLLUPS_LOCK)``: a roller that read
    any of these decisions before the change (rolled up or still in its page) finds the
    ``erasures`` count moved and reads again, so it adds them only as changed.
    """
    ended = conn.execute(
        "SELECT name, value FROM rollup_state WHERE name IN ('ended_closes_at', 'ended_rowid')", ()
    ).fetchall()
    marks = {row["name"]: row["value"] for row in ended}
    watermark = (float(marks.get("ended_closes_at", float("-inf"))), int(marks.get("ended_rowid", 0)))
    rolled = ended_rows(conn, dialect, event_ids, watermark)
    before = Contributions()
    before.add(rolled, feedback_of(conn, [r["event_id"] for r in rolled]), reward_of)
    renamed = change()
    now_ids = [renamed.get(r["event_id"], r["event_id"]) for r in rolled]
    now_rows = ended_rows(conn, dialect, now_ids, watermark)
    after = Contributions()
    after.add(now_rows, feedback_of(conn, [r["event_id"] for r in now_rows]), reward_of)
    if not renamed:
        return renamed  # nothing changed: no page in flight needs reading again
    before.write(conn, -1)  # apart, not netted: a sum of one decision goes back to exactly 0
    after.write(conn, 1)
    conn.execute(
        "INSERT INTO rollup_state (name, value, updated_at) VALUES ('erasures', 1, 0)"
        " ON CONFLICT (name) DO UPDATE SET value = rollup_state.value + 1",
        (),
    )
    return renamed
