"""The one place exceptions become HTTP answers; every error body is JSON.

Body: ``{"error": code, "message": text, "details": [{"field", "message", "type"}]}``.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, has_request_context, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from logs.db import LogUnavailable
from logs.evaluation_store import EvaluationConflict
from logs.experiment_store import ExperimentExists, UnknownExperiment
from logs.records import EventConflict, UnknownAction, UnknownEvent
from policies.base import ModelFormatError
from policies.deciding.features import TooCostly
from policies.learning.registry import RegistryError, UnknownVersion
from service.exceptions import AuthError, InvalidField, ModelUnavailable, NotFound, UnsupportedBody

# The service's exceptions live in the leaf module service.exceptions; named here too for their raisers.
__all__ = [
    "AuthError",
    "InvalidField",
    "ModelUnavailable",
    "NotFound",
    "UnsupportedBody",
    "error_response",
    "register",
]

log = logging.getLogger(__name__)


# domain exception -> (status, code, field it concerns)
_DOMAIN: dict[type[Exception], tuple[int, str, str | None]] = {
    UnknownEvent: (404, "unknown_event", "event_id"),
    EventConflict: (409, "event_conflict", "event_id"),
    UnknownAction: (422, "unknown_action", "action_id"),
    UnknownVersion: (404, "unknown_version", "version"),
    RegistryError: (409, "model_change_refused", "version"),
    LogUnavailable: (503, "log_unavailable", None),
    ModelUnavailable: (503, "model_unavailable", None),
    ModelFormatError: (503, "model_unavailable", None),
    InvalidField: (422, "invalid_field", None),
    NotFound: (404, "not_found", None),
    UnsupportedBody: (415, "unsupported_media_type", "Content-Type"),
    EvaluationConflict: (409, "evaluation_exists", "evaluation_id"),
    UnknownExperiment: (404, "unknown_experiment", "experiment_id"),
    ExperimentExists: (409, "experiment_conflict", "experiment_id"),
}


PERSONALIZER_PREFIX = "/personalizer/"
# HTTP status -> Personalizer's error code
_PERSONALIZER_CODES = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "ResourceNotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}


def error_response(
    status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> ResponseReturnValue:
    """Return the JSON error body with its status (Personalizer's shape on its routes)."""
    if has_request_context() and request.path.startswith(PERSONALIZER_PREFIX):
        return _personalizer_error(status, code, message, details or [])
    return jsonify({"error": code, "message": message, "details": details or []}), status


def _personalizer_error(
    status: int, code: str, message: str, details: list[dict[str, Any]]
) -> ResponseReturnValue:
    """``{"error": {"code", "message", "target", "details", "innerError"}}`` as Personalizer sent it.

    Personalizer answered every invalid request with 400, so a validation error is
    400 here too; xsell's own code travels in ``innerError.code``.
    """
    status = 400 if status == 422 else status
    body = {
        "code": _PERSONALIZER_CODES.get(status, str(status)),
        "message": message,
        "details": [
            {"code": d.get("type", code), "message": d.get("message", ""), "target": d.get("field")}
            for d in details
        ],
        "innerError": {"code": code},
    }
    if details and details[0].get("field"):
        body["target"] = details[0]["field"]
    response = jsonify({"error": body})
    response.status_code = status
    response.content_type = "application/json; charset=utf-8"
    return response


def _validation(error: ValidationError) -> ResponseReturnValue:
    problems = error.errors(include_url=False, include_input=False, include_context=False)
    if any(p["type"] == "json_invalid" for p in problems):
        return error_response(
            400,
            "invalid_json",
            "the request body is not valid JSON",
            [{"field": "body", "message": p["msg"], "type": p["type"]} for p in problems],
        )
    details = [
        {"field": ".".join(str(part) for part in p["loc"]) or "body", "message": p["msg"], "type": p["type"]}
        for p in problems
    ]
    fields = ", ".join(d["field"] for d in details)
    return error_response(422, "validation_error", f"invalid request: {fields}", details)


def _domain(error: Exception) -> ResponseReturnValue:
    status, code, field = next(v for k, v in _DOMAIN.items() if isinstance(error, k))
    field = getattr(error, "field", None) or field  # some errors know exactly which field
    if status >= 500:
        log.error("%s: %s", code, error)
    details = [{"field": field, "message": str(error), "type": code}] if field else []
    return error_response(status, code, str(error), details)


def _http(error: HTTPException) -> ResponseReturnValue:
    code = (error.name or "error").lower().replace(" ", "_")
    limit = request.max_content_length if has_request_context() else None
    if isinstance(error, RequestEntityTooLarge) and limit is not None:  # name the limit, as _too_costly does
        message = f"the request body is larger than XSELL_MAX_BODY_BYTES allows ({limit:,} bytes)"
        detail = {"field": "body", "message": message, "type": "limit_exceeded"}
        detail |= {"limit": "XSELL_MAX_BODY_BYTES", "maximum": limit}
        return error_response(413, code, message, [detail])
    response = error_response(error.code or 500, code, error.description or error.name)
    return response


def _too_costly(error: TooCostly) -> ResponseReturnValue:
    """413 naming the limit (by its setting) and the field that went past it."""
    setting = f"XSELL_{error.limit.upper()}"
    message = f"{error.field}: {error.value:,} is more than {setting} allows ({error.maximum:,})"
    details = [
        {
            "field": error.field,
            "message": message,
            "type": "limit_exceeded",
            "limit": setting,
            "maximum": error.maximum,
        }
    ]
    return error_response(413, "limit_exceeded", message, details)


def _unexpected(error: Exception) -> ResponseReturnValue:
    log.exception("unhandled error")
    return error_response(500, "internal_error", "the service failed to handle this request")


def _auth(error: Exception) -> ResponseReturnValue:
    status, code = getattr(error, "status", 401), getattr(error, "code", "unauthorized")
    return error_response(status, code, str(error))


def register(app: Flask) -> None:
    """Install the handlers on `app`."""
    app.register_error_handler(AuthError, _auth)
    app.register_error_handler(ValidationError, _validation)
    app.register_error_handler(TooCostly, _too_costly)
    for exception_type in _DOMAIN:
        app.register_error_handler(exception_type, _domain)
    app.register_error_handler(HTTPException, _http)
    app.register_error_handler(Exception, _unexpected)
