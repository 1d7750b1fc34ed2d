"""Personalizer's log, evaluation and feature importance routes over xsell's log and evaluator."""

from __future__ import annotations

import time
import uuid

from flask import Response, request

from logs.evaluation_store import EvaluationRecord, EvaluationStore
from service.errors import InvalidField, NotFound
from service.openapi import PageQuery, documented
from service.personalizer import evaluations, flavour, importance
from service.personalizer.admin import admin_blueprint, int_arg
from service.personalizer.formats import iso, seconds
from service.personalizer.schemas import EvaluationRequest, FeatureImportanceRequest
from service.resources import Resources, resources
from service.responses import no_content, personalizer_json

bp = admin_blueprint("reports")
# An evaluation thread that has not finished after this long belonged to a worker that died.
STALE_EVALUATION_SECONDS = 6 * 3600.0


# -- logs ------------------------------------------------------------------------------


@bp.delete("/logs")
@documented(status=204, key="admin")
def delete_logs() -> Response:
    """Delete every logged decision with its feedback. 204."""
    resources().store.purge(older_than=float("inf"))
    return no_content()


@bp.get("/logs/properties")
@documented(key="admin")
def log_properties() -> Response:
    """The time range the log covers."""
    found = resources().store.decision_time_range()
    if found is None:
        return personalizer_json({"dateRange": {"from": None, "to": None}})
    return personalizer_json({"dateRange": {"from": iso(found[0]), "to": iso(found[1])}})


# -- evaluations -----------------------------------------------------------------------


@bp.post("/evaluations")
@documented(json=EvaluationRequest, status=201, key="admin", errors=(409,))
def create_evaluation_v1() -> Response:
    """v1.0: submit an evaluation; 201 with it, Location naming where to read it."""
    body = EvaluationRequest.model_validate_json(request.get_data())
    record = _start_evaluation(uuid.uuid4().hex, body)
    response = personalizer_json(evaluations.to_body(record), 201)
    response.headers["Location"] = f"{request.base_url.rstrip('/')}/{record.id}"
    return response


@bp.put("/evaluations/<path:evaluation_id>")
@documented(json=EvaluationRequest, key="admin", errors=(409,))
def create_evaluation(evaluation_id: str) -> Response:
    """Preview API: submit an evaluation under the caller's id; 200 with it."""
    if len(evaluation_id) > 256:
        raise InvalidField("evaluationId", "at most 256 characters")
    body = EvaluationRequest.model_validate_json(request.get_data())
    return personalizer_json(evaluations.to_body(_start_evaluation(evaluation_id, body)))


@bp.get("/evaluations")
@documented(query=PageQuery, key="admin")
def list_evaluations() -> Response:
    """Every evaluation, newest first (preview: ``{"value": [...]}`` paged by top and skip)."""
    res = resources()
    store = EvaluationStore(res.store)
    store.fail_stale(STALE_EVALUATION_SECONDS)
    if flavour() == "v1":
        return personalizer_json([evaluations.to_body(r) for r in store.list()])
    skip = int_arg("skip", 0)
    top = int_arg("top", None)
    records = store.list(skip=skip, top=top)
    return personalizer_json({"value": [evaluations.to_body(r) for r in records], "nextLink": None})


@bp.get("/evaluations/<path:evaluation_id>")
@documented(key="admin", errors=(404,))
def get_evaluation(evaluation_id: str) -> Response:
    """One evaluation with its result once it has finished."""
    res = resources()
    EvaluationStore(res.store).fail_stale(STALE_EVALUATION_SECONDS)
    return personalizer_json(evaluations.to_body(find_evaluation(res, evaluation_id)))


@bp.delete("/evaluations/<path:evaluation_id>")
@documented(status=204, key="admin", errors=(404,))
def delete_evaluation(evaluation_id: str) -> Response:
    """Delete an evaluation and its result. 204."""
    if not EvaluationStore(resources().store).delete(evaluation_id):
        raise NotFound("evaluationId", f"no evaluation {evaluation_id!r}")
    return no_content()


def _start_evaluation(evaluation_id: str, body: EvaluationRequest) -> EvaluationRecord:
    res = resources()
    request_body = {"policies": [{"name": p.name, "arguments": p.arguments} for p in body.policies]}
    record = EvaluationRecord(
        id=evaluation_id,
        name=body.name,
        status="Running",
        start_time=seconds(body.start_time),
        end_time=seconds(body.end_time),
        created_at=time.time(),
        request=request_body,
        result=None,
        error=None,
    )
    try:
        evaluations.start(res.store, res.live_rules(), record)
    except ValueError as error:
        raise InvalidField("policies", str(error)) from error
    return record


def find_evaluation(res: Resources, evaluation_id: str) -> EvaluationRecord:
    """Return the evaluation; 404 naming it when there is none."""
    record = EvaluationStore(res.store).find(evaluation_id)
    if record is None:
        raise NotFound("evaluationId", f"no evaluation {evaluation_id!r}")
    return record


# -- feature importances (preview API) ----------------------------------------------------


@bp.put("/featureImportances/<path:importance_id>")
@documented(json=FeatureImportanceRequest, key="admin", errors=(409,))
def create_feature_importance(importance_id: str) -> Response:
    """Measure how each feature relates to reward over a time range; 200 with the result."""
    body = FeatureImportanceRequest.model_validate_json(request.get_data())
    res = resources()
    return personalizer_json(
        importance.create(res, importance_id, body.name, seconds(body.start_time), seconds(body.end_time))
    )


@bp.get("/featureImportances/<path:importance_id>")
@documented(key="admin", errors=(404,))
def get_feature_importance(importance_id: str) -> Response:
    """One feature importance report."""
    return personalizer_json(importance.find(resources(), importance_id))


@bp.get("/featureImportances")
@documented(query=PageQuery, key="admin")
def list_feature_importances() -> Response:
    """Every feature importance report, newest first."""
    found = importance.list_all(resources(), skip=int_arg("skip", 0), top=int_arg("top", None))
    return personalizer_json({"value": found, "nextLink": None})


@bp.delete("/featureImportances/<path:importance_id>")
@documented(status=204, key="admin", errors=(404,))
def delete_feature_importance(importance_id: str) -> Response:
    """Delete a feature importance report. 204."""
    importance.delete(resources(), importance_id)
    return no_content()
