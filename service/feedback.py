"""POST /v1/events/{event_id}/feedback and /reward: what the shopper did."""

from __future__ import annotations

from flask import Blueprint, Response, request

from policies.learning.rewards import RAW_REWARD
from service.auth import guard_storefront
from service.openapi import documented
from service.resources import resources
from service.responses import json_response
from service.schemas import FeedbackRequest, FeedbackResponse, RewardRequest

bp = Blueprint("feedback", __name__)
guard_storefront(bp)


@bp.post("/v1/events/<path:event_id>/feedback")
@documented(json=FeedbackRequest, ok=FeedbackResponse, key="storefront", errors=(404, 409))
def feedback(event_id: str) -> Response:
    """Record a shopper signal (click, save, add_to_cart, purchase, dismiss)."""
    body = FeedbackRequest.model_validate_json(request.get_data())
    return _record(event_id, body.signal, body.value, body.action_id)


@bp.post("/v1/events/<path:event_id>/reward")
@documented(json=RewardRequest, ok=FeedbackResponse, key="storefront", errors=(404, 409))
def reward(event_id: str) -> Response:
    """Set a raw reward for an offer directly; it overrides signals for that offer."""
    body = RewardRequest.model_validate_json(request.get_data())
    return _record(event_id, RAW_REWARD, body.value, body.action_id)


def _record(event_id: str, signal: str, value: float | None, action_id: str | None) -> Response:
    res = resources()
    receipt = res.store.record_feedback(event_id, signal, value, action_id=action_id)
    if not receipt.duplicate:
        res.shoppers.record_response(receipt.event_id, receipt.action_id, signal)  # pacing hears "no thanks"
    body = FeedbackResponse(
        event_id=receipt.event_id,
        action_id=receipt.action_id,
        signal=receipt.signal,
        duplicate=receipt.duplicate,
        learnable=receipt.on_time,
    )
    return json_response(body.model_dump(mode="json"))
