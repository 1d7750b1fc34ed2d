"""Personalizer rank, reward and activate (single- and multi-slot) on xsell's rank path.

A Personalizer rank is an ordinary xsell decision: logged with its propensities
before the answer, learned by the one learner, evaluated and rolled back like any
other. This module only translates: feature objects become namespaces, a slot's
``excludedActions`` and ``baselineAction`` become the core request's per-slot
controls (the same ones /v1/rank offers, logged with the decision), and
``deferActivation`` keeps the decision out of learning until it is activated.

Where Personalizer was lenient, this edge is too, and the core stays strict: a
reused event id gets a decision of its own under a derived id (``event_ids.py``);
a reward or activation for an unknown event, or a reward for a slot the event did
not rank, is answered 204 and counted as unmatched (``unmatched.py``). ``/v1``
keeps answering those 409, 404 and 400.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from flask import Blueprint, Response, request

from logs.records import DecisionRecord, UnknownEvent
from policies.base import Action
from policies.learning.rewards import RAW_REWARD
from service import intake_fingerprint, pipeline
from service.auth import guard_storefront
from service.limits import check_cost
from service.openapi import documented
from service.personalizer import drop_api_version, event_ids, unmatched
from service.personalizer.features import to_namespaces
from service.personalizer.schemas import (
    MultiSlotRankRequest,
    MultiSlotRewardRequest,
    PersonalizerRankRequest,
    PersonalizerRewardRequest,
    RankableAction,
)
from service.resources import resources
from service.responses import no_content, personalizer_json

bp = Blueprint("personalizer_events", __name__)
guard_storefront(bp)


bp.url_value_preprocessor(drop_api_version)


@bp.post("/rank")
@documented(json=PersonalizerRankRequest, status=201, key="storefront", errors=(409,))
def rank() -> Response:
    """Rank the actions for one slot; 201 with the ranking and the rewardActionId."""
    body = PersonalizerRankRequest.model_validate_json(request.get_data())
    # Personalizer ignored excluded ids it was not given; so does this.
    decision = event_ids.decide_reusing(
        body.event_id, _decide(body, slots=1, excluded=frozenset(body.excluded_actions))
    )
    chosen = decision.choices[0].action_id
    ranking = sorted(
        (
            {"id": a.id, "probability": p}
            for a, p in zip(decision.actions, decision.probabilities, strict=True)
        ),
        key=lambda r: (r["id"] != chosen, -r["probability"]),
    )
    return personalizer_json(
        {"eventId": event_ids.sent_id(decision.event_id), "ranking": ranking, "rewardActionId": chosen}, 201
    )


@bp.post("/multislot/rank")
@documented(json=MultiSlotRankRequest, status=201, key="storefront", errors=(409,))
def rank_multi_slot() -> Response:
    """Choose one action per slot; 201 with each slot's rewardActionId."""
    body = MultiSlotRankRequest.model_validate_json(request.get_data())
    decision = event_ids.decide_reusing(
        body.event_id,
        _decide(
            body,
            slots=len(body.slots),
            baseline=tuple(s.baseline_action for s in body.slots),
            slot_ids=tuple(s.id for s in body.slots),
            slot_excluded=tuple(frozenset(s.excluded_actions) for s in body.slots),
        ),
    )
    chosen = [c.action_id for c in decision.choices]
    slots = [
        {"id": slot.id, "rewardActionId": chosen[k] if k < len(chosen) else None}
        for k, slot in enumerate(body.slots)
    ]
    return personalizer_json({"eventId": event_ids.sent_id(decision.event_id), "slots": slots}, 201)


@bp.post("/events/<path:event_id>/reward")
@documented(json=PersonalizerRewardRequest, status=204, key="storefront", errors=(404,))
def reward(event_id: str) -> Response:
    """Record the reward of the event's rewardActionId; 204 (an unknown event: counted as unmatched)."""
    body = PersonalizerRewardRequest.model_validate_json(request.get_data())
    res = resources()
    decision = event_ids.latest(res.store, event_id)
    if decision is None:
        unmatched.record(res, "reward", event_id, value=body.value)
    else:
        _record_reward(decision.event_id, None, body.value)
    return no_content()


