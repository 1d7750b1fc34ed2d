"""Admin endpoints for experiments against a holdout (define, list, results, stop, ship)
and for the operator's business rules (/v1/rules).

Every route needs an admin API key. A started or ended experiment reaches every
worker within ``XSELL_MODEL_POLL_SECONDS`` (service/experiment_arms.py). Results are
computed from the log alone (logs/experiment_store.py), over decisions whose reward
window ended.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from flask import Blueprint, Response, request

from logs.experiment_store import Experiment, ExperimentStore
from logs.store import LogStore
from policies.base import ModelFormatError
from policies.deciding.promotions import Boost, Campaign
from policies.deciding.rules import OperatorRules, Pin
from policies.experiments.assignment import Arm
from policies.learning.model_records import ModelChange
from policies.learning.registry import ModelRegistry
from service import business_rules
from service.auth import guard_admin
from service.exceptions import InvalidField
from service.experiment_arms import arms
from service.experiment_schemas import ExperimentRequest, RulesRequest, ShipRequest, StopRequest
from service.openapi import documented
from service.resources import resources
from service.responses import json_response

UNSHIPPABLE = ("most-popular", "no-offer")  # policies with no model to make the default

bp = Blueprint("experiments", __name__)
guard_admin(bp)


@bp.post("/v1/experiments")
@documented(json=ExperimentRequest, key="admin", status=201, errors=(409,))
def create() -> Response:
    """Start an experiment: its arms share the traffic from now on (one runs at a time)."""
    body = ExperimentRequest.model_validate_json(request.get_data())
    res = resources()
    experiment = start(res.store, res.registry, body, actor="http")
    arms(res).refresh()
    return json_response(describe(experiment), status=201)


@bp.get("/v1/experiments")
@documented(key="admin")
def list_experiments() -> Response:
    """List experiments, newest first."""
    return json_response({"experiments": [describe(e) for e in ExperimentStore(resources().store).all()]})


@bp.get("/v1/experiments/<experiment_id>")
@documented(key="admin", errors=(404,))
def results(experiment_id: str) -> Response:
    """An experiment and its results: per arm, rates with anytime-valid intervals, lift, sample ratio."""
    res = resources()
    store = ExperimentStore(res.store)
    experiment = store.get(experiment_id)
    return json_response(describe(experiment) | {"results": store.results(experiment, res.store.clock())})


@bp.post("/v1/experiments/<experiment_id>/stop")
@documented(json=StopRequest, key="admin", errors=(404, 409))
def stop(experiment_id: str) -> Response:
    """End the experiment: every request is served by the default policy again."""
    body = StopRequest.model_validate_json(request.get_data() or b"{}")
    res = resources()
    ended = finish(res.store, res.registry, experiment_id, ship=None, reason=body.reason, actor="http")
    arms(res).refresh()
    return json_response(describe(ended))


@bp.post("/v1/experiments/<experiment_id>/ship")
@documented(json=ShipRequest, key="admin", errors=(404, 409))
def ship(experiment_id: str) -> Response:
    """End the experiment and make an arm's policy the default (a frozen arm's version is activated)."""
    body = ShipRequest.model_validate_json(request.get_data())
    res = resources()
    ended = finish(res.store, res.registry, experiment_id, ship=body.arm, reason=body.reason, actor="http")
    arms(res).refresh()
    return json_response(describe(ended))


@bp.get("/v1/rules")
@documented(key="admin")
def get_rules() -> Response:
    """The operator's business rules in force (pins, margin floor, bans, diversity, promotions)."""
    return json_response(business_rules.dump(business_rules.operator_rules(resources())))


@bp.put("/v1/rules")
@documented(json=RulesRequest, key="admin")
def put_rules() -> Response:
    """Replace the business rules; every worker applies them within the poll interval."""
    body = RulesRequest.model_validate_json(request.get_data())
    rules = OperatorRules(
        pins=tuple(Pin(p.name, p.sku) for p in body.pins),
        margin_floor=body.margin_floor,
        never_categories=frozenset(body.never_categories),
        max_per_category=body.max_per_category,
        boosts=tuple(Boost(b.sku, b.factor) for b in body.boosts),
        campaigns=tuple(
            Campaign(c.name, tuple(c.products), c.min_share, c.max_impressions, c.period_seconds)
            for c in body.campaigns
        ),
    )
    res = resources()
    business_rules.check(res, rules)
    business_rules.save_rules(res, rules, actor="http", reason=body.reason)
    return json_response(business_rules.dump(rules))


