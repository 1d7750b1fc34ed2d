"""Console actions (POST): sign in and out, change the served model, run and apply evaluations, settings.

Every action but sign-in needs the session's CSRF token. A model change or an applied
evaluation needs a reason and is shown on a confirmation page first; only the
confirmed form (``confirmed=yes``) changes anything. Changes go through the same
registry functions as ``xsell models`` and the admin API, so the history records them
alike (actor ``console:<key digest>``); settings through the same code as
``PATCH /v1/config``.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Response, current_app, jsonify, redirect, request, url_for
from pydantic import ValidationError

from logs.evaluation_store import EvaluationRecord, EvaluationStore
from policies.deciding.live_config import LIVE_SETTINGS, InvalidSetting
from policies.learning.registry import RegistryError, UnknownVersion
from service.config import ConfigPatch, patch_values
from service.console import bp, data, notice_redirect, page, safe_next, session
from service.console.session import SignInRefused, clear_cookie, csrf_ok, set_cookie, sign_in
from service.console.signin_limit import limit_of
from service.personalizer import evaluations as evaluation_runs
from service.resources import resources

__all__ = ["MAX_REASON", "form_field", "refuse_without_csrf"]

MODEL_ACTIONS = ("activate", "rollback", "promote", "freeze", "unfreeze")
MAX_REASON = 500
MAX_POLICIES = 10
MAX_FIELD = 1000


def form_field(name: str, limit: int = MAX_FIELD) -> str:
    """A posted form field, stripped and cut to `limit` characters."""
    return request.form.get(name, "").strip()[:limit]


def refuse_without_csrf() -> Response | None:
    """The error page for a form without this session's CSRF token, else None."""
    if not csrf_ok(session()):
        return page("error.html", status=403, message="this form has no valid CSRF token: reload the page")
    return None


@bp.post("/signin")
def signin_post() -> Response:
    """Trade an admin key for a session cookie; refuse storefront and unknown keys."""
    target = safe_next(request.form.get("next"))
    res = resources()
    limit = limit_of(current_app, res.store.clock)
    address = request.remote_addr or "unknown"
    if (wait := limit.retry_after(address)) is not None:
        return _too_many_sign_ins(wait, target)  # the key is not even looked at
    try:
        token = sign_in(res, request.form.get("key", "")[:MAX_FIELD])
    except SignInRefused as refused:
        if refused.wrong_key:
            limit.failed(address)
        return page("signin.html", status=refused.status, next=target, error=str(refused))
    response = redirect(target, code=303)
    set_cookie(response, token)
    return response  # type: ignore[return-value]


def _too_many_sign_ins(wait: int, target: str) -> Response:
    """429 with Retry-After: JSON for a client that asks for it, else the sign-in page saying so."""
    message = f"too many wrong keys from here or overall: try again in {wait} s"
    if request.accept_mimetypes.best_match(["text/html", "application/json"]) == "application/json":
        response = jsonify({"error": "too_many_sign_ins", "message": message, "details": []})
        response.status_code = 429
    else:
        response = page("signin.html", status=429, next=target, error=message)
    response.headers["Retry-After"] = str(wait)
    return response


@bp.post("/signout")
def signout() -> Response:
    """End this browser's session."""
    if (refused := refuse_without_csrf()) is not None:
        return refused
    response = redirect(url_for("console.signin"), code=303)
    clear_cookie(response)
    return response  # type: ignore[return-value]


@bp.post("/models/change")
def model_change() -> Response:
    """Confirm, then make, a model change: activate, roll back, promote, freeze or unfreeze learning."""
    if (refused := refuse_without_csrf()) is not None:
        return refused
    res = resources()
    action, version = form_field("action", 20), form_field("version", 200)
    reason = form_field("reason", MAX_REASON)
    if action not in MODEL_ACTIONS:
        return page("error.html", status=422, message=f"action: one of {', '.join(MODEL_ACTIONS)}")
    if not reason:
        return page("error.html", status=422, message="reason: say why, for the change history")
    if action in ("activate", "promote") and not version:
        return page("error.html", status=422, message=f"version: name the version to {action}")
    try:
        if request.form.get("confirmed") != "yes":
            summary, target, why = _describe(action, version, reason)
            fields = {"action": action, "version": version, "reason": reason, "target": target, "why": why}
            return page(
                "confirm.html", summary=summary, target=url_for("console.model_change"), fields=fields
            )
        done = {
            "rollback": f"rolled back to {version or form_field('target', 200)}",
            "activate": f"activated {version}",
            "promote": f"promoted {version}",
            "freeze": "froze learning",
            "unfreeze": "unfroze learning",
        }[action]
        actor = session().actor
        registry = res.registry
        if action == "activate":
            registry.activate(version, actor=actor, reason=reason)
        elif action == "promote":
            registry.promote(version, actor=actor, reason=reason)
        elif action == "rollback":
            # The version the confirmation named, even if newer snapshots would make the default
            # another one by now; the history says why it was chosen, as for a rollback without --to.
            why = "" if version else form_field("why", MAX_FIELD)
            registry.explained_rollback(
                to=version or form_field("target", 200),
                actor=actor,
                reason=f"{reason}; {why}" if why else reason,
                older_than_seconds=res.settings.rollback_default_seconds,
            )
        else:
            registry.freeze_learning(action == "freeze", actor=actor, reason=reason)
    except (RegistryError, UnknownVersion) as error:
        return page("error.html", status=409, message=f"refused: {error}")
    res.served.refresh()  # this worker serves the change at once; the others within their poll
    return notice_redirect("console.models", f"done: {done}; reason: {reason}")