@bp.post("/multislot/events/<path:event_id>/reward")
@documented(json=MultiSlotRewardRequest, status=204, key="storefront", errors=(404,))
def reward_multi_slot(event_id: str) -> Response:
    """Record a reward per slot; 204. A slot the event did not rank is counted as unmatched."""
    body = MultiSlotRewardRequest.model_validate_json(request.get_data())
    res = resources()
    decision = event_ids.latest(res.store, event_id)
    if decision is None:
        for item in body.reward:
            unmatched.record(res, "reward", event_id, slot_id=item.slot_id, value=item.value)
        return no_content()
    by_slot = dict(zip(decision.slot_ids or (), (c.action_id for c in decision.choices), strict=False))
    for item in body.reward:
        if item.slot_id in by_slot:
            _record_reward(decision.event_id, by_slot[item.slot_id], item.value)
        else:
            unmatched.record(res, "slot", event_id, slot_id=item.slot_id, value=item.value)
    return no_content()


@bp.post("/events/<path:event_id>/activate")
@bp.post("/multislot/events/<path:event_id>/activate")
@documented(status=204, key="storefront", errors=(404,))
def activate(event_id: str) -> Response:
    """Say a deferred event was shown: its reward wait starts now and it will be learned; 204."""
    res = resources()
    decision = event_ids.latest(res.store, event_id)
    try:
        if decision is None:
            raise UnknownEvent(event_id)
        res.store.activate(
            decision.event_id,
            window_seconds=res.config.current().live.reward_window_seconds,
            first_learn_seconds=res.settings.first_learn_seconds,
        )
    except UnknownEvent:  # never logged, or purged since
        unmatched.record(res, "activate", event_id)
    return no_content()


def _decide(
    body: PersonalizerRankRequest | MultiSlotRankRequest,
    *,
    slots: int,
    excluded: frozenset[str] = frozenset(),
    slot_excluded: tuple[frozenset[str], ...] = (),
    **extra: Any,
) -> Callable[[str | None], DecisionRecord]:
    """Return what ranks, samples and logs the request under an event id through xsell's rank path.

    The request is translated and priced once: a reused id tries up to MAX_REUSES
    derived ids, and redoing it for each made one request cost 200 ranks.
    Exclusions of unknown ids are dropped.
    """
    actions = _actions(body.actions)
    ids = frozenset(a.id for a in actions)
    context = to_namespaces(body.context_features, "contextFeatures")
    res = resources()
    check_cost(res, context, actions, context_field="contextFeatures")
    prepared = pipeline.RankInput(
        event_id=None,
        context=context,
        actions=actions,
        excluded=excluded & ids,
        slots=slots,
        fingerprint=intake_fingerprint.retry_fingerprint(body.event_id, body),
        legacy_fingerprints=lambda: intake_fingerprint.legacy(body),
        deferred=body.defer_activation,
        slot_excluded=tuple(banned & ids for banned in slot_excluded),
        **extra,
    )
    return lambda event_id: pipeline.decide(res, replace(prepared, event_id=event_id))


def _actions(actions: Sequence[RankableAction]) -> tuple[Action, ...]:
    return tuple(
        Action(a.id, to_namespaces(a.features, f"actions[{k}].features")) for k, a in enumerate(actions)
    )


def _record_reward(event_id: str, action_id: str | None, value: float) -> None:
    res = resources()
    # Every reward within the wait time counts (a later one is learned as a
    # correction), so "sum" sums them all. Each call is its own reward (Personalizer
    # summed repeated rewards under "sum"), so none is folded into an earlier one with
    # the same value.
    try:
        res.store.record_feedback(
            event_id,
            RAW_REWARD,
            value,
            action_id=action_id,
            dedupe_key=f"{RAW_REWARD}:{uuid.uuid4().hex}",
        )
    except UnknownEvent:  # purged between the lookup and now
        unmatched.record(res, "reward", event_ids.sent_id(event_id), value=value)
