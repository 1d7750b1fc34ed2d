"""Event ids reused for a different request, as Personalizer allowed, without rewriting the log.

Personalizer answered 201 to a rank whose eventId had already been used for another
request. xsell's log never overwrites a decision (it is what was served, and what
learning and evaluation replay), so the second decision is logged under a derived
id: the id sent, the ASCII record separator (0x1E) and a number from 2 up, shown as
``id␞2``. No client id can hold that separator (both APIs refuse control
characters), so a derived id never collides with one a client sends. The answer
carries the id the client sent; a reward or activation for it goes to the latest
decision logged under it, the one the client was last shown.
"""

from __future__ import annotations

from collections.abc import Callable

from logs.records import DecisionRecord, EventConflict
from logs.store import LogStore

__all__ = ["MAX_REUSES", "decide_reusing", "derived", "latest", "sent_id"]

SEPARATOR = "\x1e"
MAX_REUSES = 100  # of one id: bounds the lookups a reward makes


def derived(event_id: str, use: int) -> str:
    """Return the id the `use`-th different request with `event_id` is logged under (1: the id itself)."""
    return event_id if use == 1 else f"{event_id}{SEPARATOR}{use}"


def sent_id(logged_id: str) -> str:
    """Return the id the client sent for a decision logged under `logged_id`."""
    return logged_id.split(SEPARATOR, 1)[0]


def decide_reusing(event_id: str | None, decide: Callable[[str | None], DecisionRecord]) -> DecisionRecord:
    """Decide under `event_id`, or under the first derived id free for this request.

    A retry of a request already logged (same body) gets that decision back, as
    everywhere in xsell.

    Raises
    ------
    EventConflict
        When the id was already used for MAX_REUSES different requests.
    """
    if event_id is None:
        return decide(None)
    for use in range(1, MAX_REUSES + 1):
        try:
            return decide(derived(event_id, use))
        except EventConflict:
            continue
    raise EventConflict(f"event id {event_id!r} was already used for {MAX_REUSES} different requests")


def latest(store: LogStore, event_id: str) -> DecisionRecord | None:
    """Return the latest decision logged under `event_id` (itself or a derived id), or None."""
    found = None
    for use in range(1, MAX_REUSES + 1):
        decision = store.find_decision(derived(event_id, use))
        if decision is None:
            break
        found = decision
    return found
