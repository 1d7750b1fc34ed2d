"""GET /openapi.json: the API described from the same pydantic models that validate it.

The document is built once per process from the request and response models in
``service/schemas.py``, so it cannot drift from what the endpoints accept. A
bounded schemathesis run in the test suite fuzzes every operation from it.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import version
from typing import Any, NamedTuple

from flask import Blueprint, Response
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from service import config, schemas
from service.personalizer import schemas as ps
from service.responses import json_response

bp = Blueprint("openapi", __name__)


class ErrorDetail(BaseModel):
    field: str | None
    message: str
    type: str


class ErrorBody(BaseModel):
    """Every error answer."""

    error: str = Field(description="A stable code, e.g. validation_error, unknown_event")
    message: str
    details: list[ErrorDetail]


Op = dict[str, Any]
ERRORS = {
    "400": "Malformed JSON",
    "404": "Not found",
    "409": "Conflict",
    "413": "Body too large",
    "422": "Invalid field (named in details)",
    "503": "Log or model unavailable",
}


class Operation(NamedTuple):
    method: str
    path: str
    summary: str
    request: type[BaseModel] | None
    response: type[BaseModel] | None
    parameters: list[Op]
    admin: bool
    status: str = "200"  # the success status
    body_type: str = "application/json"


OPERATIONS: list[Operation] = [
    Operation(
        "post",
        "/v1/rank",
        "Rank candidate offers the storefront sends",
        schemas.RankRequest,
        schemas.RankResponse,
        [],
        False,
    ),
    Operation(
        "post",
        "/v1/offers",
        "Find, rank and explain cross-sell offers for a cart",
        schemas.OffersRequest,
        schemas.OffersResponse,
        [],
        False,
    ),
    Operation(
        "post",
        "/v1/events/{event_id}/feedback",
        "Report what the shopper did with a decision",
        schemas.FeedbackRequest,
        schemas.FeedbackResponse,
        [{"name": "event_id", "in": "path"}],
        False,
    ),
    Operation(
        "post",
        "/v1/events/{event_id}/reward",
        "Set a raw reward for an offer",
        schemas.RewardRequest,
        schemas.FeedbackResponse,
        [{"name": "event_id", "in": "path"}],
        False,
    ),
    Operation(
        "get",
        "/v1/catalog",
        "Browse products",
        None,
        None,
        [
            {"name": "category", "in": "query", "schema": {"type": "string"}},
            {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 500}},
            {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
        ],
        False,
    ),
    Operation(
        "get",
        "/v1/shoppers/{shopper_id}/preferences",
        "A shopper's preferences",
        None,
        schemas.PreferencesResponse,
        [{"name": "shopper_id", "in": "path"}],
        False,
    ),
    Operation(
        "post",
        "/v1/shoppers/{shopper_id}/preferences",
        "Mute categories, set frequency, opt out",
        schemas.PreferencesRequest,
        schemas.PreferencesResponse,
        [{"name": "shopper_id", "in": "path"}],
        False,
    ),
    Operation(
        "delete",
        "/v1/shoppers/{shopper_id}",
        "Erase everything held on a shopper",
        None,
        None,
        [{"name": "shopper_id", "in": "path"}],
        False,
    ),
    Operation(
        "get", "/v1/models", "Model versions, online metrics, changes, shadow (admin)", None, None, [], True
    ),
    Operation(
        "post",
        "/v1/models/{version}/activate",
        "Serve a version (admin)",
        schemas.ActivateRequest,
        None,
        [{"name": "version", "in": "path"}],
        True,
    ),
    Operation(
        "post",
        "/v1/models/{version}/promote",
        "Promote a candidate (admin)",
        schemas.ActivateRequest,
        None,
        [{"name": "version", "in": "path"}],
        True,
    ),
    Operation(
        "post",
        "/v1/models/rollback",
        "Serve an earlier version again (admin)",
        schemas.RollbackRequest,
        None,
        [],
        True,
    ),
    Operation(
        "post", "/v1/learning", "Freeze or unfreeze learning (admin)", schemas.FreezeRequest, None, [], True
    ),
    Operation(
        "get",
        "/v1/config",
        "Every setting in force, its source and the reward rules (admin)",
        None,
        config.ConfigResponse,
        [],
        True,
    ),
    Operation(
        "patch",
        "/v1/config",
        "Change live settings; null returns one to the environment's value (admin)",
        config.ConfigPatch,
        config.ConfigResponse,
        [],
        True,
    ),
    Operation("get", "/healthz", "The process answers", None, None, [], False),
    Operation("get", "/readyz", "The log is writable and a model is loaded", None, None, [], False),
]


class PersonalizerErrorInner(BaseModel):
    code: str = Field(description="BadRequest, Unauthorized, Forbidden, ResourceNotFound, Conflict, ...")
    message: str
    target: str | None = None
    details: list[dict[str, Any]] = Field(default_factory=list)
    innerError: dict[str, Any] = Field(default_factory=dict)  # noqa: N815 (Personalizer's name)


class PersonalizerErrorBody(BaseModel):
    """Every error answer under /personalizer/ (Personalizer's shape)."""

    error: PersonalizerErrorInner


_EVENT = [{"name": "eventId", "in": "path"}]
_EVALUATION = [{"name": "evaluationId", "in": "path"}]
_IMPORTANCE = [{"name": "featureImportanceId", "in": "path"}]
_PAGE = [
    {"name": "top", "in": "query", "schema": {"type": "integer", "minimum": 0}},
    {"name": "skip", "in": "query", "schema": {"type": "integer", "minimum": 0}},
]
# Personalizer routes, relative to /personalizer and /personalizer/{apiVersion}.
PERSONALIZER_OPERATIONS: list[Operation] = [
    Operation(
        "post", "/rank", "Rank actions for one slot", ps.PersonalizerRankRequest, None, [], False, "201"
    ),
    Operation(
        "post",
        "/events/{eventId}/reward",
        "Reward an event",
        ps.PersonalizerRewardRequest,
        None,
        _EVENT,
        False,
        "204",
    ),
    Operation(
        "post", "/events/{eventId}/activate", "Activate a deferred event", None, None, _EVENT, False, "204"
    ),
    Operation(
        "post", "/multislot/rank", "Rank for several slots", ps.MultiSlotRankRequest, None, [], False, "201"
    ),
    Operation(
        "post",
        "/multislot/events/{eventId}/reward",
        "Reward slots of an event",
        ps.MultiSlotRewardRequest,
        None,
        _EVENT,
        False,
        "204",
    ),
    Operation(
        "post",
        "/multislot/events/{eventId}/activate",
        "Activate a multi-slot event",
        None,
        None,
        _EVENT,
        False,
        "204",
    ),
    Operation(
        "get", "/configurations/service", "Live configuration", None, ps.ServiceConfiguration, [], True
    ),
    Operation(
        "put",
        "/configurations/service",
        "Change the live configuration",
        ps.ServiceConfiguration,
        None,
        [],
        True,
    ),
    Operation(
        "get", "/configurations/policy", "Learning settings (VW arguments)", None, ps.PolicyBody, [], True
    ),
    Operation(
        "put",
        "/configurations/policy",
        "Serve a new model with these settings",
        ps.PolicyBody,
        None,
        [],
        True,
    ),
    Operation(
        "delete", "/configurations/policy", "Back to the default settings", None, ps.PolicyBody, [], True
    ),
    Operation(
        "post",
        "/configurations/applyFromEvaluation",
        "Serve the best policy an evaluation found",
        ps.ApplyFromEvaluation,
        None,
        [],
        True,
        "204",
    ),
    Operation("get", "/model", "Export the served model", None, None, [], True),
    Operation(
        "put",
        "/model",
        "Import and serve a model",
        None,
        None,
        [],
        True,
        "204",
        body_type="application/octet-stream",
    ),
    Operation("delete", "/model", "Serve a new, untrained model", None, None, [], True, "204"),
    Operation("get", "/model/properties", "Model times", None, None, [], True),
    Operation("delete", "/logs", "Delete every logged decision", None, None, [], True, "204"),
    Operation("get", "/logs/properties", "The time range the log covers", None, None, [], True),
    Operation(
        "post",
        "/evaluations",
        "Submit an offline evaluation (v1.0)",
        ps.EvaluationRequest,
        None,
        [],
        True,
        "201",
    ),
    Operation("get", "/evaluations", "Every evaluation", None, None, _PAGE, True),
    Operation("get", "/evaluations/{evaluationId}", "One evaluation", None, None, _EVALUATION, True),
    Operation(
        "put",
        "/evaluations/{evaluationId}",
        "Submit an offline evaluation",
        ps.EvaluationRequest,
        None,
        _EVALUATION,
        True,
    ),
    Operation(
        "delete", "/evaluations/{evaluationId}", "Delete an evaluation", None, None, _EVALUATION, True, "204"
    ),
    Operation("get", "/featureImportances", "Every feature importance report", None, None, _PAGE, True),
    Operation(
        "get",
        "/featureImportances/{featureImportanceId}",
        "One feature importance report",
        None,
        None,
        _IMPORTANCE,
        True,
    ),
    Operation(
        "put",
        "/featureImportances/{featureImportanceId}",
        "Score features against reward over a time range",
        ps.FeatureImportanceRequest,
        None,
        _IMPORTANCE,
        True,
    ),
    Operation(
        "delete",
        "/featureImportances/{featureImportanceId}",
        "Delete a feature importance report",
        None,
        None,
        _IMPORTANCE,
        True,
        "204",
    ),
]
_API_VERSION = {
    "name": "apiVersion",
    "in": "path",
    "schema": {"type": "string", "pattern": r"^v\d+\.\d+(-preview(\.\d+)?)?$"},
}


def _personalizer_operations() -> list[Operation]:
    """Each Personalizer route under both prefixes the SDKs call."""
    found = []
    for op in PERSONALIZER_OPERATIONS:
        found.append(op._replace(path=f"/personalizer{op.path}"))
        found.append(
            op._replace(
                path=f"/personalizer/{{apiVersion}}{op.path}", parameters=[_API_VERSION, *op.parameters]
            )
        )
    return found


@cache
def document() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document."""
    operations = [*OPERATIONS, *_personalizer_operations()]
    models = {m for op in operations for m in (op.request, op.response) if m is not None}
    models |= {ErrorBody, PersonalizerErrorBody}
    refs, definitions = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: (m.__module__, m.__name__))],
        ref_template="#/components/schemas/{model}",
    )

    def content(model: type[BaseModel] | None, description: str, media: str = "application/json") -> Op:
        schema = refs[(model, "validation")] if model is not None else {"type": "object"}
        if media != "application/json":
            schema = {"type": "string", "format": "binary"}
        return {"description": description, "content": {media: {"schema": schema}}}

    paths: dict[str, dict[str, Op]] = {}
    for op in operations:
        personalizer = op.path.startswith("/personalizer")
        error = PersonalizerErrorBody if personalizer else ErrorBody
        errors = {code: content(error, text) for code, text in ERRORS.items()}
        if personalizer:  # Personalizer answers invalid fields with 400, not 422
            errors.pop("422")
        success = {"description": "Success"} if op.status == "204" else content(op.response, "Success")
        operation: Op = {
            "summary": op.summary,
            "operationId": _operation_id(op),
            "responses": {op.status: success, **errors},
        }
        if op.parameters:
            operation["parameters"] = [
                {
                    "required": p["in"] == "path",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 128},
                    **p,
                }
                for p in op.parameters
            ]
        if op.request is not None or op.body_type != "application/json":
            operation["requestBody"] = {"required": True, **content(op.request, "", op.body_type)}
            operation["requestBody"].pop("description")
        if personalizer:
            operation["security"] = [{"subscriptionKey": []}] if op.admin else [{}, {"subscriptionKey": []}]
        else:
            operation["security"] = [{"admin": []}] if op.admin else [{}, {"storefront": []}]
        paths.setdefault(op.path, {})[op.method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "xsell", "version": version("xsell"), "description": "Cross-sell decision service"},
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {
                "admin": {"type": "http", "scheme": "bearer", "description": "XSELL_ADMIN_API_KEYS"},
                "storefront": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "X-Api-Key",
                    "description": "XSELL_API_KEYS",
                },
                "subscriptionKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Ocp-Apim-Subscription-Key",
                    "description": "Personalizer routes: XSELL_API_KEYS (rank, reward, activate), "
                    "XSELL_ADMIN_API_KEYS (the rest)",
                },
            },
        },
    }


def _operation_id(op: Operation) -> str:
    path = op.path.strip("/").replace("/", "_").replace("{", "").replace("}", "")
    return f"{op.method}_{path}"


@bp.get("/openapi.json")
def openapi() -> Response:
    """Return the OpenAPI document."""
    return json_response(document())
