"""Personalizer administration: configuration, policy, model, logs, evaluations.

Every route needs an admin key (``XSELL_ADMIN_API_KEYS``), sent by the SDKs as
``Ocp-Apim-Subscription-Key``. Each maps onto what xsell already has: the live
configuration, the model registry (a policy change or a reset is a new version that
can be rolled back), retention, and the offline evaluator.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, request

from logs.evaluation_store import EvaluationRecord, EvaluationStore
from policies.deciding.live_config import InvalidSetting
from policies.learning.registry import ModelVersion, RegistryError
from service.auth import guard_admin
from service.effective import EffectiveConfig
from service.errors import InvalidField, ModelUnavailable, NotFound
from service.openapi import PageQuery, documented
from service.personalizer import drop_api_version, evaluations, flavour, importance
from service.personalizer.formats import duration, iso, seconds
from service.personalizer.schemas import (
    ApplyFromEvaluation,
    EvaluationRequest,
    FeatureImportanceRequest,
    PolicyBody,
    ServiceConfiguration,
)
from service.resources import Resources, resources
from service.responses import no_content, personalizer_json

bp = Blueprint("personalizer_admin", __name__)
guard_admin(bp)

ACTOR = "personalizer-api"
POLICY_NAME_KEY = "personalizer_policy_name"
MODES = {"online": "Online", "apprentice": "Apprentice", "logging_only": "LoggingOnly"}
# An evaluation thread that has not finished after this long belonged to a worker that died.
STALE_EVALUATION_SECONDS = 6 * 3600.0


bp.url_value_preprocessor(drop_api_version)


# -- configuration -------------------------------------------------------------------


@bp.get("/configurations/service")
@documented(ok=ServiceConfiguration, key="admin")
def get_service_configuration() -> Response:
    """The configuration in force, in Personalizer's names."""
    return personalizer_json(_configuration_body(resources().config.current()))


@bp.put("/configurations/service")
@documented(json=ServiceConfiguration, key="admin")
def update_service_configuration() -> Response:
    """Change live settings; fields left out keep their values. 200 with the result.

    PUT accepts every value the service can run with, so the body of a GET sent back
    unchanged is accepted and changes nothing (durations compare to the microsecond).
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
    if not changes:
        return personalizer_json(_configuration_body(res.config.current()))
    try:
        found = res.config.change(changes)
    except InvalidSetting as error:
        raise InvalidField(PERSONALIZER_NAMES.get(error.field, error.field), error.problem) from error
    return personalizer_json(_configuration_body(found))


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


def _seconds_of(duration: timedelta | None) -> float | None:
    return None if duration is None else duration.total_seconds()


def _same(name: str, current: Any, given: Any) -> bool:
    if name in ("reward_window_seconds", "snapshot_interval_seconds"):
        return bool(abs(current - given) < 5e-7)  # a duration is exact to the microsecond
    return bool(current == given)


def _configuration_body(config: EffectiveConfig) -> dict[str, Any]:
    live, edited = config.live, config.updated_at
    return {
        "rewardWaitTime": duration(live.reward_window_seconds),
        "defaultReward": live.default_reward,
        "rewardAggregation": live.reward_aggregation,
        "explorationPercentage": live.exploration_share,
        "modelExportFrequency": duration(live.snapshot_interval_seconds),
        "logRetentionDays": live.log_retention_days,
        "modelRetrainDays": 0,  # xsell never retrains from old logs on its own
        "learningMode": MODES[live.learning_mode],
        "isAutoOptimizationEnabled": False,  # evaluations run when asked for
        "lastConfigurationEditDate": None if edited is None else iso(edited),
    }


@bp.get("/configurations/policy")
@documented(ok=PolicyBody, key="admin")
def get_policy() -> Response:
    """The learning settings of the model being served."""
    res = resources()
    return personalizer_json(_policy_body(res, _active(res).vw_args))


@bp.put("/configurations/policy")
@documented(json=PolicyBody, key="admin")
def update_policy() -> Response:
    """Serve a new, untrained model with these VW arguments (roll back to undo). 200."""
    body = PolicyBody.model_validate_json(request.get_data())
    res = resources()
    _start_fresh(res, body.arguments, f"policy {body.name!r} set over the Personalizer API", "arguments")
    res.registry.index.set_control(POLICY_NAME_KEY, body.name)
    return personalizer_json(_policy_body(res, body.arguments))


@bp.delete("/configurations/policy")
@documented(ok=PolicyBody, key="admin")
def reset_policy() -> Response:
    """Serve a new, untrained model with the configured default arguments. 200."""
    res = resources()
    _start_fresh(res, res.settings.vw_args, "policy reset over the Personalizer API", "arguments")
    res.registry.index.set_control(POLICY_NAME_KEY, None)
    return personalizer_json(_policy_body(res, res.settings.vw_args))


@bp.post("/configurations/applyFromEvaluation")
@documented(json=ApplyFromEvaluation, status=204, key="admin", errors=(404,))
def apply_from_evaluation() -> Response:
    """Serve, untrained, the best policy an evaluation found (or the one named). 204."""
    body = ApplyFromEvaluation.model_validate_json(request.get_data())
    res = resources()
    record = _evaluation(res, body.evaluation_id)
    if record.result is None:
        raise InvalidField("evaluationId", f"evaluation {record.id!r} has no result ({record.status})")
    wanted = body.policy_name or record.result["optimalPolicy"]
    if wanted is None:
        raise InvalidField("evaluationId", "the evaluation found no policy better than the online one")
    found = [p for p in record.result["policies"] if p["policySource"] == "Custom" and p["name"] == wanted]
    if not found:
        raise InvalidField("policyName", f"the evaluation has no custom policy named {wanted!r}")
    _start_fresh(
        res, found[0]["arguments"], f"applied {wanted!r} from evaluation {record.id!r}", "policyName"
    )
    res.registry.index.set_control(POLICY_NAME_KEY, wanted)
    return no_content()


def _policy_body(res: Resources, arguments: str) -> dict[str, str]:
    return {"name": res.registry.index.control(POLICY_NAME_KEY) or "xsell", "arguments": arguments}


def _start_fresh(res: Resources, arguments: str, reason: str, field: str) -> None:
    try:
        res.registry.start_fresh(arguments, actor=ACTOR, reason=reason)
    except ValueError as error:
        raise InvalidField(field, str(error)) from error


# -- model -----------------------------------------------------------------------------


@bp.get("/model")
@documented(key="admin")
def export_model() -> Response:
    """The active model as an xsell export (model file, card and registry record)."""
    res = resources()
    active = _active(res)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "model.tar"
        res.registry.export(active.version, path)
        data = path.read_bytes()
    return Response(data, status=200, content_type="application/octet-stream")


@bp.put("/model")
@documented(status=204, key="admin", errors=(400, 413))
def import_model() -> Response:
    """Import an xsell export and serve it at once, as Personalizer's import did. 204."""
    res = resources()
    data = request.get_data()
    if not data:
        raise InvalidField("body", "send the model file exported by GET model")
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "model.tar"
        path.write_bytes(data)
        try:
            model = res.registry.import_file(path, actor=ACTOR)
        except RegistryError as error:
            raise InvalidField("body", str(error).replace(str(path), "the uploaded model")) from error
    res.registry.activate(model.version, actor=ACTOR, reason="imported over the Personalizer API")
    return no_content()


