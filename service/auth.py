"""API keys: admin endpoints always need one; storefront endpoints when keys are set.

A key is sent as ``Authorization: Bearer KEY``, ``X-Api-Key: KEY`` or, as the
Personalizer SDKs do, ``Ocp-Apim-Subscription-Key: KEY``. Keys are
compared in constant time against every configured key (no early exit that would
leak which prefix matched) and never logged. With no admin key configured the
admin endpoints are disabled rather than open: operators then use the CLI.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable

from flask import Blueprint, request

from service.resources import resources

__all__ = ["AuthError", "guard_admin", "guard_storefront", "presented_key"]


class AuthError(Exception):
    """The request lacks a valid API key."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code = status, code


def presented_key() -> str | None:
    """Return the key the request carries, if any."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    # The Personalizer SDKs send their subscription key in this header.
    return request.headers.get("X-Api-Key") or request.headers.get("Ocp-Apim-Subscription-Key") or None


def _matches(key: str, keys: Iterable[str]) -> bool:
    found = False
    for candidate in keys:
        found |= hmac.compare_digest(key.encode(), candidate.encode())
    return found


def _check(keys: frozenset[str]) -> None:
    key = presented_key()
    if key is None:
        raise AuthError(
            401,
            "missing_api_key",
            "send an API key as 'Authorization: Bearer KEY', 'X-Api-Key' or 'Ocp-Apim-Subscription-Key'",
        )
    if not _matches(key, keys):
        raise AuthError(403, "invalid_api_key", "the API key is not valid for this endpoint")


def guard_admin(blueprint: Blueprint) -> None:
    """Require an admin key on every route of `blueprint`."""

    @blueprint.before_request
    def _admin_only() -> None:
        keys = resources().admin_keys
        if not keys:
            raise AuthError(403, "admin_disabled", "admin endpoints are disabled: set XSELL_ADMIN_API_KEYS")
        _check(keys)


def guard_storefront(blueprint: Blueprint) -> None:
    """Require a storefront (or admin) key on `blueprint` when storefront keys are configured."""

    @blueprint.before_request
    def _storefront_key() -> None:
        res = resources()
        if res.storefront_keys:
            _check(res.storefront_keys | res.admin_keys)
