"""Read the closed decisions of a log, in decision order, ready to replay with their rewards.

`xsell evaluate` and the Personalizer evaluations replay the same way: only decisions
whose reward window has ended (answered and silent alike), paged through the whole
log, each slot's reward by the caller's rules (``RewardRules.slot_rewards``), so an
estimate never counts a decision that could still earn more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from policies.base import LoggedEvent
from policies.evaluation.dataset import LoggedDecision

__all__ = ["closed_decisions"]

PAGE = 1000


class ReplaySource(Protocol):
    """What is read: ``LogStore.replay_events`` in production."""

    def replay_events(
        self,
        *,
        closed_before: float,
        after: tuple[float, str] | None = None,
        limit: int = PAGE,
        created_from: float = float("-inf"),
        created_to: float = float("inf"),
    ) -> list[tuple[LoggedEvent, tuple[float, str]]]: ...


def closed_decisions(
    store: ReplaySource,
    slot_rewards: Callable[[LoggedEvent], tuple[float, ...]],
    *,
    closed_before: float,
    created_from: float = float("-inf"),
    created_to: float = float("inf"),
    limit: int | None = None,
) -> list[LoggedDecision]:
    """Return the decisions closed by `closed_before` and made in [created_from, created_to).

    At most `limit` (the earliest first); each with the rewards `slot_rewards` gives it.
    """
    decisions: list[LoggedDecision] = []
    cursor = None
    while limit is None or len(decisions) < limit:
        page = store.replay_events(
            closed_before=closed_before,
            after=cursor,
            limit=PAGE,
            created_from=created_from,
            created_to=created_to,
        )
        decisions.extend(LoggedDecision(event, slot_rewards(event)) for event, _ in page)
        if len(page) < PAGE:
            break
        cursor = page[-1][1]
    return decisions[:limit] if limit is not None else decisions
