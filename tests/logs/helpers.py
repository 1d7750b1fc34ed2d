from __future__ import annotations

import time

from logs.records import DecisionRecord
from policies.base import Action, SlotChoice


def decision(
    event_id: str = "e1",
    *,
    window: float = 60.0,
    fingerprint: str = "req",
    slots: int = 1,
    created_at: float | None = None,
    learn_in: float = 0.0,
) -> DecisionRecord:
    """A logged decision over three actions, 'a' then 'b' chosen."""
    now = time.time() if created_at is None else created_at
    choices = (SlotChoice(0, "a", 0.5), SlotChoice(1, "b", 0.6))[:slots]
    return DecisionRecord(
        event_id=event_id,
        created_at=now,
        closes_at=now + window,
        model_version="v1",
        request_sha256=fingerprint,
        context={"shopper": {"device": "mobile"}},
        actions=(Action("a", {"offer": {"price": 3.0}}), Action("b"), Action("c")),
        excluded=frozenset({"c"}),
        probabilities=(0.5, 0.5, 0.0),
        choices=choices,
        slots=slots,
        learn_at=now + learn_in,
    )
