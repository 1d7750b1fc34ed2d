"""Console pages (GET): sign-in and every page of the navigation.

Health, learning, models, experiments, evaluations, offers, events, drift, settings.
"""

from __future__ import annotations

from flask import Response, redirect, request

from logs.evaluation_store import EvaluationStore
from service.console import bp, data, page, safe_next
from service.console import experiments as experiment_data
from service.console.session import COOKIE, current_session
from service.resources import resources

__all__: list[str] = []

# Windows an operator may choose; anything else falls back to the first.
WINDOWS = {"15m": 900.0, "1h": 3600.0, "6h": 21600.0, "24h": 86400.0, "7d": 604800.0}
# Offers roll up by the hour: a window shorter than one is not offered there.
HOURLY_WINDOWS = {name: seconds for name, seconds in WINDOWS.items() if seconds >= 3600.0}
MAX_EVENT_ID = 256


def _window(windows: dict[str, float] = WINDOWS) -> tuple[str, float]:
    name = request.args.get("window", "1h")
    return (name, windows[name]) if name in windows else ("1h", windows["1h"])


@bp.get("/signin")
def signin() -> Response:
    """Show the sign-in form (or go on to the console when already signed in)."""
    res = resources()
    if current_session(res) is not None and request.cookies.get(COOKIE):
        return redirect(safe_next(request.args.get("next")))  # type: ignore[return-value]
    return page("signin.html", next=safe_next(request.args.get("next")), error=None)


@bp.get("/")
def health() -> Response:
    """Loop health: traffic, feedback share, reward delays, learner lag, exploration."""
    name, seconds = _window()
    res = resources()
    found = data.loop_health(res, res.store.clock(), seconds)
    return page("health.html", health=found, window=name, windows=WINDOWS, active="health")


@bp.get("/learning")
def learning() -> Response:
    """Is it learning? Mean reward over time per version beside uniform and most popular."""
    name, seconds = _window()
    res = resources()
    found = data.learning_chart(res, res.store.clock(), seconds)
    return page("learning.html", chart=found, window=name, windows=WINDOWS, active="learning")


@bp.get("/models")
def models() -> Response:
    """Versions with their online metrics, the shadow, guardrail verdicts and the change history."""
    res = resources()
    return page("models.html", overview=data.models(res, res.store.clock()), active="models")


@bp.get("/experiments")
def experiments() -> Response:
    """Experiments, newest first, and the business rules in force with the campaigns' progress."""
    res = resources()
    found = experiment_data.overview(res, res.store.clock())
    return page("experiments.html", overview=found, active="experiments")


@bp.get("/experiments/<experiment_id>")
def experiment(experiment_id: str) -> Response:
    """One experiment: per-arm figures with anytime-valid intervals, lift, sample ratio; stop or ship."""
    res = resources()
    found = experiment_data.detail(res, experiment_id[:MAX_EVENT_ID], res.store.clock())
    if found is None:
        return page("error.html", status=404, message=f"no experiment {experiment_id[:80]!r}")
    return page(
        "experiment.html", found=found, metric_names=experiment_data.METRIC_NAMES, active="experiments"
    )


@bp.get("/evaluations")
def evaluations() -> Response:
    """Every offline evaluation; a form to start one."""
    res = resources()
    now = res.store.clock()
    return page(
        "evaluations.html",
        records=data.evaluations(res),
        default_start=now - 86400,
        default_end=now,
        active="evaluations",
    )


@bp.get("/evaluations/<evaluation_id>")
def evaluation(evaluation_id: str) -> Response:
    """One evaluation: status while it runs, then estimates with intervals (chart and table)."""
    record = EvaluationStore(resources().store).find(evaluation_id[:MAX_EVENT_ID])
    if record is None:
        return page("error.html", status=404, message=f"no evaluation {evaluation_id[:80]!r}")
    return page("evaluation.html", record=record, active="evaluations")


@bp.get("/offers")
def offers() -> Response:
    """Click-through, dismissals and revenue per offer and category; pacing and reviews."""
    name, seconds = _window(HOURLY_WINDOWS)
    res = resources()
    found = data.offers(res, res.store.clock(), seconds)
    return page("offers.html", offers=found, window=name, windows=HOURLY_WINDOWS, active="offers")


@bp.get("/events")
def events() -> Response:
    """The event inspector: why this offer, why not that one."""
    event_id = request.args.get("event_id", "").strip()
    if not event_id:
        return page("event.html", event=None, event_id="", active="events")
    if len(event_id) > MAX_EVENT_ID:
        return page(
            "event.html",
            status=422,
            event=None,
            event_id="",
            active="events",
            error=f"an event id has at most {MAX_EVENT_ID} characters",
        )
    found = data.event(resources(), event_id)
    if found is None:
        return page(
            "event.html",
            status=404,
            event=None,
            event_id=event_id,
            active="events",
            error="no decision with this event id is in the log",
        )
    return page("event.html", event=found, event_id=event_id, active="events")


@bp.get("/drift")
def drift() -> Response:
    """Drift alarms: which context features and reward rates moved against the reference window."""
    return page("drift.html", drift=data.drift(resources()), active="drift")


@bp.get("/settings")
def settings() -> Response:
    """Every setting in force with its source; the live ones can be edited."""
    return page("settings.html", config=data.settings(resources()), errors={}, active="settings")
