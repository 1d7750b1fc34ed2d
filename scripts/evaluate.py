"""`xsell evaluate`: replay a decision log and estimate what candidate policies would earn."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from logs.archive import ArchiveUnavailable, read_archive
from logs.db import LogUnavailable
from logs.model_index import ModelIndex
from logs.obd import ObdFormatError, read_obd
from logs.replay import closed_decisions
from logs.store import LogStore, StoreOptions
from policies.base import ModelFormatError, Policy
from policies.evaluation.candidates import Candidate, parse_candidate
from policies.evaluation.dataset import LoggedDecision
from policies.evaluation.estimators import Bootstrap, InvalidLog, Normal
from policies.evaluation.log_summary import LogSummary, summarise
from policies.evaluation.replay import EvaluationOptions, PolicyReport, evaluate_log
from policies.evaluation.reward_model import RewardModelOptions, RewardModelQuality
from policies.learning.registry import ModelRegistry
from service.effective import effective
from service.resources import open_registry
from service.settings import Settings

__all__ = [
    "EvaluationFailed",
    "Loaded",
    "describe_reward_model",
    "load_archive",
    "load_log",
    "load_obd",
    "render_table",
    "run",
    "to_json",
]

# What can go wrong with a log or a request, as opposed to a bug: shown as one line.
EXPECTED_ERRORS = (InvalidLog, ObdFormatError, LogUnavailable, ModelFormatError, ValueError, OSError)


class EvaluationFailed(Exception):
    """The evaluation cannot run; the message says why in one sentence."""


@dataclass(frozen=True, slots=True)
class Loaded:
    """Decisions ready to replay, where they came from, and what could judge them."""

    source: str
    decisions: list[LoggedDecision]
    open_events: int
    registry: ModelRegistry | None


def load_log(settings: Settings, model_dir: Path | None, *, limit: int | None) -> Loaded:
    """Read every closed decision from the settings' log, with rewards by the rules in force for it.

    The log is the service's: the SQLite file, or the PostgreSQL database
    XSELL_DATABASE_URL names (its model files are read from the database, cached in
    `model_dir`). Nothing is migrated or written: evaluating is reading.
    """
    database = settings.database
    if database.is_postgresql:
        where = database.redacted()
    else:
        where = str(settings.resolved_log_path)
        if not settings.resolved_log_path.is_file():
            raise EvaluationFailed(f"{where}: no such log file")
        # a log named by --log keeps its models beside it, as the service does
        model_dir = model_dir or settings.model_dir or settings.resolved_log_path.parent / "models"
    store = LogStore(database, StoreOptions(settings.busy_timeout_seconds, settings.log_synchronous))
    if not store.has_schema():
        raise EvaluationFailed(f"{where}: not an xsell log (no decisions table)")
    # the rules in force for this log (its live overrides included), as the learner uses them
    in_force = effective(settings, ModelIndex(store))
    rules = in_force.rules
    now = time.time()
    decisions = closed_decisions(store, rules.slot_rewards, closed_before=now, limit=limit)
    total = store.conn.execute("SELECT count(*) FROM decisions").fetchone()[0]
    closed = store.conn.execute("SELECT count(*) FROM decisions WHERE closes_at <= ?", (now,)).fetchone()[0]
    if not decisions and total > closed:  # not "the log is empty": it holds decisions, none closed yet
        window = in_force.settings.reward_window_seconds
        raise EvaluationFailed(
            f"no closed decisions to evaluate: {total - closed:,} logged, all still open (within the "
            f"reward window, {window:g} s, or awaiting activation); evaluate once a window has ended"
        )
    registry = open_registry(settings, ModelIndex(store), model_dir, reader=True)
    return Loaded(where, decisions, int(total - closed), registry)


def load_archive(directory: Path, settings: Settings, *, limit: int | None) -> Loaded:
    """Read decisions archived to Parquet (logs/archive.py) as the log would give them.

    Rewards follow the rules in force for the log `settings` name, if there is one
    (its models are then candidates too), else the settings' own rules.
    """
    if not directory.is_dir():
        raise EvaluationFailed(f"{directory}: no such directory")
    rules, registry = settings.reward_rules(), None
    log = settings.resolved_log_path
    if log.is_file():
        store = LogStore(log, StoreOptions(settings.busy_timeout_seconds, settings.log_synchronous))
        if store.has_schema():
            rules = effective(settings, ModelIndex(store)).rules
            models = settings.model_dir or log.parent / "models"
            registry = open_registry(settings, ModelIndex(store), models, reader=True)
    try:
        decisions = read_archive(directory, rules.slot_rewards, limit=limit)
    except ArchiveUnavailable as error:
        raise EvaluationFailed(str(error)) from error
    return Loaded(str(directory), decisions, 0, registry)


def load_obd(directory: Path, *, limit: int | None) -> Loaded:
    """Read a log in the Open Bandit Dataset's layout."""
    return Loaded(str(directory), read_obd(directory, limit=limit), 0, None)


def default_policies(loaded: Loaded) -> list[str]:
    """Uniform, most-popular and, for an xsell log, the active model."""
    specs = ["uniform", "most-popular"]
    if loaded.registry is not None:
        active = loaded.registry.active()
        if active is not None:
            specs.append(f"model:{active.version}")
    return specs


