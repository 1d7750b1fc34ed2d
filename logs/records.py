"""Rows of the log as frozen dataclasses, each with one to_row/from_row pair."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from logs import payloads
from policies.base import Action, Feedback, LoggedEvent, SlotChoice

__all__ = [
    "DecisionRecord",
    "EventConflict",
    "FeedbackReceipt",
    "MalformedRecord",
    "UnknownAction",
    "UnknownEvent",
]


class UnknownEvent(LookupError):
    """No decision with this event id is in the log."""

    def __init__(self, event_id: str) -> None:
        super().__init__(event_id)
        self.event_id = event_id

    def __str__(self) -> str:  # the 404's message: a sentence, not the bare id
        return f"no decision with event id {self.event_id!r} (never ranked here, or purged since)"


class UnknownAction(ValueError):
    """Feedback names an action that was not shown in that decision."""


class MalformedRecord(ValueError):
    """A stored row cannot be read back (edited by hand, or written by a broken tool)."""


class EventConflict(Exception):
    """An event id already names a different request."""


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One decision exactly as served: enough to retrain and to evaluate offline."""

    event_id: str
    created_at: float
    closes_at: float
    model_version: str
    request_sha256: str
    context: Mapping[str, Any]
    actions: tuple[Action, ...]
    excluded: frozenset[str]
    probabilities: tuple[float, ...]
    choices: tuple[SlotChoice, ...]
    slots: int
    deferred: bool = False  # waits for activation before it can be learned (closes_at = inf)
    slot_ids: tuple[str, ...] | None = None  # the storefront's names for its slots, if any
    # Per-slot controls of the request (see LoggedEvent): what each slot could not show,
    # and what the storefront would show there without xsell.
    slot_excluded: tuple[frozenset[str], ...] = ()
    baseline: tuple[str | None, ...] = ()
    # How the distribution was served: the uniform share mixed in, and whether the
    # baseline was served instead of the policy (apprentice and logging-only modes).
    exploration_share: float = 0.0
    served_baseline: bool = False
    # When the learner first learns it (with the feedback known then); +inf while a
    # deferred decision waits for activation. Default: at once.
    learn_at: float = float("nan")
    # The experiment and arm that served it ({id, arm, unit}; issue #15), None outside one.
    experiment: Mapping[str, str] | None = None
    # What business rules and filters removed or pinned, by rule (#15); None when none applied.
    rules: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if self.learn_at != self.learn_at:  # NaN: not given
            object.__setattr__(self, "learn_at", float("inf") if self.deferred else self.created_at)

    def to_row(self) -> tuple[dict[str, Any], dict[bytes, bytes]]:
        """Return the row to insert into `decisions` and the payloads it names (digest: bytes).

        The context and the candidates are stored once by content hash (logs.payloads);
        the row keeps empty strings in the columns that held them inline before m010.
        """
        context = orjson.dumps(self.context)
        actions = orjson.dumps([{"id": a.id, "features": a.features} for a in self.actions])
        context_ref, actions_ref = payloads.digest(context), payloads.digest(actions)
        return {
            "event_id": self.event_id,
            "created_at": self.created_at,
            "closes_at": self.closes_at,
            "model_version": self.model_version,
            "request_sha256": self.request_sha256,
            "context": "",
            "actions": "",
            "context_ref": context_ref,
            "actions_ref": actions_ref,
            "excluded": orjson.dumps(sorted(self.excluded)).decode(),
            "probabilities": orjson.dumps(list(self.probabilities)).decode(),
            "choices": orjson.dumps(
                [
                    {"slot": c.slot, "action_id": c.action_id, "probability": c.probability}
                    for c in self.choices
                ]
            ).decode(),
            "slots": self.slots,
            "deferred": int(self.deferred),
            "slot_ids": None if self.slot_ids is None else orjson.dumps(list(self.slot_ids)).decode(),
            # NULL when there is nothing per slot, as in rows logged before these columns
            "slot_excluded": (
                orjson.dumps([sorted(banned) for banned in self.slot_excluded]).decode()
                if any(self.slot_excluded)
                else None
            ),
            "baseline": orjson.dumps(list(self.baseline)).decode() if any(self.baseline) else None,
            "exploration_share": self.exploration_share,
            "served_baseline": int(self.served_baseline),
            "learn_at": self.learn_at,
            "experiment": None if self.experiment is None else orjson.dumps(self.experiment).decode(),
            "rules": None if self.rules is None else orjson.dumps(self.rules).decode(),
        }, {context_ref: context, actions_ref: actions}

    @classmethod
    def from_row(cls, row: Any) -> DecisionRecord:
        """Rebuild a record from a `decisions` row; raise MalformedRecord if it was tampered with."""
        try:
            return cls(
                event_id=row["event_id"],
                created_at=row["created_at"],
                closes_at=row["closes_at"],
                model_version=row["model_version"],
                request_sha256=row["request_sha256"],
                context=orjson.loads(payloads.read(row, "context")),
                actions=tuple(
                    Action(a["id"], a["features"]) for a in orjson.loads(payloads.read(row, "actions"))
                ),
                excluded=frozenset(orjson.loads(row["excluded"])),
                probabilities=tuple(orjson.loads(row["probabilities"])),
                choices=tuple(
                    SlotChoice(c["slot"], c["action_id"], c["probability"])
                    for c in orjson.loads(row["choices"])
                ),
                slots=row["slots"],
                deferred=bool(row["deferred"]),
                slot_ids=None if row["slot_ids"] is None else tuple(orjson.loads(row["slot_ids"])),
                # Rows logged before migration m007 hold NULL: no per-slot controls, no mixing.
                slot_excluded=_slot_excluded(row["slot_excluded"]),
                baseline=_baseline(row["baseline"]),
                exploration_share=float(row["exploration_share"] or 0.0),
                served_baseline=bool(row["served_baseline"]),
                learn_at=row["learn_at"],
                experiment=_experiment(row),
                rules=_optional_json(row, "rules"),
            )
        except (KeyError, IndexError, TypeError, ValueError, zlib.error) as error:
            problem = f"missing {error}" if isinstance(error, KeyError) else str(error)
            raise MalformedRecord(
                f"event {row['event_id']!r}: the stored decision is malformed ({problem})"
            ) from error

    def to_event(self, feedback: tuple[Feedback, ...]) -> LoggedEvent:
        """Return the event the learner and the evaluator consume."""
        return LoggedEvent(
            event_id=self.event_id,
            created_at=self.created_at,
            model_version=self.model_version,
            context=self.context,
            actions=self.actions,
            excluded=self.excluded,
            choices=self.choices,
            probabilities=self.probabilities,
            feedback=feedback,
            slot_excluded=self.slot_excluded,
            baseline=self.baseline,
            exploration_share=self.exploration_share,
            served_baseline=self.served_baseline,
            rules=self.rules,  # with the promotions mixed into what was served (#15)
        )


