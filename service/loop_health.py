"""What the console and /metrics show about the loop, read from the rollups.

Plain functions returning dataclasses; every figure carries its unit, its window,
the moment it is true as of, its age and whether it is stale. Counts of decisions
and feedback are exact at any moment (the rollups plus the rows they have not
reached yet). Figures about rewards only count decisions whose reward window ended,
up to the rollups' watermark, which is their ``as_of``: they say so in ``window``.
Each function reads rollup rows over its window, never the whole log
(``xsell bench console`` times them with a million decisions).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from statistics import NormalDist

from logs.model_index import ModelIndex
from logs.rollup_queries import RollupReader
from logs.rollups import DELAY_EDGES_SECONDS, Watermarks
from logs.store import LogStore
from policies.learning.learner import SKIPPED_OVERSIZED_KEY
from service import http_metrics
from service.personalizer import unmatched as personalizer_unmatched

__all__ = [
    "Figure",
    "LearningView",
    "LoopHealth",
    "OffersView",
    "Series",
    "learning",
    "loop_health",
    "offers",
]

STALE_AFTER_SECONDS = 60.0  # the learner rolls up every few seconds; a minute behind is stale
Z95 = NormalDist().inv_cdf(0.975)


@dataclass(frozen=True, slots=True)
class Figure:
    """One number for an operator, with what it means and how fresh it is."""

    name: str
    value: float | None  # None: nothing to report yet (no decisions in the window, say)
    unit: str
    window: str
    as_of: float  # seconds since the epoch the figure is true at
    age_seconds: float
    is_stale: bool
    note: str = ""


@dataclass(frozen=True, slots=True)
class LoopHealth:
    now: float
    window_minutes: int
    figures: dict[str, Figure]
    per_minute: list[dict[str, float]]  # minute start, decisions, feedback, late
    delay_histogram: list[dict[str, float]]  # le (seconds, inf last), count
    feedback_by_signal: dict[str, int]
    errors: list[dict[str, object]]  # route, status, code, count (since the service started)


@dataclass(frozen=True, slots=True)
class Series:
    """Mean reward per time bucket for one model version (or range of versions), ended windows only."""

    name: str
    points: list[dict[str, float]]  # start, n, mean, low, high


@dataclass(frozen=True, slots=True)
class LearningView:
    now: float
    window_hours: int
    bucket_minutes: int
    as_of: float
    age_seconds: float
    is_stale: bool
    by_version: list[Series]
    # per hour: policy -> {value, low, high, n}; logged, uniform and most-popular on the same sample
    compared: list[dict[str, object]]
    overall: Figure
    since: float  # where the buckets start (a bucket edge: up to a bucket before now - window)


@dataclass(frozen=True, slots=True)
class OffersView:
    now: float
    window_hours: int
    as_of: float
    is_stale: bool
    by_category: list[dict[str, object]]
    by_offer: list[dict[str, object]]
    pacing: list[dict[str, object]]  # verdict, reason, count (in the window)
    since: float  # where the window starts: the hour holding now - window_hours
    no_offer: dict[str, float] = field(default_factory=dict)  # reason -> answers since start


def _freshness(marks: Watermarks, now: float, grace_seconds: float) -> tuple[float, bool]:
    """Age of the reward figures (how far the ended watermark trails now) and whether stale."""
    if marks.updated_at is None:
        return math.inf, True
    age = (
        max(now - grace_seconds - marks.ended_closes_at, 0.0)
        if math.isfinite(marks.ended_closes_at)
        else math.inf
    )
    return age, age > STALE_AFTER_SECONDS


def loop_health(
    store: LogStore, *, now: float | None = None, window_minutes: int = 60, grace_seconds: float = 0.5
) -> LoopHealth:
    """Decisions and feedback per minute, feedback share, delays, late and unmatched feedback,
    learner lag, exploration share and errors by kind, over the last `window_minutes`."""
    now = store.clock() if now is None else now
    reader = RollupReader(store)
    marks = reader.watermarks()
    first = int(now // 60) - window_minutes + 1
    window = f"last {window_minutes} min"
    # The window is whole minutes up to the current one, which has only begun: rates divide
    # by the time it really spans (window_minutes - 1 and the current minute's seconds), so
    # they do not dip by up to a minute's worth every time a minute starts.
    span_minutes = max((now - first * 60) / 60, 1.0)
    minutes: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    totals: dict[str, float] = defaultdict(float)
    for row in reader.decisions_by_minute(first):
        m = minutes[row["minute"]]
        m["decisions"] += row["decisions"]
        for key in ("explored", "ended", "answered"):
            totals[key] += row[key]
    tail = reader.decisions_tail(marks)
    for row in tail.rows:
        minute = int(row["created_at"] // 60)
        if minute >= first:
            minutes[minute]["decisions"] += 1
            totals["explored"] += reader.explored(row)
    signals: dict[str, int] = defaultdict(int)
    delays = [0] * (len(DELAY_EDGES_SECONDS) + 1)
    rolled = [
        (r["minute"], r["signal"], r["on_time"], r["delay_bucket"], r["count"])
        for r in reader.feedback_by_minute(first)
    ]
    feedback_tail, feedback_complete = reader.feedback_tail(marks)
    rolled += [(*key, 1) for key in feedback_tail if key[0] >= first]
    for minute, signal, on_time, bucket, count in rolled:
        minutes[minute]["feedback"] += count
        if not on_time:
            minutes[minute]["late"] += count
        signals[signal] += count
        delays[bucket] += count
    decisions = sum(m["decisions"] for m in minutes.values())
    feedback = sum(signals.values())
    late = sum(m["late"] for m in minutes.values())
    age, stale = _freshness(marks, now, grace_seconds)
    counts_exact = tail.complete and feedback_complete
    behind = "" if counts_exact else "the rollups are far behind: counts stop at the newest rows they reached"
    due, last_snapshot = reader.learner_lag(now - grace_seconds)
    wall = time.time()  # model versions are stamped with the wall clock
    errors = http_metrics.error_counts()
    unmatched = sum(
        v for (route, status, code), v in errors.items() if code in ("unknown_event", "unknown_action")
    )
    ended_note = f"{int(totals['ended'])} of the window's decisions had ended by as_of"

    def exact(name: str, value: float | None, unit: str) -> Figure:
        return Figure(name, value, unit, window, now, 0.0, not counts_exact, behind)

    def ended(name: str, value: float | None, unit: str) -> Figure:
        as_of = marks.ended_closes_at if math.isfinite(marks.ended_closes_at) else now
        return Figure(
            name, value, unit, f"{window}, decisions whose reward window ended", as_of, age, stale, ended_note
        )

    figures = [
        exact("decisions_per_minute", decisions / span_minutes, "decisions/min"),
        exact("feedback_per_minute", feedback / span_minutes, "feedback posts/min"),
        ended(
            "feedback_share",
            totals["answered"] / totals["ended"] if totals["ended"] else None,
            "share of decisions",
        ),
        exact("reward_delay_median_seconds", _quantile(delays, 0.5), "seconds (bucket upper edge)"),
        exact("reward_delay_p90_seconds", _quantile(delays, 0.9), "seconds (bucket upper edge)"),
        exact("late_feedback", late, "posts after the reward window"),
        Figure(
            "unmatched_feedback",
            unmatched,
            "posts naming an unknown event or offer",
            f"since the service started ({http_metrics.scope()})",
            now,
            0.0,
            False,
        ),
        Figure(
            "learner_lag_decisions", due, "decisions due but in no published model", "now", now, 0.0, False
        ),
        Figure(
            "seconds_since_snapshot",
            None if last_snapshot is None else max(wall - last_snapshot, 0.0),
            "seconds",
            "now",
            now,
            0.0,
            False,
            "" if last_snapshot else "no model published yet",
        ),
        exact(
            "exploration_share", totals["explored"] / decisions if decisions else None, "share of decisions"
        ),
    ]
    per_minute = [
        {
            "minute_start": m * 60.0,
            "decisions": minutes[m]["decisions"],
            "feedback": minutes[m]["feedback"],
            "late": minutes[m]["late"],
        }
        for m in range(first, int(now // 60) + 1)
    ]
    histogram = [{"le": edge, "count": delays[k]} for k, edge in enumerate((*DELAY_EDGES_SECONDS, math.inf))]
    error_rows = [
        {"route": route, "status": int(status), "code": code, "count": count}
        for (route, status, code), count in sorted(errors.items(), key=lambda item: -item[1])
    ]
    skipped = reader.control_count(SKIPPED_OVERSIZED_KEY)
    if skipped:  # the learner's own kind of error: logged decisions too costly to learn
        error_rows.append({"route": "learner", "status": 0, "code": "skipped_oversized", "count": skipped})
    # Personalizer calls answered 204 for an event the log does not hold (service/personalizer/unmatched.py)
    for call, count in personalizer_unmatched.counts_from(ModelIndex(store).control).items():
        if count:
            error_rows.append(
                {"route": "personalizer", "status": 204, "code": f"unmatched_{call}", "count": count}
            )
    return LoopHealth(
        now, window_minutes, {f.name: f for f in figures}, per_minute, histogram, dict(signals), error_rows
    )


def _quantile(counts: list[int], q: float) -> float | None:
    """The upper edge of the histogram bucket holding quantile `q` (inf: beyond the last edge)."""
    total = sum(counts)
    if not total:
        return None
    running = 0
    for k, count in enumerate(counts):
        running += count
        if running >= q * total:
            return DELAY_EDGES_SECONDS[k] if k < len(DELAY_EDGES_SECONDS) else math.inf
    return math.inf


def learning(
    store: LogStore,
    *,
    now: float | None = None,
    window_hours: int = 24,
    max_series: int = 8,
    grace_seconds: float = 0.5,
    reward_window_seconds: float = 0.0,
) -> LearningView:
    """Mean reward over time per model version, beside what uniform random and most-popular
    would have earned on the same decisions (per hour, estimated from the log with
    intervals). Only decisions whose reward window ended count."""
    now = store.clock() if now is None else now
    reader = RollupReader(store)
    marks = reader.watermarks()
    age, stale = _freshness(marks, now, grace_seconds)
    as_of = marks.ended_closes_at if math.isfinite(marks.ended_closes_at) else now
    bucket_minutes = max(1, window_hours * 60 // 48)
    first = int(now // 60) - window_hours * 60 + 1
    first -= first % bucket_minutes
    grouped, names, unknown = reader.reward_series(first, bucket_minutes, max_series)
    sums: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(lambda: [0.0, 0.0, 0.0]))
    overall = [0.0, 0.0, 0.0]
    order: dict[str, tuple[int, int | str]] = {}
    cells = [(names[r["grp"]], (0, r["grp"]), r) for r in grouped]
    cells += [(r["served"], (1, r["served"]), r) for r in unknown]  # versions the index does not know
    for name, rank, r in cells:
        order[name] = rank
        cell = sums[name][r["bucket"] * bucket_minutes]
        for target in (cell, overall):
            target[0] += r["n"]
            target[1] += r["total"]
            target[2] += r["squares"]
    series = [
        Series(name, [_point(minute * 60.0, *cell) for minute, cell in sorted(by_minute.items())])
        for name, by_minute in sorted(sums.items(), key=lambda item: order[item[0]])
    ]
    compared: dict[int, dict[str, object]] = {}
    # An hour is estimated once its last reward window ended, by a chore that runs every
    # minute: the hours before the window that may still be the newest estimated one.
    estimating_hours = 1 + math.ceil((reward_window_seconds + grace_seconds + 60.0) / 3600.0)
    for r in reader.learning_estimates(first // 60, newest_from=first // 60 - estimating_hours):
        if r["n"] == 0:
            continue
        hour = compared.setdefault(r["hour"], {"hour_start": r["hour"] * 3600.0, "decisions": r["decisions"]})
        hour[r["policy"]] = {
            "value": r["value"],
            "low": r["low"],
            "high": r["high"],
            "n": r["n"],
            "estimator": r["estimator"],
        }
    whole = _point(0.0, *overall)
    interval = (
        f"95% interval [{whole['low']:.4g}, {whole['high']:.4g}]" if overall[0] else "no ended decisions"
    )
    figure = Figure(
        "mean_reward",
        whole["mean"] if overall[0] else None,
        "reward per decision",
        f"last {window_hours} h, decisions whose reward window ended",
        as_of,
        age,
        stale,
        f"{interval}, n={int(overall[0])}",
    )
    return LearningView(
        now,
        window_hours,
        bucket_minutes,
        as_of,
        age,
        stale,
        series,
        [compared[h] for h in sorted(compared)],
        figure,
        first * 60.0,
    )


def _point(start: float, n: float, total: float, squares: float) -> dict[str, float]:
    """Mean with a normal 95% interval from n, sum and sum of squares."""
    mean = total / n if n else 0.0
    variance = max(squares - n * mean * mean, 0.0) / (n - 1) if n > 1 else 0.0
    half = Z95 * math.sqrt(variance / n) if n else 0.0
    return {"start": start, "n": n, "mean": mean, "low": mean - half, "high": mean + half}


def offers(
    store: LogStore, *, now: float | None = None, window_hours: int = 24, grace_seconds: float = 0.5
) -> OffersView:
    """Click-through, dismissals and revenue per offer shown, by category and by offer (ended
    windows only), pacing holds and no-offer reasons."""
    now = store.clock() if now is None else now
    reader = RollupReader(store)
    marks = reader.watermarks()
    _, stale = _freshness(marks, now, grace_seconds)
    as_of = marks.ended_closes_at if math.isfinite(marks.ended_closes_at) else now
    # Offers roll up by the hour: take every hour the window touches (window_hours to
    # window_hours + 1 of them), never fewer, and say where that starts.
    first_hour = int((now - window_hours * 3600) // 3600)

    def rates(row: object) -> dict[str, object]:
        shown = row["shown"] or 0  # type: ignore[index]
        figures: dict[str, object] = {"name": row["name"]}  # type: ignore[index]
        for key in ("shown", "clicked", "positive", "dismissed", "purchased", "revenue"):
            figures[key] = row[key]  # type: ignore[index]
        figures["click_through"] = row["clicked"] / shown if shown else None  # type: ignore[index]
        figures["dismiss_rate"] = row["dismissed"] / shown if shown else None  # type: ignore[index]
        figures["revenue_per_shown"] = row["revenue"] / shown if shown else None  # type: ignore[index]
        return figures

    pacing = [dict(r) for r in reader.pacing(first_hour * 60)]
    return OffersView(
        now,
        window_hours,
        as_of,
        stale,
        [rates(r) for r in reader.offers(first_hour, by="category")],
        [rates(r) for r in reader.offers(first_hour, by="offer")],
        pacing,
        first_hour * 3600.0,
        http_metrics.no_offer_counts(),
    )
