"""GET /openapi.json: the API described from the same pydantic models that validate it.

The document is built once per process from the request and response models in
``service/schemas.py``, so it cannot drift from what the endpoints accept. A
bounded schemathesis run in the test suite fuzzes every operation from it.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import version
from typing import Any

from flask import Blueprint, Response
from pydantic import BaseModel, Field
from pydantic.json_schema import models_json_schema

from service import schemas
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

# (method, path, summary, request model, response model, path/query parameters, admin?)
OPERATIONS: list[tuple[str, str, str, type[BaseModel] | None, type[BaseModel] | None, list[Op], bool]] = [
    (
        "post",
        "/v1/rank",
        "Rank candidate offers the storefront sends",
        schemas.RankRequest,
        schemas.RankResponse,
        [],
        False,
    ),
    (
        "post",
        "/v1/offers",
        "Find, rank and explain cross-sell offers for a cart",
        schemas.OffersRequest,
        schemas.OffersResponse,
        [],
        False,
    ),
    (
        "post",
        "/v1/events/{event_id}/feedback",
        "Report what the shopper did with a decision",
        schemas.FeedbackRequest,
        schemas.FeedbackResponse,
        [{"name": "event_id", "in": "path"}],
        False,
    ),
    (
        "post",
        "/v1/events/{event_id}/reward",
        "Set a raw reward for an offer",
        schemas.RewardRequest,
        schemas.FeedbackResponse,
        [{"name": "event_id", "in": "path"}],
        False,
    ),
    (
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
    (
        "get",
        "/v1/shoppers/{shopper_id}/preferences",
        "A shopper's preferences",
        None,
        schemas.PreferencesResponse,
        [{"name": "shopper_id", "in": "path"}],
        False,
    ),
    (
        "post",
        "/v1/shoppers/{shopper_id}/preferences",
        "Mute categories, set frequency, opt out",
        schemas.PreferencesRequest,
        schemas.PreferencesResponse,
        [{"name": "shopper_id", "in": "path"}],
        False,
    ),
    (
        "delete",
        "/v1/shoppers/{shopper_id}",
        "Erase everything held on a shopper",
        None,
        None,
        [{"name": "shopper_id", "in": "path"}],
        False,
    ),
    ("get", "/v1/models", "Model versions, online metrics, changes, shadow (admin)", None, None, [], True),
    (
        "post",
        "/v1/models/{version}/activate",
        "Serve a version (admin)",
        schemas.ActivateRequest,
        None,
        [{"name": "version", "in": "path"}],
        True,
    ),
    (
        "post",
        "/v1/models/{version}/promote",
        "Promote a candidate (admin)",
        schemas.ActivateRequest,
        None,
        [{"name": "version", "in": "path"}],
        True,
    ),
    (
        "post",
        "/v1/models/rollback",
        "Serve an earlier version again (admin)",
        schemas.RollbackRequest,
        None,
        [],
        True,
    ),
    ("post", "/v1/learning", "Freeze or unfreeze learning (admin)", schemas.FreezeRequest, None, [], True),
    ("get", "/healthz", "The process answers", None, None, [], False),
    ("get", "/readyz", "The log is writable and a model is loaded", None, None, [], False),
]


@cache
def document() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document."""
    models = {m for op in OPERATIONS for m in (op[3], op[4]) if m is not None} | {ErrorBody}
    _, definitions = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Op]] = {}
    for method, path, summary, request, response, parameters, admin in OPERATIONS:
        operation: Op = {
            "summary": summary,
            "operationId": f"{method}_{path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}",
            "responses": {
                "200": _content(response, "Success"),
                **{code: _content(ErrorBody, text) for code, text in ERRORS.items()},
            },
        }
        if parameters:
            operation["parameters"] = [
                {
                    "required": p["in"] == "path",
                    "schema": {"type": "string", "minLength": 1, "maxLength": 128},
                    **p,
                }
                for p in parameters
            ]
        if request is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{request.__name__}"}}
                },
            }
        operation["security"] = [{"admin": []}] if admin else [{}, {"storefront": []}]
        paths.setdefault(path, {})[method] = operation
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
            },
        },
    }


def _content(model: type[BaseModel] | None, description: str) -> Op:
    if model is None:
        return {"description": description, "content": {"application/json": {"schema": {"type": "object"}}}}
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
    }


@bp.get("/openapi.json")
def openapi() -> Response:
    """Return the OpenAPI document."""
    return json_response(document())