def _slot_excluded(text: str | None) -> tuple[frozenset[str], ...]:
    if text is None:
        return ()
    lists = orjson.loads(text)
    if not isinstance(lists, list) or not all(
        isinstance(ids, list) and all(isinstance(i, str) for i in ids) for ids in lists
    ):
        raise ValueError("slot_excluded is not a list of lists of action ids")
    return tuple(frozenset(ids) for ids in lists)


def _baseline(text: str | None) -> tuple[str | None, ...]:
    if text is None:
        return ()
    ids = orjson.loads(text)
    if not isinstance(ids, list) or not all(i is None or isinstance(i, str) for i in ids):
        raise ValueError("baseline is not a list of action ids")
    return tuple(ids)


@dataclass(frozen=True, slots=True)
class FeedbackReceipt:
    """What happened to one feedback post."""

    event_id: str
    action_id: str
    signal: str
    duplicate: bool  # the same signal was already recorded; it counts once
    on_time: bool  # arrived before the event closed, so it will be learned from


def _experiment(row: Any) -> dict[str, str] | None:
    """The experiment a row names; None outside one, and for rows read without the column."""
    return _optional_json(row, "experiment")


def _optional_json(row: Any, column: str) -> Any:
    """A JSON column added after the first release; None when NULL or not read."""
    keys = row.keys()  # sqlite3.Row: `in row` would look among the values
    raw = row[column] if column in keys else None
    return None if raw is None else orjson.loads(raw)
