"""Rewards and activations for an event id the log does not hold, as Personalizer accepted them.

Personalizer answered 204 to a reward or an activation for an event it did not know
(a typo, an id from another resource, a reward after the log was purged), and so
does xsell's Personalizer API. Nothing is learned from them, but they are never
silent: each is counted in the log's ``control`` table (one read-modify-write, so
every worker's count adds up) with the latest few kept for a look, and
``/metrics`` reports the counts as ``xsell_personalizer_unmatched`` and the console's
health page lists them with the errors. A rising count
is the classic sign of a broken decision loop: rewards sent for the wrong events.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from service.resources import Resources

__all__ = ["UNMATCHED_KEY", "Kind", "counts", "counts_from", "record"]

UNMATCHED_KEY = "personalizer_unmatched"
Kind = Literal["reward", "activate", "slot"]  # slot: a reward for a slot the event did not rank
KEPT = 20  # the latest unmatched calls kept for an operator to look at


def record(
    res: Resources, kind: Kind, event_id: str, *, slot_id: str | None = None, value: float | None = None
) -> None:
    """Count one unmatched call of `kind` and keep it among the latest ones."""

    def add(text: str | None) -> str:
        found = _parse(text)
        found["counts"][kind] = found["counts"].get(kind, 0) + 1
        latest = {"kind": kind, "event_id": event_id[:256], "at": time.time()}
        if slot_id is not None:
            latest["slot_id"] = slot_id[:256]
        if value is not None:
            latest["value"] = value
        found["latest"] = [latest, *found["latest"]][:KEPT]
        return json.dumps(found, sort_keys=True)

    res.registry.index.update_control(UNMATCHED_KEY, add)


def counts(res: Resources) -> dict[str, int]:
    """Return the unmatched calls counted so far, by kind (every kind present, 0 if none)."""
    return counts_from(res.registry.index.control)


def counts_from(control: Callable[[str], str | None]) -> dict[str, int]:
    """Return the counts kept where `control` (``ModelIndex.control``) reads operator switches."""
    found = _parse(control(UNMATCHED_KEY))["counts"]
    return {kind: int(found.get(kind, 0)) for kind in ("reward", "activate", "slot")}


def _parse(text: str | None) -> dict[str, Any]:
    found = json.loads(text) if text else {}
    return {"counts": dict(found.get("counts", {})), "latest": list(found.get("latest", []))}
