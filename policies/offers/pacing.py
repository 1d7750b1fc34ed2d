"""Pacing: few offers, well spaced, and fewer after a "no thanks".

Given what a shopper was recently shown and how they answered:

- **off**: a shopper who turned offers off gets none.
- **cap**: at most ``session_cap`` offers per ``session_seconds`` (a third of it, at
  least one, for shoppers who asked for fewer).
- **cool-down**: after a dismissal, no offers for ``cooldown_seconds`` × 2^(n−1),
  where n counts dismissals since the shopper last responded positively (capped at
  ``max_cooldown_seconds``). A positive response resets n: it relaxes pacing.
- **fatigue**: a kind shown ``category_fatigue`` times this session without a
  positive response is not shown again this session.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["PacingOptions", "PacingVerdict", "ShopperEvent", "pace"]


@dataclass(frozen=True, slots=True)
class ShopperEvent:
    kind: str  # shown, dismiss, positive
    at: float
    category: str | None = None


@dataclass(frozen=True, slots=True)
class PacingOptions:
    session_seconds: float = 1800.0
    session_cap: int = 6
    cooldown_seconds: float = 120.0
    max_cooldown_seconds: float = 86_400.0
    category_fatigue: int = 3


@dataclass(frozen=True, slots=True)
class PacingVerdict:
    max_offers: int  # 0: no offer
    reason: str  # a code for the log and the answer
    tired_categories: frozenset[str] = frozenset()


def pace(
    events: Sequence[ShopperEvent], *, frequency: str, requested: int, now: float, options: PacingOptions
) -> PacingVerdict:
    """Return how many offers this shopper may get now, and which kinds to leave out."""
    if frequency == "off":
        return PacingVerdict(0, "shopper_turned_offers_off")
    ordered = sorted(events, key=lambda e: e.at)
    streak, last_dismissal = 0, None
    for event in ordered:
        if event.kind == "dismiss":
            streak, last_dismissal = streak + 1, event.at
        elif event.kind == "positive":
            streak = 0
    if streak and last_dismissal is not None:
        cooldown = min(options.cooldown_seconds * 2 ** (streak - 1), options.max_cooldown_seconds)
        if now - last_dismissal < cooldown:
            return PacingVerdict(0, f"cooling_down_after_{streak}_dismissals")
    session = [e for e in ordered if now - e.at < options.session_seconds]
    cap = options.session_cap if frequency == "normal" else max(1, options.session_cap // 3)
    shown = sum(1 for e in session if e.kind == "shown")
    if shown >= cap:
        return PacingVerdict(0, "session_cap_reached")
    liked = {e.category for e in session if e.kind == "positive"}
    per_kind = Counter(e.category for e in session if e.kind == "shown" and e.category)
    tired = frozenset(c for c, n in per_kind.items() if n >= options.category_fatigue and c not in liked)
    allowed = min(requested, cap - shown)
    reason = "within_pacing" if allowed == requested else "fewer_to_stay_within_session_cap"
    return PacingVerdict(allowed, reason, tired)
