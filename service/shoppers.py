"""Shopper controls: preferences that apply from the next request, and erasure.

The path's shopper id is hashed with the server's key before anything is read
or written; the raw id is never stored or logged.
"""

from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, Response, request

from logs.shopper_store import Preferences
from service.auth import guard_storefront
from service.openapi import documented
from service.resources import resources, shopper_key
from service.responses import json_response
from service.schemas import PreferencesRequest, PreferencesResponse

bp = Blueprint("shoppers", __name__)
guard_storefront(bp)

SHOPPER_ID = "<string(maxlength=128):shopper_id>"


def _body(preferences: Preferences) -> dict:
    return PreferencesResponse(
        muted_categories=list(preferences.muted),
        frequency=preferences.frequency,  # type: ignore[arg-type]
        personalised=preferences.personalised,
    ).model_dump()


@bp.get(f"/v1/shoppers/{SHOPPER_ID}/preferences")
@documented(ok=PreferencesResponse, key="storefront")
def get_preferences(shopper_id: str) -> Response:
    """Return the shopper's preferences (defaults if they set none)."""
    res = resources()
    return json_response(_body(res.shoppers.preferences(shopper_key(res, shopper_id))))


@bp.post(f"/v1/shoppers/{SHOPPER_ID}/preferences")
@documented(json=PreferencesRequest, ok=PreferencesResponse, key="storefront")
def set_preferences(shopper_id: str) -> Response:
    """Mute categories, set offer frequency (off/fewer/normal), opt out of personalisation."""
    body = PreferencesRequest.model_validate_json(request.get_data() or b"{}")
    res = resources()
    key = shopper_key(res, shopper_id)
    current = res.shoppers.preferences(key)
    updated = replace(
        current,
        muted=tuple(body.muted_categories) if body.muted_categories is not None else current.muted,
        frequency=body.frequency or current.frequency,
        personalised=current.personalised if body.personalised is None else body.personalised,
    )
    res.shoppers.save_preferences(key, updated)
    return json_response(_body(res.shoppers.preferences(key)))


@bp.delete(f"/v1/shoppers/{SHOPPER_ID}")
@documented(key="storefront")
def erase(shopper_id: str) -> Response:
    """Erase everything xsell holds on this shopper; their decisions stay, anonymised.

    Preferences, pacing history and verdicts are deleted; each decision made for them
    loses its event id, request hash, context and exact purchase values (docs/offers.md,
    "Erasure"). Answers 503 if the log could not be emptied of old copies: retry.
    """
    res = resources()
    # rewards as the learner's rollups compute them: with the rules in force
    erasure = res.shoppers.erase(shopper_key(res, shopper_id), res.config.current().rules.reward_for)
    body = {"erased": True, "rows_removed": erasure.rows_removed}
    return json_response({**body, "decisions_anonymised": erasure.decisions_anonymised})
