"""POST /bench/parse: the baseline `xsell bench serve` measures the rank path against.

It does what every endpoint must (read the body, validate it with the same pydantic
model as /v1/rank, answer small JSON) and nothing else, in the same app and
gunicorn configuration. Registered only with XSELL_BENCH_ENDPOINTS=true.
"""

from __future__ import annotations

from flask import Blueprint, Response, request

from service.responses import json_response
from service.schemas import RankRequest

bp = Blueprint("bench", __name__)


@bp.post("/bench/parse")
def parse() -> Response:
    """Validate a rank body and answer without ranking or logging."""
    body = RankRequest.model_validate_json(request.get_data())
    return json_response({"actions": len(body.actions)})