@bp.delete("/model")
@documented(status=204, key="admin")
def reset_model() -> Response:
    """Forget what was learned: serve a new, untrained model with the same arguments. 204."""
    res = resources()
    _start_fresh(res, _active(res).vw_args, "model reset over the Personalizer API", "model")
    return no_content()


@bp.get("/model/properties")
@documented(key="admin")
def model_properties() -> Response:
    """When the first model was made and when the served one was."""
    res = resources()
    versions = res.registry.index.versions()
    active = _active(res)
    first = min((v.created_at for v in versions), default=active.created_at)
    return personalizer_json({"creationTime": iso(first), "lastModifiedTime": iso(active.created_at)})


def _active(res: Resources) -> ModelVersion:
    active = res.registry.active()
    if active is None:
        raise ModelUnavailable("no model has been published yet")
    return active


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
    skip = _int_arg("skip", 0)
    top = _int_arg("top", None)
    records = store.list(skip=skip, top=top)
    return personalizer_json({"value": [evaluations.to_body(r) for r in records], "nextLink": None})


@bp.get("/evaluations/<path:evaluation_id>")
@documented(key="admin", errors=(404,))
def get_evaluation(evaluation_id: str) -> Response:
    """One evaluation with its result once it has finished."""
    res = resources()
    EvaluationStore(res.store).fail_stale(STALE_EVALUATION_SECONDS)
    return personalizer_json(evaluations.to_body(_evaluation(res, evaluation_id)))


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


def _evaluation(res: Resources, evaluation_id: str) -> EvaluationRecord:
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
    found = importance.list_all(resources(), skip=_int_arg("skip", 0), top=_int_arg("top", None))
    return personalizer_json({"value": found, "nextLink": None})


@bp.delete("/featureImportances/<path:importance_id>")
@documented(status=204, key="admin", errors=(404,))
def delete_feature_importance(importance_id: str) -> Response:
    """Delete a feature importance report. 204."""
    importance.delete(resources(), importance_id)
    return no_content()


# -- helpers ---------------------------------------------------------------------------


def _int_arg(name: str, default: int | None) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or len(raw) > 9:
        raise InvalidField(name, "must be a whole number from 0 to 999999999")
    return int(raw)
