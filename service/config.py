"""GET and PATCH /v1/config: every setting in force with its source; change the live ones (admin).

Both answer what ``service.effective`` says is in force: each setting's value, where
it came from (default, environment, live) and whether it may be changed live, plus
the reward rules that follow. PATCH takes live settings only; ``null`` drops an
override, so the setting follows the environment again. A change reaches every
worker and the learner within their poll interval.
"""

from __future__ import annotations

from typing import Any, Literal

from flask import Blueprint, Response, request
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from policies.deciding.live_config import LIVE_SETTINGS, InvalidSetting
from service.auth import guard_admin
from service.errors import InvalidField
from service.openapi import documented
from service.resources import resources
from service.responses import json_response
from service.settings import Settings

__all__ = ["ConfigPatch", "ConfigResponse", "bp", "patch_values"]

bp = Blueprint("config", __name__)
guard_admin(bp)


class _Patch(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans(cls, value: Any) -> Any:
        # pydantic would read true as 1: log_retention_days=true kept one day of the log.
        if isinstance(value, bool):
            raise ValueError("must be a number or a name, not true or false")
        return value


# One optional field per live setting, typed as the environment types it: a live
# setting added to policies/deciding/live_config.py appears here (and in the OpenAPI document).
ConfigPatch: type[BaseModel] = create_model(
    "ConfigPatch",
    __base__=_Patch,
    __doc__="Live settings to change; null drops the override (the environment's value returns).",
    **{
        name: (
            Settings.model_fields[name].annotation | None,  # type: ignore[operator]
            Field(None, description=Settings.model_fields[name].description),
        )
        for name in LIVE_SETTINGS
    },
)


class SettingInForce(BaseModel):
    value: Any
    source: Literal["default", "environment", "live"] = Field(
        description="default; environment (an XSELL_* variable or a flag); live (changed while running)"
    )
    live: bool = Field(description="Whether PATCH /v1/config may change it")
    variable: str = Field(description="The XSELL_* variable that sets it")


class ConfigResponse(BaseModel):
    """Every setting in force (secrets masked) and the reward rules that follow."""

    settings: dict[str, SettingInForce]
    reward_rules: dict[str, Any]
    updated_at: float | None = Field(description="When a live setting last changed (Unix time)")


def patch_values(body: BaseModel) -> tuple[dict[str, Any], list[str]]:
    """Split a validated ConfigPatch into values to set and settings to reset (given as null)."""
    given = {name: getattr(body, name) for name in body.model_fields_set}
    return {k: v for k, v in given.items() if v is not None}, [k for k, v in given.items() if v is None]


@bp.get("/v1/config")
@documented(ok=ConfigResponse, key="admin")
def show_config() -> Response:
    """Return every setting in force, where it came from, and the reward rules."""
    return json_response(resources().config.current().describe())


@bp.patch("/v1/config")
@documented(json=ConfigPatch, ok=ConfigResponse, key="admin")
def change_config() -> Response:
    """Change or reset live settings; nothing changes unless every one is usable. 200 with the result."""
    # Strict over HTTP: a number is a JSON number ("0.5" was read as 0.5); the console's
    # form and `xsell config set` send text and validate the same schema laxly.
    body = ConfigPatch.model_validate_json(request.get_data() or b"{}", strict=True)
    values, reset = patch_values(body)
    config = resources().config
    if not values and not reset:
        return json_response(config.current().describe())
    try:
        found = config.change(values, reset=reset)
    except InvalidSetting as error:
        raise InvalidField(error.field, error.problem) from error
    return json_response(found.describe())
