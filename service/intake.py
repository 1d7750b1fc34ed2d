"""What a request body must be before a view reads it: JSON, and whole within the limit.

A browser sends ``text/plain``, form-encoded and untyped bodies across origins
without a CORS preflight, so any web page could post forged feedback from a
shopper's browser; JSON routes therefore answer 415 to every body that is not
declared JSON. Werkzeug stops reading a chunked body at ``MAX_CONTENT_LENGTH``
without complaint, so a view would see the first 256 KiB of a larger body as if
it were all of it; ``Request.get_data`` here answers 413 instead.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, request
from flask import Request as FlaskRequest
from werkzeug.exceptions import RequestEntityTooLarge

from service.errors import UnsupportedBody

__all__ = ["Request", "register"]

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# (view function, blueprint names start with) of the routes whose body is not JSON
BINARY_ROUTES = frozenset({("import_model", "personalizer_admin")})
# Blueprints whose forms are HTML forms, each POST proven by a CSRF token (service/console/)
FORM_BLUEPRINTS = frozenset({"console"})
UTF8 = frozenset({"utf-8", "utf8"})
COMMON_JSON = frozenset({"application/json", "application/json; charset=utf-8"})


class Request(FlaskRequest):
    """Flask's request, refusing a streamed body longer than the limit rather than cutting it."""

    def get_data(self, *args: Any, **kwargs: Any) -> Any:
        """Return the body; raise RequestEntityTooLarge if a chunked one goes past the limit."""
        data = super().get_data(*args, **kwargs)
        if self.content_length is not None:
            return data  # Werkzeug refused a declared length over the limit already
        limit = self.max_content_length
        # The limited stream stops at the limit; one more byte from the server's decides.
        if limit is not None and len(data) >= limit and self.environ["wsgi.input"].read(1):
            raise RequestEntityTooLarge()
        return data


def require_json() -> None:
    """Answer 415 unless a JSON route's body (if any) is declared JSON (``+json`` and UTF-8 allowed)."""
    if request.method not in BODY_METHODS:
        return
    declared = request.headers.get("Content-Type")
    if declared in COMMON_JSON or request.endpoint is None:
        return  # what nearly every call sends, answered without parsing it
    view = request.endpoint.rsplit(".", 1)[-1]
    if any(view == name and request.endpoint.startswith(bp) for name, bp in BINARY_ROUTES):
        return
    if request.blueprint in FORM_BLUEPRINTS:
        return
    has_body = (
        bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()
    )
    if declared is None and not has_body:
        return  # e.g. POST .../activate, which carries nothing
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    if declared is None or not request.is_json or charset not in UTF8:
        raise UnsupportedBody(f"send the body as application/json (UTF-8), not {declared or 'untyped'}")


def register(app: Flask) -> None:
    """Check every request's body type before any other hook or view runs."""
    app.request_class = Request
    app.before_request_funcs.setdefault(None, []).insert(0, require_json)
