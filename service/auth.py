"""API keys: admin endpoints always need one; storefront endpoints whenever keys are set.

A key is sent as ``Authorization: Bearer KEY``, ``X-Api-Key: KEY`` or, as the
Personalizer SDKs do, ``Ocp-Apim-Subscription-Key: KEY``. Keys are compared in
constant time against every configured key (SHA-256 digests, so neither an early exit
nor a length difference tells which key came close) and never logged. With no admin
key configured the admin endpoints are disabled rather than open: operators then use
the CLI.

With no storefront key the storefront routes are open, which ``access_mode`` allows
only on a loopback address (development) or with ``XSELL_OPEN_ACCESS=true`` (behind a
proxy that authenticates); anything else refuses to start. docs/security.md has the
whole model.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Iterable
from functools import lru_cache
from typing import Literal

from flask import Blueprint, Flask, request

from service.exceptions import AuthError
from service.resources import resources
from service.settings import Settings

__all__ = [
    "AccessMode",
    "AccessRefused",
    "AuthError",
    "access_mode",
    "guard_admin",
    "guard_storefront",
    "is_loopback",
    "presented_key",
    "storefront_routes",
]

AccessMode = Literal["keys", "development", "open"]
_storefront_blueprints: list[Blueprint] = []


class AccessRefused(Exception):
    """The key settings would leave routes open that nobody chose to open."""


@lru_cache(maxsize=16)
def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine (a name other than localhost: no)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def access_mode(settings: Settings) -> AccessMode:
    """Say how storefront routes are guarded, or raise AccessRefused (and ValueError for bad keys).

    "keys": a storefront (or admin) key is needed. "development": no key, bound to a
    loopback address. "open": no key on purpose (``XSELL_OPEN_ACCESS=true``).
    """
    settings.admin_keys()  # a key setting that yields no key raises here, before anything starts
    if settings.storefront_keys():
        return "keys"
    if is_loopback(settings.host):
        return "development"
    if settings.open_access:
        return "open"
    raise AccessRefused(
        f"refusing to serve on {settings.host} with no storefront key: anyone who reaches it could "
        "rank, send feedback, read and change shopper preferences and erase shoppers. Set "
        "XSELL_API_KEYS (or XSELL_API_KEY_FILE), bind 127.0.0.1, or set XSELL_OPEN_ACCESS=true "
        "if a proxy in front authenticates every call (docs/security.md)"
    )


def storefront_routes(app: Flask) -> list[str]:
    """Return "METHODS /path" for every route a storefront key guards in `app`."""
    routes = []
    for rule in app.url_map.iter_rules():
        blueprint = app.blueprints.get(rule.endpoint.rpartition(".")[0])
        if blueprint is not None and any(blueprint is b for b in _storefront_blueprints):
            methods = ",".join(sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}))
            routes.append(f"{methods} {rule.rule}")
    return sorted(routes)


def presented_key() -> str | None:
    """Return the key the request carries, if any."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip() or None
    # The Personalizer SDKs send their subscription key in this header.
    return request.headers.get("X-Api-Key") or request.headers.get("Ocp-Apim-Subscription-Key") or None


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _matches(key: str, keys: Iterable[str]) -> bool:
    """Compare against every key, always all of them, digests of equal length."""
    presented = _digest(key)
    found = False
    for candidate in keys:
        found |= hmac.compare_digest(presented, _digest(candidate))
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
    """Require a storefront (or admin) key on `blueprint` unless the service is open on purpose."""
    _storefront_blueprints.append(blueprint)

    @blueprint.before_request
    def _storefront_key() -> None:
        res = resources()
        if res.storefront_keys:
            _check(res.storefront_keys | res.admin_keys)
        elif not (res.settings.open_access or is_loopback(res.settings.host)):
            # `xsell serve` refuses this start; an app served some other way fails closed.
            _check(res.admin_keys)
