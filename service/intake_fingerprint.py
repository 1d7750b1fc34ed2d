"""What identifies a request whose event id comes back: the same request (a retry) or another one.

A decision logs its request's fingerprint (``request_sha256``); a rank with a known event
id gets the stored answer when the fingerprints match and 409 when they do not. The
fingerprint must therefore depend on what the client asked, not on the version of xsell
that read it.

Format ``v2:`` (this one): the SHA-256 of the canonical JSON (orjson, sorted keys) of the
validated request with the event id and every field equal to its default left out. A
field a later version adds with a default, or a default sent explicitly (``"slots": 1``,
``"context": {}``), changes nothing, so a retry sent across an upgrade still matches.

Untagged (before v2): the hash of the whole validated request, defaults included, so
each field added since (per-slot objects, ``shopper_id`` and ``session_id``,
``filters``, the filters' families and stock) changed it and a retry across that
upgrade got 409. Those rows are compared against what each earlier version hashed
(``legacy_rank``, a closed list: v2 no longer changes when fields are added).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import orjson
from pydantic import BaseModel

__all__ = ["TAG", "fingerprint", "legacy", "legacy_rank", "retry_fingerprint", "same_request"]

TAG = "v2:"
# Fields /v1/rank's filters gained with 2da538f (their defaults: empty, empty, false).
_LATER_FILTER_FIELDS = {"include_families": [], "exclude_families": [], "in_stock": False}


def _sha256(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def fingerprint(body: BaseModel, exclude: frozenset[str] = frozenset({"event_id"})) -> str:
    """Return the tagged hash of what `body` asks: its fields but `exclude`, defaults left out."""
    return TAG + _sha256(body.model_dump(mode="json", exclude_defaults=True, exclude=set(exclude)))


def retry_fingerprint(event_id: str | None, body: BaseModel) -> str:
    """Return the fingerprint a retry must match, or "" when the service chooses the id (no retry)."""
    return fingerprint(body) if event_id is not None else ""


def same_request(stored: str, current: str, earlier: Callable[[], Iterable[str]]) -> bool:
    """Whether a decision logged with `stored` answers a request fingerprinted `current` now.

    `earlier` gives the untagged fingerprints earlier versions made of the request; it is
    called only for an untagged row, so a retry pays for them only across an upgrade.
    """
    if stored == current:
        return True
    if not stored or stored.startswith(TAG):
        return False
    return stored in set(earlier())


def legacy(body: BaseModel) -> list[str]:
    """Return the untagged fingerprint of `body`: its whole dump, defaults included (before v2)."""
    return [_sha256(body.model_dump(mode="json", exclude={"event_id"}))]


def legacy_rank(body: BaseModel) -> list[str]:
    """Return what each version before v2 stored for a /v1/rank `body`, newest first.

    Each was the hash of the whole request as that version's schema dumped it; a
    version could not have received a request using a field it did not know, so that
    version is skipped for one that does.
    """
    whole = body.model_dump(mode="json", exclude={"event_id"})
    found = [whole]
    filters = whole.get("filters")
    if filters is not None:  # b373883 to 2da538f: filters without families and stock
        if all(filters.get(name) == default for name, default in _LATER_FILTER_FIELDS.items()):
            found.append(
                {**whole, "filters": {k: v for k, v in filters.items() if k not in _LATER_FILTER_FIELDS}}
            )
        return [_sha256(f) for f in found]
    earlier = {k: v for k, v in whole.items() if k != "filters"}  # 898e1aa: no filters yet
    found.append(earlier)
    if earlier.get("shopper_id") is None and earlier.get("session_id") is None:
        earlier = {k: v for k, v in earlier.items() if k not in ("shopper_id", "session_id")}
        found.append(earlier)  # d3259ec: per-slot objects, no experiments yet
        slots = earlier.get("slots", [])
        if all(s == {"id": None, "excluded_actions": [], "baseline_action": None} for s in slots):
            found.append({**earlier, "slots": len(slots)})  # e6e0c26: slots was a number
    return [_sha256(f) for f in found]
