"""GET /healthz (the process answers) and /readyz (it can log and has a model)."""

from __future__ import annotations

import time

from flask import Blueprint, Response

from logs.db import LogUnavailable
from service.errors import ModelUnavailable
from service.resources import resources
from service.responses import json_response

bp = Blueprint("health", __name__)
# An automatic rollback stays visible in /readyz for an hour.
GUARDRAIL_WARNING_SECONDS = 3600.0


@bp.get("/healthz")
def healthz() -> Response:
    """Answer 200 while the process is alive."""
    return json_response({"status": "ok"})


@bp.get("/readyz")
def readyz() -> Response:
    """Answer 200 only when the log is writable and a model is loaded."""
    res = resources()
    problems: list[str] = []
    try:
        res.store.check_writable()
    except LogUnavailable as error:
        problems.append(f"log: {error}")
    version = None
    try:
        version = res.served.current()[0].version
    except (ModelUnavailable, LogUnavailable) as error:
        problems.append(f"model: {error}")
    # A failed reload is a warning, not unreadiness: the previous model still serves.
    warnings = [f"model: {res.served.load_error}"] if res.served.load_error and version else []
    try:
        if res.registry.learning_frozen():
            warnings.append("learning: frozen by an operator; the active model does not change")
        cutoff = time.time() - GUARDRAIL_WARNING_SECONDS
        for change in res.registry.index.changes(limit=20):
            if change.action == "guardrail" and change.at >= cutoff:
                warnings.append(
                    f"guardrail: rolled back to {change.version} (was {change.previous}): {change.reason}"
                )
    except LogUnavailable:
        pass  # already a problem above
    body = {
        "status": "ready" if not problems else "not_ready",
        "model_version": version,
        "problems": problems,
        "warnings": warnings,
    }
    return json_response(body, status=200 if not problems else 503)
