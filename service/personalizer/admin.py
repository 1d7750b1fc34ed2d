"""What the Personalizer administration routes share: the blueprint guard, the actor, model helpers.

The routes themselves live by what they administer: ``configuration.py`` (service
settings, policy), ``model.py`` (export, import, reset), ``reports.py`` (logs,
evaluations, feature importances). Every route needs an admin key
(``XSELL_ADMIN_API_KEYS``), sent by the SDKs as ``Ocp-Apim-Subscription-Key``.
"""

from __future__ import annotations

from flask import Blueprint, request

from policies.learning.registry import ModelVersion
from service.auth import guard_admin
from service.errors import InvalidField, ModelUnavailable
from service.personalizer import drop_api_version
from service.resources import Resources

__all__ = ["ACTOR", "active", "admin_blueprint", "int_arg", "start_fresh"]

ACTOR = "personalizer-api"


def admin_blueprint(name: str) -> Blueprint:
    """Return a blueprint whose every route needs an admin key and ignores the path's API version."""
    bp = Blueprint(f"personalizer_admin_{name}", __name__)
    guard_admin(bp)
    bp.url_value_preprocessor(drop_api_version)
    return bp


def active(res: Resources) -> ModelVersion:
    """Return the model being served; 503 before the first one is published."""
    found = res.registry.active()
    if found is None:
        raise ModelUnavailable("no model has been published yet")
    return found


def start_fresh(res: Resources, arguments: str, reason: str, field: str) -> None:
    """Serve a new, untrained model with `arguments`; a refused argument is a 400 naming `field`."""
    try:
        res.registry.start_fresh(arguments, actor=ACTOR, reason=reason)
    except ValueError as error:
        raise InvalidField(field, str(error)) from error


def int_arg(name: str, default: int | None) -> int | None:
    """Return query parameter `name` as a bounded whole number, or `default` when absent."""
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise InvalidField(name, "must be a whole number from 0 to 999999999")
    return int(raw)
