"""Console actions on experiments (POST): stop one, or ship an arm, after a confirmation page.

As a model change (actions.py): the session's CSRF token, a reason, and a confirmation
page first; only the confirmed form (``confirmed=yes``) changes anything. The change is
``service.experiments.finish``, the function ``POST /v1/experiments/ID/stop|ship`` and
``xsell experiments stop|ship`` call, so it is refused alike and recorded alike in the
model history (actor ``console:<key digest>``). A refusal is an error page, never a 500.
"""

from __future__ import annotations

from flask import Response, request, url_for

from logs.experiment_store import ExperimentExists, ExperimentStore, UnknownExperiment
from policies.learning.registry import RegistryError, UnknownVersion
from service.console import bp, notice_redirect, page, session
from service.console.actions import MAX_REASON, form_field, refuse_without_csrf
from service.console.filters import utc
from service.exceptions import InvalidField
from service.experiment_arms import arms
from service.experiments import finish, shippable
from service.resources import Resources, resources

__all__: list[str] = []

MAX_ID = 256  # ids are at most 64 characters (experiment_schemas.Slug); longer is no experiment
# refusal -> the status its error page answers with (as the API's for the same refusal)
REFUSALS: dict[type[Exception], int] = {
    UnknownExperiment: 404,
    InvalidField: 422,
    ExperimentExists: 409,
    RegistryError: 409,
    UnknownVersion: 409,
}


@bp.post("/experiments/<experiment_id>/stop")
def experiment_stop(experiment_id: str) -> Response:
    """Confirm, then stop an experiment: the default policy serves everyone again."""
    return _end(experiment_id[:MAX_ID], ship=None)


@bp.post("/experiments/<experiment_id>/ship")
def experiment_ship(experiment_id: str) -> Response:
    """Confirm, then ship an arm: end the experiment and make the arm's policy the default."""
    return _end(experiment_id[:MAX_ID], ship=form_field("arm", 100))


def _end(experiment_id: str, *, ship: str | None) -> Response:
    if (refused := refuse_without_csrf()) is not None:
        return refused
    res = resources()
    reason = form_field("reason", MAX_REASON)
    if not reason:
        return page("error.html", status=422, message="reason: say why, for the change history")
    try:
        if request.form.get("confirmed") != "yes":
            fields = {"reason": reason} | ({} if ship is None else {"arm": ship})
            target = url_for(str(request.endpoint), experiment_id=experiment_id)
            summary = _describe(res, experiment_id, ship, reason)
            return page("confirm.html", summary=summary, target=target, fields=fields)
        finish(res.store, res.registry, experiment_id, ship=ship, reason=reason, actor=session().actor)
    except tuple(REFUSALS) as error:
        status = next(s for kind, s in REFUSALS.items() if isinstance(error, kind))
        return page("error.html", status=status, message=f"refused: {error}")
    # This worker serves the change at once; the others within their poll interval.
    arms(res).refresh()
    res.served.refresh()
    done = f"stopped {experiment_id}" if ship is None else f"shipped arm {ship} of {experiment_id}"
    return notice_redirect(
        "console.experiment", f"done: {done}; reason: {reason}", experiment_id=experiment_id
    )


def _describe(res: Resources, experiment_id: str, ship: str | None, reason: str) -> str:
    """Say what ending the experiment will do; refuse before the confirmation what `finish` would refuse."""
    experiment = ExperimentStore(res.store).get(experiment_id)
    if experiment.status != "running":
        raise ExperimentExists(f"experiment {experiment_id!r} has already ended ({experiment.status})")
    active = res.registry.active()
    serving = active.version if active else "nothing"
    since = f"experiment {experiment.id} ({experiment.name}, running since {utc(experiment.created_at)})"
    if ship is None:
        return f"stop {since}: everyone is served the default policy ({serving}) again; reason: {reason}"
    arm = shippable(experiment, ship)
    if arm.version is None:
        effect = f"the learning model ({serving}) stays the default for everyone"
    else:
        effect = f"activate {arm.version} (serving {serving} now) for everyone"
    return f"ship arm {arm.name} ({arm.policy}) of {since}: end it and {effect}; reason: {reason}"
