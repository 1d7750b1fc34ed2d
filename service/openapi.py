"""GET /openapi.json: the API described by spectree from the routes and their pydantic models.

Each view carries one ``@documented(...)`` line (its body, answer, errors, key); spectree
walks the app's url_map, so every prefix a blueprint is registered under (``/personalizer``
and ``/personalizer/<version>``) and every path parameter appears without a table to keep.
Only the document comes from spectree: its per-request wrapper is not installed (it
re-made every answer, +14 µs on /v1/rank; docs/performance.md), so validation stays in the
views' own pydantic models and service/errors.py.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from importlib.metadata import version
from typing import Any, TypeVar

from flask import Blueprint, Response
from pydantic import BaseModel, Field
from spectree import Response as Answers
from spectree import SecurityScheme, SecuritySchemeData, SpecTree

from service.personalizer import ApiVersionConverter
from service.responses import json_response

__all__ = ["CatalogQuery", "ModelsQuery", "PageQuery", "bp", "documented", "document"]

View = TypeVar("View", bound=Callable[..., Any])
bp = Blueprint("api_document", __name__)  # spectree skips endpoints named "openapi*"


class ErrorDetail(BaseModel):
    field: str | None
    message: str
    type: str
    limit: str | None = Field(None, description="limit_exceeded: the XSELL_ setting that was passed")
    maximum: int | None = Field(None, description="limit_exceeded: that setting's value")


class ErrorBody(BaseModel):
    """Every error answer outside /personalizer."""

    error: str = Field(description="A stable code, e.g. validation_error, unknown_event, limit_exceeded")
    message: str
    details: list[ErrorDetail]


class PersonalizerErrorInner(BaseModel):
    code: str = Field(description="BadRequest, Unauthorized, Forbidden, ResourceNotFound, Conflict, ...")
    message: str
    target: str | None = None
    details: list[dict[str, Any]] = Field(default_factory=list)
    innerError: dict[str, Any] = Field(default_factory=dict)  # noqa: N815 (Personalizer's name)


class PersonalizerErrorBody(BaseModel):
    """Every error answer under /personalizer/ (Personalizer's shape)."""

    error: PersonalizerErrorInner


# Query parameters of the routes that read them (the views parse them; these only describe).
class CatalogQuery(BaseModel):
    category: str | None = None
    limit: int = Field(50, ge=1, le=500)
    offset: int = Field(0, ge=0)


class ModelsQuery(BaseModel):
    limit: int = Field(20, ge=1, le=1000)


class PageQuery(BaseModel):
    top: int | None = Field(None, ge=0, le=999_999_999)
    skip: int = Field(0, ge=0, le=999_999_999)


ERRORS = {
    400: "Malformed JSON (invalid_json)",
    401: "No API key (missing_api_key)",
    403: "Wrong key, or admin routes disabled (invalid_api_key, admin_disabled)",
    404: "Not found (unknown_event, unknown_version, not_found)",
    409: "Conflict (event_conflict, model_change_refused, evaluation_exists)",
    413: "Body too large, or past a cost limit (limit_exceeded names the XSELL_ setting in details)",
    415: "Body not sent as application/json (unsupported_media_type)",
    422: "Invalid field, named in details (validation_error, invalid_field, unknown_action, ...)",
    500: "Unexpected failure (internal_error)",
    503: "Log or model unavailable (log_unavailable, model_unavailable)",
}
PERSONALIZER_400 = "Malformed or invalid request (BadRequest; xsell's code in innerError.code)"
# xsell's own routes: bearer admin key / X-Api-Key storefront key (optional until keys are set).
SECURITY = {"admin": [{"admin": []}], "storefront": [{}, {"storefront": []}], None: None}
PERSONALIZER_SECURITY = {
    "admin": [{"subscriptionKey": []}],
    "storefront": [{}, {"subscriptionKey": []}],
    None: None,
}


def _scheme(label: str, description: str, **data: str) -> SecurityScheme:
    return SecurityScheme(name=label, data=SecuritySchemeData(description=description, **data))


class _Descriptions(SpecTree):
    """spectree that reads a view's description without routing through its wrapper."""

    def __init__(self, **options: Any):
        super().__init__("flask", **options)
        # view -> the spectree wrapper holding its description (the wrapper is never routed)
        self.described: dict[Callable[..., Any], Callable[..., Any]] = {}

    def get_function_metadata(self, func: Callable[..., Any]) -> Any:
        return super().get_function_metadata(self.described.get(func, func))


api = _Descriptions(
    mode="strict",  # only routes with @documented; console pages and /bench stay out
    annotations=False,
    title="xsell",
    description="Cross-sell decision service",
    version=version("xsell"),
    validation_error_status=500,  # every operation documents its own 500 already
    validation_error_model=ErrorBody,
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda _parent, child: child,
    security_schemes=[
        _scheme("admin", "XSELL_ADMIN_API_KEYS", type="http", scheme="bearer"),
        _scheme("storefront", "XSELL_API_KEYS", type="apiKey", name="X-Api-Key", field_in="header"),
        _scheme(
            "subscriptionKey",
            "Personalizer routes: XSELL_API_KEYS (rank, reward, activate), XSELL_ADMIN_API_KEYS (the rest)",
            type="apiKey",
            name="Ocp-Apim-Subscription-Key",
            field_in="header",
        ),
    ],
)


def documented(
    *,
    json: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    ok: type[BaseModel] | None = None,
    status: int = 200,
    key: str | None = None,
    errors: tuple[int, ...] = (),
) -> Callable[[View], View]:
    """Describe a view for the document and return it unchanged.

    `json` is the body model, `ok` the answer's (None: not described), `key` "storefront"
    or "admin"; `errors` adds codes to those implied: a body can be 400, 413, 415 or 422,
    a query 422, a keyed route 401, 403 or 503, and any route 500.
    """

    def describe(view: View) -> View:
        personalizer = view.__module__.startswith("service.personalizer")
        codes = {500, *errors}
        codes |= {400, 413, 415, 422} if json else set()
        codes |= {422} if query else set()
        codes |= {401, 403, 503} if key else set()
        model = PersonalizerErrorBody if personalizer else ErrorBody
        described: dict[str, Any] = {f"HTTP_{c}": (model, ERRORS[c]) for c in sorted(codes)}
        if personalizer and 422 in codes:  # Personalizer answers invalid fields with 400
            described.pop("HTTP_422")
            described["HTTP_400"] = (model, PERSONALIZER_400)
        if ok is not None:
            described[f"HTTP_{status}"] = (ok, "Success")
        answers = Answers(*([] if ok else [f"HTTP_{status}"]), **described)
        security = (PERSONALIZER_SECURITY if personalizer else SECURITY)[key]
        wrapper = api.validate(json=json, query=query, resp=answers, security=security, skip_validation=True)
        api.described[view] = wrapper(view)
        return view

    return describe


def document() -> dict[str, Any]:
    """Return the OpenAPI 3.1 document (built once per process, under a lock).

    Every app registers the same documented blueprints, so one document serves them all;
    spectree moves nested schemas out of its models while building, so it must build once.
    """
    with _building:
        if "paths" not in _document:
            _document.update(_build())
    return _document


def _build() -> dict[str, Any]:
    spec: dict[str, Any] = api.spec
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["schema"] is None:  # a converter spectree does not know: /personalizer/<v>
                    parameter["schema"] = {"type": "string", "pattern": f"^{ApiVersionConverter.regex}$"}
            if method == "put" and path.endswith("/model"):  # a model file, not JSON
                binary = {"schema": {"type": "string", "format": "binary"}}
                operation["requestBody"] = {"required": True, "content": {"application/octet-stream": binary}}
    return spec


_building = threading.Lock()
_document: dict[str, Any] = {}


@bp.get("/openapi.json")
@documented()
def openapi() -> Response:
    """Return this OpenAPI document."""
    return json_response(document())
