"""Admin endpoints for models: list, activate, roll back, promote, freeze learning.

Every route needs an admin API key (service/auth.py). A change takes effect in
every worker within ``XSELL_MODEL_POLL_SECONDS``, without a restart.
"""

from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, Response, request

from service.auth import guard_admin
from service.openapi import ModelsQuery, documented
from service.overview import models_overview
from service.resources import resources
from service.responses import json_response
from service.schemas import ActivateRequest, FreezeRequest, RollbackRequest

bp = Blueprint("models", __name__)
guard_admin(bp)


@bp.get("/v1/models")
@documented(query=ModelsQuery, key="admin")
def list_models() -> Response:
    """List model versions with their recent online metrics, the change history and the shadow."""
    res = resources()
    limit = max(1, min(request.args.get("limit", default=20, type=int) or 20, 1000))
    return json_response(models_overview(res.store, res.registry, res.settings, limit=limit))


@bp.post("/v1/models/<version>/activate")
@documented(json=ActivateRequest, key="admin", errors=(404, 409))
def activate(version: str) -> Response:
    """Serve `version` from now on (its file is checked before anything changes)."""
    body = ActivateRequest.model_validate_json(request.get_data() or b"{}")
    change = resources().registry.activate(version, actor="http", reason=body.reason)
    return json_response(asdict(change))


@bp.post("/v1/models/<version>/promote")
@documented(json=ActivateRequest, key="admin", errors=(404, 409))
def promote(version: str) -> Response:
    """Make a candidate (a shadow or an imported model) the active version."""
    body = ActivateRequest.model_validate_json(request.get_data() or b"{}")
    change = resources().registry.promote(version, actor="http", reason=body.reason)
    return json_response(asdict(change))


@bp.post("/v1/models/rollback")
@documented(json=RollbackRequest, key="admin", errors=(404, 409))
def rollback() -> Response:
    """Serve an earlier version again; the learner continues from it. Says what was chosen and why.

    Without ``to`` the target is a version that learned events; if none is kept, 409
    (an untrained model is served only when named).
    """
    body = RollbackRequest.model_validate_json(request.get_data() or b"{}")
    res = resources()
    done = res.registry.explained_rollback(
        to=body.to,
        actor="http",
        reason=body.reason,
        older_than_seconds=res.settings.rollback_default_seconds,
        relearn=body.relearn,
        freeze=body.freeze,
    )
    target = {"version": done.target.version, "events_learned": done.target.events_learned, "why": done.why}
    return json_response({**asdict(done.change), "target": target})


@bp.post("/v1/learning")
@documented(json=FreezeRequest, key="admin")
def learning() -> Response:
    """Freeze or unfreeze learning (serving goes on with the active model)."""
    body = FreezeRequest.model_validate_json(request.get_data() or b"{}")
    res = resources()
    res.registry.freeze_learning(body.frozen, actor="http", reason=body.reason)
    return json_response({"learning_frozen": res.registry.learning_frozen()})