def build_candidates(specs: Sequence[str], registry: ModelRegistry | None) -> list[Candidate]:
    """Turn policy specs into candidates, loading registry versions checksum first."""

    def load_model(version: str) -> tuple[Policy, float]:
        if registry is None:
            raise EvaluationFailed(f"model:{version}: an imported log has no model registry")
        versions = registry.index.versions()
        if version == "active":
            active = registry.active()
            version = active.version if active else version
        for model in versions:
            if model.version == version:
                return registry.load(model), model.created_at
        known = ", ".join(m.version for m in versions) or "none"
        raise EvaluationFailed(f"model:{version}: no such version in the registry (known: {known})")

    return [parse_candidate(spec, load_model) for spec in specs]


def run(
    loaded: Loaded,
    specs: Sequence[str],
    options: EvaluationOptions,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[PolicyReport], LogSummary, RewardModelQuality | None]:
    """Evaluate every candidate on the loaded decisions; also say how good the reward model was.

    `progress` hears of decisions replayed: each candidate replays every decision.
    """
    candidates = build_candidates(specs or default_policies(loaded), loaded.registry)
    evaluation = evaluate_log(loaded.decisions, candidates, options, progress)
    return evaluation.reports, summarise(loaded.decisions), evaluation.reward_model


def options_from(
    *,
    interval: str,
    level: float,
    bootstrap_samples: int,
    folds: int,
    reward_model: bool,
    seed: int,
    reward_model_kind: str = "auto",
) -> EvaluationOptions:
    """Build EvaluationOptions from command-line choices."""
    chosen = (
        Bootstrap(level=level, samples=bootstrap_samples, seed=seed)
        if interval == "bootstrap"
        else Normal(level=level)
    )
    model = RewardModelOptions(folds=folds, seed=seed, kind=reward_model_kind) if reward_model else None
    return EvaluationOptions(interval=chosen, reward_model=model)


def describe_reward_model(quality: RewardModelQuality, folds: int) -> list[str]:
    """Return the lines that say which reward model DM, DR and SNDR used and how well it predicted."""
    log_loss = (
        f", log-loss {quality.log_loss:.4f} (mean: {quality.baseline_log_loss:.4f})"
        if quality.log_loss is not None and quality.baseline_log_loss is not None
        else ""
    )
    lines = [
        f"reward model for DM, DR, SNDR: {quality.kind} ({quality.reason}), {folds}-fold cross-fitted",
        f"  on {quality.n:,} held-out logged offers: Brier {quality.brier:.6f} "
        f"(predicting the mean: {quality.baseline_brier:.6f}, skill {quality.skill:+.4f}){log_loss}; "
        f"mean prediction {quality.mean_prediction:.4f}, mean reward {quality.mean_reward:.4f}",
    ]
    if quality.skill < 0.01:
        lines.append(
            "  it predicts hardly better than the mean reward (skill under 0.01): DM barely tells "
            "policies apart, and DR is about IPS"
        )
    return lines


def render_table(
    loaded: Loaded,
    reports: Sequence[PolicyReport],
    options: EvaluationOptions,
    quality: RewardModelQuality | None = None,
) -> str:
    """Return the human-readable table, and the reward model's held-out quality under it."""
    level = f"{options.interval.level:.0%}"
    lines = [
        f"{len(loaded.decisions):,} closed decisions from {loaded.source}"
        + (
            f" ({loaded.open_events:,} still within their reward window, not counted: more feedback may come)"
            if loaded.open_events
            else ""
        ),
        f"estimated average reward per decision, {level} intervals by {options.interval.name}",
        "",
        f"{'policy':<44} {'estimator':<10} {'value':>9} {level + ' interval':>22} {'n':>9} {'ESS':>9}",
    ]
    for report in reports:
        if not report.estimates:
            lines.append(f"{report.policy:<44} {'-':<10} {report.note}")
        for estimate in report.estimates:
            interval = f"[{estimate.low:.4f}, {estimate.high:.4f}]"
            lines.append(
                f"{report.policy[:44]:<44} {estimate.estimator:<10} {estimate.value:9.4f} {interval:>22} "
                f"{estimate.n:9d} {estimate.ess:9.1f}"
            )
    if quality is not None and options.reward_model is not None:
        lines += ["", *describe_reward_model(quality, options.reward_model.folds)]
    return "\n".join(lines)


def to_json(
    loaded: Loaded,
    reports: Sequence[PolicyReport],
    summary: LogSummary,
    options: EvaluationOptions,
    quality: RewardModelQuality | None = None,
) -> dict[str, Any]:
    """Return everything the table shows, plus the log summary, as plain data."""
    reward_model = None
    if options.reward_model is not None:
        reward_model = {**asdict(options.reward_model), "quality": asdict(quality) if quality else None}
    return {
        "source": loaded.source,
        "decisions": len(loaded.decisions),
        "open_events": loaded.open_events,
        "interval": {"method": options.interval.name, "level": options.interval.level},
        "reward_model": reward_model,
        "policies": [
            {
                "policy": r.policy,
                "n": r.n,
                "note": r.note,
                "estimates": [asdict(e) for e in r.estimates],
            }
            for r in reports
        ],
        "summary": asdict(summary),
    }