def start(store: LogStore, registry: ModelRegistry, body: ExperimentRequest, *, actor: str) -> Experiment:
    """Start the experiment `body` defines (the API and `xsell experiments start` alike)."""
    for k, arm in enumerate(body.arms):
        if arm.version is None:
            continue
        model = registry.index.find(arm.version)
        if model is None:
            raise InvalidField(f"arms.{k}.version", f"no model version {arm.version!r}")
        try:  # the arm must be servable from its first request on
            registry.load(model)
        except (ModelFormatError, OSError) as error:
            raise InvalidField(f"arms.{k}.version", f"{arm.version} cannot be served: {error}") from error
    experiment = Experiment(
        id=body.id,
        name=body.name or body.id,
        arms=tuple(Arm(a.name, a.policy, a.share, a.version) for a in body.arms),
        alpha=body.alpha,
        status="running",
        created_at=store.clock(),
    )
    ExperimentStore(store).create(experiment)
    # Recorded in the model history; a frozen arm's version is thereby kept from pruning
    # (the retention policy keeps every version a change names) for as long as it serves.
    active = registry.active()
    for version in [a.version for a in experiment.arms if a.version] or [active.version if active else ""]:
        registry.index.record_change(
            ModelChange(
                at=store.clock(),
                action="experiment-start",
                version=version,
                previous=None,
                actor=actor,
                reason=f"experiment {experiment.id} started: "
                + ", ".join(f"{a.name} {a.policy} {a.share:g}" for a in experiment.arms),
            )
        )
    return experiment


def finish(
    store: LogStore,
    registry: ModelRegistry,
    experiment_id: str,
    *,
    ship: str | None,
    reason: str | None,
    actor: str,
) -> Experiment:
    """Stop the experiment, or ship an arm (a frozen arm's version is activated); recorded in history."""
    experiments = ExperimentStore(store)
    if ship is None:
        ended = experiments.end(experiment_id, status="stopped", at=store.clock(), arm=None, reason=reason)
        _record(store, registry, "experiment-stop", f"experiment {experiment_id} stopped", reason, actor)
        return ended
    arm = shippable(experiments.get(experiment_id), ship)
    if arm.version is not None and registry.index.find(arm.version) is None:
        # refused before the experiment ends: it would be shipped with nothing activated
        raise InvalidField("arm", f"arm {arm.name}'s version {arm.version} no longer exists")
    ended = experiments.end(experiment_id, status="shipped", at=store.clock(), arm=arm.name, reason=reason)
    if arm.version is not None:
        registry.activate(arm.version, actor=actor, reason=f"shipped arm {arm.name} of {experiment_id}")
    _record(
        store,
        registry,
        "experiment-ship",
        f"experiment {experiment_id} shipped arm {arm.name}",
        reason,
        actor,
    )
    return ended


def shippable(experiment: Experiment, name: str) -> Arm:
    """Return the arm `name` of `experiment` if shipping can make its policy the default.

    Raises
    ------
    InvalidField
        (field ``arm``) when the experiment has no such arm, or the arm's policy has no
        model (most-popular, no-offer): stop the experiment instead.
    """
    arm = experiment.arm(name)
    if arm is None:
        raise InvalidField("arm", f"experiment {experiment.id!r} has no arm {name!r}")
    if arm.policy in UNSHIPPABLE:
        raise InvalidField("arm", f"a {arm.policy} arm has no model to make the default; stop the experiment")
    return arm


def describe(experiment: Experiment) -> dict[str, Any]:
    """An experiment as the API shows it."""
    return asdict(experiment) | {"arms": [asdict(a) for a in experiment.arms]}


def _record(
    store: LogStore, registry: ModelRegistry, action: str, what: str, reason: str | None, actor: str
) -> None:
    """Keep the change in the model history, beside activations and rollbacks."""
    active = registry.active()
    registry.index.record_change(
        ModelChange(
            at=store.clock(),
            action=action,
            version=active.version if active else "",
            previous=None,
            actor=actor,
            reason=what + (f": {reason}" if reason else ""),
        )
    )
