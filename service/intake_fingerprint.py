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
(``legacy_rank`` and ``legacy_offers``, closed lists: v2 no longer changes when fields
are added).

/v1/offers hashes what the path derives from fields it may not keep: the search's
tokens instead of its text, the keyed shopper hash instead of the raw id (``derived``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import orjson
from pydantic import BaseModel

__all__ = [
    "OFFERS_NOT_HASHED",
    "TAG",
    "fingerprint",
    "legacy",
    "legacy_offers",
    "legacy_rank",
    "retry_fingerprint",
    "same_request",
]

TAG = "v2:"
# Fields /v1/rank's filters gained with 2da538f (their defaults: empty, empty, false).
_LATER_FILTER_FIELDS = {"include_families": [], "exclude_families": [], "in_stock": False}
# What /v1/offers never hashes raw: the event id, the shopper's raw id, the search's text.
OFFERS_NOT_HASHED = frozenset({"event_id", "shopper_id", "search"})


def _sha256(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def fingerprint(
    body: BaseModel,
    exclude: frozenset[str] = frozenset({"event_id"}),
    derived: Mapping[str, Any] | None = None,
) -> str:
    """Return the tagged hash of what `body` asks: its fields but `exclude`, defaults left out.

    `derived` adds what the edge made of excluded fields; like a default, an empty or None
    value is left out, so a request without that field hashes as if it had no such entry.
    """
    fields = body.model_dump(mode="json", exclude_defaults=True, exclude=set(exclude))
    for name, value in (derived or {}).items():
        if value is not None and value != [] and value != ():
            fields[name] = value
    return TAG + _sha256(fields)


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


def legacy_offers(body: BaseModel, derived: Mapping[str, Any]) -> list[str]:
    """Return what each version before v2 stored for a /v1/offers `body`, newest first.

    Each hashed the whole request but `OFFERS_NOT_HASHED`, defaults included, with the
    search's tokens and the keyed shopper (`derived`). Going back, each step removes what
    one version added (``git log -p -- service/schemas.py service/cross_sell.py``); a
    request using a field a version did not know ends the walk there.
    """
    whole = {**body.model_dump(mode="json", exclude=set(OFFERS_NOT_HASHED)), **derived}
    found = [whole]
    for step in _OFFERS_HISTORY:
        earlier = step(found[-1])
        if earlier is None:
            break
        if earlier != found[-1]:
            found.append(earlier)
    return [_sha256(f) for f in found]


def _filters_before_families(fields: dict[str, Any]) -> dict[str, Any] | None:
    """31aba17 to 2da538f: filters without families and stock."""
    filters = fields.get("filters")
    if filters is None:
        return fields
    if any(filters.get(name) != default for name, default in _LATER_FILTER_FIELDS.items()):
        return None
    return {**fields, "filters": {k: v for k, v in filters.items() if k not in _LATER_FILTER_FIELDS}}


def _added(name: str, default: Any) -> Callable[[dict[str, Any]], dict[str, Any] | None]:
    """The step back over the version that added `name`: possible only if it is at `default`."""

    def before(fields: dict[str, Any]) -> dict[str, Any] | None:
        if fields.get(name) != default:
            return None
        return {k: v for k, v in fields.items() if k != name}

    return before


def _before_shopper_key(fields: dict[str, Any]) -> dict[str, Any]:
    """acc5222 to 9edf8fc: a shopper_id was accepted but not hashed."""
    return {k: v for k, v in fields.items() if k != "shopper_key"}


_OFFERS_HISTORY: Sequence[Callable[[dict[str, Any]], dict[str, Any] | None]] = (
    _filters_before_families,
    _added("session_id", None),  # b373883
    _added("filters", None),  # 31aba17
    _added("bought", []),  # 50d3f51
    _before_shopper_key,  # 9edf8fc
)
