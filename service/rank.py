"""POST /v1/rank: choose offers among the candidates the storefront sends."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request

from logs.records import DecisionRecord
from service import intake_fingerprint, pipeline
from service.auth import guard_storefront
from service.limits import check_cost
from service.openapi import documented
from service.resources import resources, shopper_key
from service.responses import json_response
from service.schemas import RankRequest, RankResponse

bp = Blueprint("rank", __name__)
guard_storefront(bp)


@bp.post("/v1/rank")
@documented(json=RankRequest, ok=RankResponse, key="storefront", errors=(409,))
def rank() -> Response:
    """Rank the candidate offers and log the decision before answering."""
    body = RankRequest.model_validate_json(request.get_data())
    res = resources()
    wanted = to_input(body)
    check_cost(res, wanted.context, wanted.actions)
    decision = pipeline.decide(res, wanted)
    return json_response(from_decision(decision))


def to_input(body: RankRequest) -> pipeline.RankInput:
    """Translate the HTTP body into the rank path's input."""
    return pipeline.RankInput(
        event_id=body.event_id,
        context=body.context,
        actions=body.domain_actions(),
        excluded=frozenset(body.excluded_actions),
        slots=len(body.slots),
        fingerprint=intake_fingerprint.retry_fingerprint(body.event_id, body),
        legacy_fingerprints=lambda: intake_fingerprint.legacy_rank(body),
        baseline=tuple(s.baseline_action for s in body.slots),
        slot_ids=tuple(s.id for s in body.slots if s.id is not None) or None,
        slot_excluded=tuple(frozenset(s.excluded_actions) for s in body.slots),
        shopper=shopper_key(resources(), body.shopper_id) if body.shopper_id else None,
        session=body.session_id,
        storefront_controls=True,
        filters=body.filters.domain() if body.filters else None,
    )


def from_decision(decision: DecisionRecord) -> dict[str, Any]:
    """Build the answer (shaped as RankResponse): chosen offers first, in slot order,
    then the rest by probability.

    Plain dicts rather than RankResponse instances: building and dumping 20 pydantic
    objects per request was a tenth of the rank path (docs/performance.md); the
    schema still documents the answer and tests validate answers against it.
    """
    chosen = [c.action_id for c in decision.choices]
    position = {action_id: slot for slot, action_id in enumerate(chosen)}
    entries = [
        {"id": a.id, "probability": p, "excluded": a.id in decision.excluded}
        for a, p in zip(decision.actions, decision.probabilities, strict=True)
    ]
    if decision.rules is not None:  # name the rule behind each removal, pin or promotion (#15)
        ruled = {a: b["rule"] for a, b in decision.rules.get("boosted", {}).items()}
        for mixed in decision.rules.get("mixed", ()):  # a campaign's share names it over a boost
            ruled.update(dict.fromkeys(mixed["actions"], mixed["rule"]))
        ruled.update(decision.rules["removed"])
        if "pinned" in decision.rules:
            ruled[decision.rules["pinned"]["action_id"]] = decision.rules["pinned"]["rule"]
        for entry in entries:
            if entry["id"] in ruled:
                entry["rule"] = ruled[entry["id"]]
    unchosen = len(chosen)
    entries.sort(key=lambda e: (position.get(e["id"], unchosen), e["excluded"], -e["probability"]))
    return {
        "event_id": decision.event_id,
        "model_version": decision.model_version,
        "chosen": chosen,
        "choices": [
            {"slot": c.slot + 1, "action_id": c.action_id, "probability": c.probability}
            | ({"slot_id": decision.slot_ids[c.slot]} if decision.slot_ids else {})
            for c in decision.choices
        ],
        "ranking": entries,
    }
