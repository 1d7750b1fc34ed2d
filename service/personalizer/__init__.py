"""The Azure Personalizer data-plane API, served by xsell's own rank path, log and learner.

Two SDK generations call it: the 0.1.x client under ``/personalizer/v1.0/`` (and
v1.1-preview for multi-slot), the 1.0 beta under ``/personalizer/`` with an
``api-version`` query parameter, which is accepted whatever it says. Each blueprint
is registered once per prefix; ``flavour()`` tells a view which one it answers.
Errors take Personalizer's shape (``service/errors.py``).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Flask, request
from werkzeug.routing import BaseConverter

__all__ = ["drop_api_version", "flavour", "register"]


class ApiVersionConverter(BaseConverter):
    """A path segment such as v1.0 or v1.1-preview.3."""

    regex = r"v\d+\.\d+(?:-preview(?:\.\d+)?)?"


def register(app: Flask) -> None:
    """Serve the Personalizer routes under every prefix the SDKs use."""
    # blueprints need the app's resources
    from service.personalizer import configuration, events, model, reports

    app.url_map.converters["apiversion"] = ApiVersionConverter
    for blueprint in (events.bp, configuration.bp, model.bp, reports.bp):
        app.register_blueprint(
            blueprint, url_prefix="/personalizer/<apiversion:api_version>", name=f"{blueprint.name}_versioned"
        )
        app.register_blueprint(blueprint, url_prefix="/personalizer", name=blueprint.name)


def flavour() -> str:
    """Return "v1" for a path-versioned call (0.1.x SDK), "preview" for an api-version one."""
    return "v1" if re.match(r"^/personalizer/v\d", request.path) else "preview"


def drop_api_version(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Keep the path's API version away from the views (every version is served alike)."""
    if values:
        values.pop("api_version", None)