def _describe(action: str, version: str, reason: str) -> tuple[str, str, str]:
    """Say what the change will do; for a rollback also the version it chose and why."""
    res = resources()
    active = res.registry.active()
    serving = active.version if active else "nothing"
    if action == "rollback":
        target, why = res.registry.choose_rollback(
            to=version or None, older_than_seconds=res.settings.rollback_default_seconds
        )
        return f"roll back from {serving} to {target.version} ({why}); reason: {reason}", target.version, why
    if action in ("activate", "promote"):
        res.registry.find(version)  # UnknownVersion before the confirmation, not after
        return f"{action} {version} (serving {serving} now); reason: {reason}", version, ""
    return f"{action} learning (serving {serving} goes on); reason: {reason}", "", ""


def _utc_field(name: str) -> float:
    text = form_field(name, 40)
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()
    except ValueError:
        raise ValueError(f"{name}: a UTC date and time such as 2026-11-29T20:00, not {text[:40]!r}") from None


def _policies(text: str) -> list[dict[str, str]]:
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        name, bar, arguments = line.partition("|")
        if not bar or not name.strip() or not arguments.strip():
            raise ValueError(f"policies line {number}: write 'name | VW arguments'")
        found.append({"name": name.strip()[:100], "arguments": arguments.strip()[:MAX_FIELD]})
    if len(found) > MAX_POLICIES:
        raise ValueError(f"policies: at most {MAX_POLICIES}")
    return found


@bp.post("/evaluations")
def evaluation_start() -> Response:
    """Start an offline evaluation of candidate policies over a time range; show it running."""
    if (refused := refuse_without_csrf()) is not None:
        return refused
    res = resources()
    try:
        start, end = _utc_field("start"), _utc_field("end")
        if end <= start:
            raise ValueError("end: must be after start")
        record = EvaluationRecord(
            id=uuid.uuid4().hex,
            name=form_field("name", 100) or "console evaluation",
            status="Running",
            start_time=start,
            end_time=end,
            created_at=time.time(),
            request={"policies": _policies(request.form.get("policies", "")[: MAX_POLICIES * MAX_FIELD])},
            result=None,
            error=None,
        )
        evaluation_runs.start(res.store, res.live_rules(), record)
    except ValueError as error:
        now = res.store.clock()
        return page(
            "evaluations.html",
            status=422,
            records=data.evaluations(res),
            error=str(error),
            default_start=now - 86400,
            default_end=now,
            active="evaluations",
        )
    return redirect(url_for("console.evaluation", evaluation_id=record.id), code=303)  # type: ignore[return-value]


@bp.post("/evaluations/<evaluation_id>/apply")
def evaluation_apply(evaluation_id: str) -> Response:
    """Confirm, then serve untrained the policy an evaluation found best (as applyFromEvaluation does)."""
    if (refused := refuse_without_csrf()) is not None:
        return refused
    res = resources()
    record = EvaluationStore(res.store).find(evaluation_id[:256])
    reason = form_field("reason", MAX_REASON)
    if record is None or record.result is None:
        return page("error.html", status=409, message="that evaluation has no result to apply")
    wanted = form_field("policy", 100) or record.result.get("optimalPolicy")
    rows = [p for p in record.result["policies"] if p["policySource"] == "Custom" and p["name"] == wanted]
    if not rows:
        return page(
            "error.html", status=409, message="the evaluation found no policy better than the online one"
        )
    if not reason:
        return page("error.html", status=422, message="reason: say why, for the change history")
    summary = (
        f"serve {wanted!r} ({rows[0]['arguments']}) untrained, from evaluation {record.name!r};"
        f" reason: {reason}"
    )
    if request.form.get("confirmed") != "yes":
        fields: dict[str, Any] = {"policy": wanted, "reason": reason}
        return page(
            "confirm.html",
            summary=summary,
            target=url_for("console.evaluation_apply", evaluation_id=record.id),
            fields=fields,
        )
    try:
        res.registry.start_fresh(
            rows[0]["arguments"],
            actor=session().actor,
            reason=f"applied {wanted!r} from evaluation {record.id!r}: {reason}",
        )
    except (ValueError, RegistryError) as error:
        return page("error.html", status=409, message=f"refused: {error}")
    res.served.refresh()
    return notice_redirect("console.models", f"done: {summary}")


@bp.post("/settings")
def settings_change() -> Response:
    """Change or reset live settings through the same checks as PATCH /v1/config: all or none."""
    if (refused := refuse_without_csrf()) is not None:
        return refused
    res = resources()
    body: dict[str, Any] = {}
    for name in LIVE_SETTINGS:
        if request.form.get(f"reset.{name}") == "yes":
            body[name] = None
        elif (value := form_field(f"value.{name}", 200)) and value != request.form.get(f"was.{name}"):
            body[name] = value
    problems: dict[str, str] = {}
    try:
        values, reset = patch_values(ConfigPatch.model_validate(body))
        if values or reset:
            res.config.change(values, reset=reset)
    except ValidationError as error:
        for item in error.errors(include_url=False):
            problems[".".join(str(p) for p in item["loc"])] = item["msg"]
    except InvalidSetting as error:
        problems[error.field] = error.problem
    if problems:
        return page(
            "settings.html", status=422, config=data.settings(res), errors=problems, active="settings"
        )
    changed = ", ".join(sorted(body)) or "nothing"
    return notice_redirect("console.settings", f"changed: {changed}")
