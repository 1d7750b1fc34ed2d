"""GET /healthz (the process answers) and /readyz (it can log and has a model)."""

from __future__ import annotations

import re
import time
from pathlib import PurePosixPath

from flask import Blueprint, Response

from logs.db import LogUnavailable
from service.errors import ModelUnavailable
from service.openapi import documented
from service.resources import resources
from service.responses import json_response

bp = Blueprint("health", __name__)
# An automatic rollback or a fallback from a broken model stays visible in /readyz for an hour.
GUARDRAIL_WARNING_SECONDS = 3600.0
# An absolute path inside a message: /readyz is open to probes, so it shows the last part only.
_PATH = re.compile(r"(?<![\w.~-])/[^\s'\":,()]+")


@bp.get("/healthz")
@documented()
def healthz() -> Response:
    """Answer 200 while the process is alive."""
    return json_response({"status": "ok"})


@bp.get("/readyz")
@documented(errors=(503,))
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
            if change.action == "fallback" and change.at >= cutoff:
                warnings.append(
                    f"model: fell back to {change.version} (was {change.previous}): {change.reason}"
                )
    except LogUnavailable:
        pass  # already a problem above
    body = {
        "status": "ready" if not problems else "not_ready",
        "model_version": version,
        "problems": [without_paths(p) for p in problems],
        "warnings": [without_paths(w) for w in warnings],
    }
    return json_response(body, status=200 if not problems else 503)


def without_paths(message: str) -> str:
    """Return `message` with each absolute path cut to its last part (``/srv/x/v3.vw`` -> ``v3.vw``)."""
    return _PATH.sub(lambda found: PurePosixPath(found.group()).name or "/", message)
