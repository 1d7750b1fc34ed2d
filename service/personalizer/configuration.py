"""Personalizer's service configuration and policy routes over xsell's live settings and registry.

A policy change or a reset serves a new, untrained model: a new registry version
that can be rolled back. ``XSELL_PERSONALIZER_RESET_POLICY=personalizer`` makes a
reset restore Personalizer's own default arguments, exactly as the service gave them.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import timedelta
from typing import Any

from flask import Response, request

from policies.deciding.live_config import InvalidSetting
from service.effective import EffectiveConfig
from service.errors import InvalidField
from service.openapi import documented
from service.personalizer.admin import active, admin_blueprint, start_fresh
from service.personalizer.formats import duration, iso
from service.personalizer.reports import find_evaluation
from service.personalizer.schemas import ApplyFromEvaluation, PolicyBody, ServiceConfiguration
from service.resources import Resources, resources
from service.responses import no_content, personalizer_json

__all__ = ["PERSONALIZER_DEFAULT_ARGS", "bp"]

bp = admin_blueprint("configuration")

POLICY_NAME_KEY = "personalizer_policy_name"
RETRAIN_DAYS_KEY = "personalizer_model_retrain_days"
# Personalizer's default policy, in the order the service gave it (its test suite's recordings).
PERSONALIZER_DEFAULT_ARGS = "--cb_explore_adf --epsilon 0.2 --power_t 0 -l 0.001 --cb_type mtr -q ::"
MODES = {"online": "Online", "apprentice": "Apprentice", "logging_only": "LoggingOnly"}
# live setting -> Personalizer's name for it
PERSONALIZER_NAMES = {
    "reward_window_seconds": "rewardWaitTime",
    "default_reward": "defaultReward",
    "reward_aggregation": "rewardAggregation",
    "exploration_share": "explorationPercentage",
    "snapshot_interval_seconds": "modelExportFrequency",
    "log_retention_days": "logRetentionDays",
    "learning_mode": "learningMode",
}


@bp.get("/configurations/service")
@documented(ok=ServiceConfiguration, key="admin")
def get_service_configuration() -> Response:
    """The configuration in force, in Personalizer's names."""
    res = resources()
    return personalizer_json(_configuration_body(res, res.config.current()))


@bp.put("/configurations/service")
@documented(json=ServiceConfiguration, key="admin")
def update_service_configuration() -> Response:
    """Change live settings; fields left out keep their values. 200 with the result.

    PUT accepts every value the service can run with, so the body of a GET sent back
    unchanged is accepted and changes nothing (durations compare to the microsecond).
    Each change is one read-modify-write in the log, so two partial updates arriving
    at different workers at once both land.
    """
    body = ServiceConfiguration.model_validate_json(request.get_data())
    res = resources()
    wanted: dict[str, Any] = {
        "reward_window_seconds": _seconds_of(body.reward_wait_time),
        "default_reward": body.default_reward,
        "reward_aggregation": body.reward_aggregation,
        "exploration_share": body.exploration_percentage,
        "snapshot_interval_seconds": _seconds_of(body.model_export_frequency),
        "log_retention_days": body.log_retention_days,
        "learning_mode": {v: k for k, v in MODES.items()}.get(body.learning_mode or ""),
    }
    live = asdict(res.config.current().live)
    changes = {k: v for k, v in wanted.items() if v is not None and not _same(k, live[k], v)}
    found = res.config.current()
    if changes:
        try:
            found = res.config.change(changes)
        except InvalidSetting as error:
            raise InvalidField(PERSONALIZER_NAMES.get(error.field, error.field), error.problem) from error
    if body.model_retrain_days is not None:
        res.registry.index.set_control(RETRAIN_DAYS_KEY, str(body.model_retrain_days))
    return personalizer_json(_configuration_body(res, found))


def _seconds_of(given: timedelta | None) -> float | None:
    return None if given is None else given.total_seconds()


def _same(name: str, current: Any, given: Any) -> bool:
    if name in ("reward_window_seconds", "snapshot_interval_seconds"):
        return bool(abs(current - given) < 5e-7)  # a duration is exact to the microsecond
    return bool(current == given)


def _configuration_body(res: Resources, config: EffectiveConfig) -> dict[str, Any]:
    live, edited = config.live, config.updated_at
    return {
        "rewardWaitTime": duration(live.reward_window_seconds),
        "defaultReward": live.default_reward,
        "rewardAggregation": live.reward_aggregation,
        "explorationPercentage": live.exploration_share,
        "modelExportFrequency": duration(live.snapshot_interval_seconds),
        "logRetentionDays": live.log_retention_days,
        # Kept and reported; xsell never retrains from old logs on its own (docs/personalizer.md).
        "modelRetrainDays": int(res.registry.index.control(RETRAIN_DAYS_KEY) or 0),
        "learningMode": MODES[live.learning_mode],
        "isAutoOptimizationEnabled": False,  # evaluations run when asked for
        "lastConfigurationEditDate": None if edited is None else iso(edited),
    }


@bp.get("/configurations/policy")
@documented(ok=PolicyBody, key="admin")
def get_policy() -> Response:
    """The learning settings of the model being served."""
    res = resources()
    return personalizer_json(_policy_body(res, active(res).vw_args))


@bp.put("/configurations/policy")
@documented(json=PolicyBody, key="admin")
def update_policy() -> Response:
    """Serve a new, untrained model with these VW arguments (roll back to undo). 200."""
    body = PolicyBody.model_validate_json(request.get_data())
    res = resources()
    start_fresh(res, body.arguments, f"policy {body.name!r} set over the Personalizer API", "arguments")
    res.registry.index.set_control(POLICY_NAME_KEY, body.name)
    return personalizer_json(_policy_body(res, body.arguments))


@bp.delete("/configurations/policy")
@documented(ok=PolicyBody, key="admin")
def reset_policy() -> Response:
    """Serve a new, untrained model with the default arguments (XSELL_PERSONALIZER_RESET_POLICY). 200."""
    res = resources()
    arguments = (
        PERSONALIZER_DEFAULT_ARGS
        if res.settings.personalizer_reset_policy == "personalizer"
        else res.settings.vw_args
    )
    start_fresh(res, arguments, "policy reset over the Personalizer API", "arguments")
    res.registry.index.set_control(POLICY_NAME_KEY, None)
    return personalizer_json(_policy_body(res, arguments))


@bp.post("/configurations/applyFromEvaluation")
@documented(json=ApplyFromEvaluation, status=204, key="admin", errors=(404,))
def apply_from_evaluation() -> Response:
    """Serve, untrained, the best policy an evaluation found (or the one named). 204."""
    body = ApplyFromEvaluation.model_validate_json(request.get_data())
    res = resources()
    record = find_evaluation(res, body.evaluation_id)
    if record.result is None:
        raise InvalidField("evaluationId", f"evaluation {record.id!r} has no result ({record.status})")
    wanted = body.policy_name or record.result["optimalPolicy"]
    if wanted is None:
        raise InvalidField("evaluationId", "the evaluation found no policy better than the online one")
    found = [p for p in record.result["policies"] if p["policySource"] == "Custom" and p["name"] == wanted]
    if not found:
        raise InvalidField("policyName", f"the evaluation has no custom policy named {wanted!r}")
    start_fresh(res, found[0]["arguments"], f"applied {wanted!r} from evaluation {record.id!r}", "policyName")
    res.registry.index.set_control(POLICY_NAME_KEY, wanted)
    return no_content()


def _policy_body(res: Resources, arguments: str) -> dict[str, str]:
    return {"name": res.registry.index.control(POLICY_NAME_KEY) or "xsell", "arguments": arguments}
