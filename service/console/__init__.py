"""The operator console: server-rendered pages under /console/ for admins signed in with a key.

pages.py holds the pages (GET), actions.py what changes something (POST, each with a
reason, a confirmation page and a CSRF token), data.py every figure the pages show,
session.py sign-in and CSRF; the Experiments page has its figures in experiments.py and
its actions (stop, ship) in experiment_actions.py. Templates and the vendored charting
library (uPlot, static/uplot/) ship inside the package: no internet access and no
front-end build.
Model changes call the same registry functions as the CLI and the admin API, and
settings change through the same code as ``PATCH /v1/config``, experiments end through
the same function as ``/v1/experiments``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from itsdangerous import BadSignature

from service.console.session import ConsoleSession, current_session, signer
from service.resources import resources

__all__ = ["bp", "notice_redirect", "page", "safe_next", "session"]

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

OPEN_ENDPOINTS = frozenset({"console.signin", "console.signin_post", "console.static"})
# Scripts and styles only from this service (chart data travels as JSON, never as code),
# no framing, forms only to here.
POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
)


@bp.before_request
def _signed_in() -> ResponseReturnValue | None:
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    session = current_session(resources())
    if session is None:
        if request.method == "GET":
            return redirect(url_for("console.signin", next=request.full_path.rstrip("?")))
        return page("error.html", status=401, message="sign in first: this session is missing or ended")
    g.console_session = session
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = POLICY
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "console.static":
        response.headers["Cache-Control"] = "no-store"
    return response


def session() -> ConsoleSession:
    """Return the signed-in operator of this request."""
    found: ConsoleSession = g.console_session
    return found


def page(template: str, *, status: int = 200, **values: Any) -> Response:
    """Render a console template with the session, the notice (if any) and the current time."""
    res = resources()
    found = getattr(g, "console_session", None)
    notice = None
    if request.args.get("notice"):
        try:
            notice = signer(res, "notice").loads(request.args["notice"], max_age=300)
        except BadSignature:  # a notice that is not ours, or old, is simply not shown
            notice = None
    html = render_template(
        template, session=found, notice=notice, now=res.store.clock(), settings=res.settings, **values
    )
    return Response(html, status=status, mimetype="text/html")


def safe_next(target: str | None) -> str:
    """Return `target` if it is a console path, else the console's first page (no open redirect)."""
    if (
        target
        and target.startswith("/console/")
        and "\\" not in target
        and target.isprintable()  # a CR or LF in a Location header was a 500
        and not {".", ".."} & set(unquote(target.partition("?")[0]).split("/"))  # /console/../ leaves it
    ):
        return target
    return url_for("console.health")


def notice_redirect(endpoint: str, text: str, **values: Any) -> Response:
    """Redirect (303) to a page that shows `text`, signed so nobody else can put words there."""
    token = signer(resources(), "notice").dumps(text)
    return redirect(url_for(endpoint, notice=token, **values), code=303)


from service.console import actions, experiment_actions, filters, pages  # noqa: E402  (routes attach to bp)

filters.register(bp)
__all__ += ["actions", "experiment_actions", "pages"]
