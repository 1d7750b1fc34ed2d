"""Console sign-in: an admin key buys a signed session cookie; every action carries a CSRF token.

The cookie holds no key: a token signed with a secret derived from the server's
shopper-id secret (shared by every worker through the data directory), naming a
keyed hash of the admin key that signed in and a random nonce. A session is valid while
that key is still configured (removing a key from ``XSELL_ADMIN_API_KEYS`` ends its
sessions) and for at most ``SESSION_SECONDS``. The cookie is ``Secure``,
``HttpOnly`` and ``SameSite=Strict``; each form carries a CSRF token, an HMAC of the
session's nonce, which a POST must send back. A storefront key is refused: it may rank
and send feedback, never operate the service. Signing out ends the session on the
server too (its nonce is kept as signed out in the log's ``control`` table until it
would have expired), so a copy of the cookie taken before is worthless after it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from flask import Response, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from service.auth import _matches  # the same constant-time comparison as the API
from service.resources import Resources, resources

__all__ = [
    "COOKIE",
    "SESSION_SECONDS",
    "ConsoleSession",
    "SignInRefused",
    "clear_cookie",
    "current_session",
    "set_cookie",
    "sign_in",
    "sign_out",
    "signer",
]

COOKIE = "xsell_console"
SESSION_SECONDS = 8 * 3600  # a working day; then sign in again
SIGNED_OUT_KEY = "console_signed_out"  # control row: nonce -> when its session would have expired
MAX_SIGNED_OUT = 1000  # sign-outs within SESSION_SECONDS kept; each needs an admin key


class SignInRefused(Exception):
    """The key given at sign-in is missing, unknown, or not an admin key."""

    def __init__(self, status: int, message: str, *, wrong_key: bool = False):
        super().__init__(message)
        self.status = status
        self.wrong_key = wrong_key  # a key was tried and did not match: counts against the limit


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    """A signed-in operator: which key (by its keyed hash) and the CSRF token of this session."""

    key_digest: str
    csrf_token: str

    @property
    def actor(self) -> str:
        """Name the operator in the model history without revealing the key."""
        return f"console:{self.key_digest[:8]}"


def signer(res: Resources, purpose: str = "session") -> URLSafeTimedSerializer:
    """Return the serializer that signs console cookies (or notices), one secret per purpose."""
    secret = hmac.new(res.shopper_secret, b"xsell-console", hashlib.sha256).hexdigest()
    return URLSafeTimedSerializer(secret, salt=f"xsell-console-{purpose}")


def _key_id(res: Resources, key: str) -> str:
    # Keyed, so the cookie (signed, not encrypted) gives nothing to guess a key against.
    return hmac.new(res.shopper_secret, b"xsell-console-key:" + key.encode(), hashlib.sha256).hexdigest()


def _csrf(res: Resources, nonce: str) -> str:
    secret = hmac.new(res.shopper_secret, b"xsell-console-csrf", hashlib.sha256).digest()
    return hmac.new(secret, nonce.encode(), hashlib.sha256).hexdigest()


def sign_in(res: Resources, key: str) -> str:
    """Return a session token for an admin `key`.

    Raises
    ------
    SignInRefused
        403 when no admin key is configured or the key is a storefront key or unknown;
        401 when no key was given.
    """
    key = key.strip()
    if not res.admin_keys:
        raise SignInRefused(403, "the console is disabled: set XSELL_ADMIN_API_KEYS")
    if not key:
        raise SignInRefused(401, "enter an admin API key")
    if not _matches(key, res.admin_keys):
        if res.storefront_keys and _matches(key, res.storefront_keys):
            raise SignInRefused(403, "a storefront key cannot sign in: use an admin key", wrong_key=True)
        raise SignInRefused(403, "that key is not an admin key", wrong_key=True)
    return str(signer(res).dumps({"k": _key_id(res, key), "n": secrets.token_hex(16)}))


def current_session(res: Resources) -> ConsoleSession | None:
    """Return the session the request's cookie proves, or None."""
    token = request.cookies.get(COOKIE)
    if not token or not res.admin_keys:
        return None
    try:
        payload = signer(res).loads(token, max_age=SESSION_SECONDS)
    except BadSignature:  # also an expired one (SignatureExpired is a BadSignature)
        return None
    if not isinstance(payload, dict) or not isinstance(payload.get("k"), str):
        return None
    digests = [_key_id(res, k) for k in res.admin_keys]
    if not any(hmac.compare_digest(payload["k"], d) for d in digests):
        return None  # the key was removed since: its sessions end
    nonce = str(payload.get("n", ""))
    if nonce in _signed_out(res):
        return None  # signed out: a copy of the cookie ends with it
    return ConsoleSession(payload["k"], _csrf(res, nonce))


def _signed_out(res: Resources) -> dict[str, float]:
    text = res.registry.index.control(SIGNED_OUT_KEY)
    return dict(json.loads(text)) if text else {}


def sign_out(res: Resources, token: str) -> None:
    """End the session `token` names on the server, for every copy of its cookie."""
    try:
        payload = signer(res).loads(token, max_age=SESSION_SECONDS)
    except BadSignature:
        return  # not a session (or an expired one): nothing to end
    nonce = payload.get("n") if isinstance(payload, dict) else None
    if not isinstance(nonce, str):
        return
    now = time.time()  # itsdangerous's clock, which expires the cookie

    def add(text: str | None) -> str:
        kept = {n: until for n, until in (json.loads(text) if text else {}).items() if until > now}
        kept[nonce] = now + SESSION_SECONDS
        return json.dumps(dict(sorted(kept.items(), key=lambda item: item[1])[-MAX_SIGNED_OUT:]))

    res.registry.index.update_control(SIGNED_OUT_KEY, add)


def csrf_ok(session: ConsoleSession) -> bool:
    """Whether the POSTed form carries this session's CSRF token."""
    sent = request.form.get("csrf_token", "")
    return hmac.compare_digest(sent.encode(), session.csrf_token.encode())


def set_cookie(response: Response, token: str) -> None:
    """Attach the session cookie: Secure, HttpOnly, SameSite=Strict, console paths only."""
    response.set_cookie(
        COOKIE,
        token,
        max_age=SESSION_SECONDS,
        path="/console",
        secure=True,
        httponly=True,
        samesite="Strict",
    )


def clear_cookie(response: Response) -> None:
    """Remove the session cookie and end its session on the server."""
    token = request.cookies.get(COOKIE)
    if token:
        sign_out(resources(), token)
    response.delete_cookie(COOKIE, path="/console", secure=True, httponly=True, samesite="Strict")
