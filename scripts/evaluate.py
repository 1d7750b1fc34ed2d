"""`xsell evaluate`: replay a decision log and estimate what candidate policies would earn."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from logs.db import LogUnavailable
from logs.model_index import ModelIndex
from logs.obd import ObdFormatError, read_obd
from logs.store import LogStore, StoreOptions
from policies.base import ModelFormatError, Policy
from policies.candidates import Candidate, parse_candidate
from policies.dataset import LoggedDecision
from policies.estimators import Bootstrap, InvalidLog, Normal
from policies.evaluation import EvaluationOptions, PolicyReport, evaluate
from policies.log_summary import LogSummary, summarise
from policies.registry import ModelRegistry
from policies.reward_model import RewardModelOptions
from service.settings import Settings

__all__ = ["EvaluationFailed", "Loaded", "load_log", "load_obd", "render_table", "run", "to_json"]

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


def load_log(path: Path, model_dir: Path, settings: Settings, *, limit: int | None) -> Loaded:
    """Read every closed decision from an xsell log, with rewards by the configured rules."""
    if not path.is_file():
        raise EvaluationFailed(f"{path}: no such log file")
    store = LogStore(path, StoreOptions(settings.busy_timeout_seconds, settings.log_synchronous))
    if not store.has_schema():
        raise EvaluationFailed(f"{path}: not an xsell log (no decisions table)")
    rules = settings.reward_rules()
    now = time.time()
    decisions: list[LoggedDecision] = []
    cursor = None
    while limit is None or len(decisions) < limit:
        page = store.replay_events(closed_before=now, after=cursor, limit=1000)
        for event, _ in page:
            rewards = tuple(rules.reward_for(event.feedback, c.action_id) for c in event.choices)
            decisions.append(LoggedDecision(event, rewards))
        if len(page) < 1000:
            break
        cursor = page[-1][1]
    decisions = decisions[:limit] if limit is not None else decisions
    total = store.conn.execute("SELECT count(*) FROM decisions").fetchone()[0]
    closed = store.conn.execute("SELECT count(*) FROM decisions WHERE closes_at <= ?", (now,)).fetchone()[0]
    registry = ModelRegistry(model_dir, ModelIndex(store), keep_files=settings.model_keep)
    return Loaded(str(path), decisions, int(total - closed), registry)


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
    loaded: Loaded, specs: Sequence[str], options: EvaluationOptions
) -> tuple[list[PolicyReport], LogSummary]:
    """Evaluate every candidate on the loaded decisions."""
    candidates = build_candidates(specs or default_policies(loaded), loaded.registry)
    reports = evaluate(loaded.decisions, candidates, options)
    return reports, summarise(loaded.decisions)


def options_from(
    *, interval: str, level: float, bootstrap_samples: int, folds: int, reward_model: bool, seed: int
) -> EvaluationOptions:
    """Build EvaluationOptions from command-line choices."""
    chosen = (
        Bootstrap(level=level, samples=bootstrap_samples, seed=seed)
        if interval == "bootstrap"
        else Normal(level=level)
    )
    model = RewardModelOptions(folds=folds, seed=seed) if reward_model else None
    return EvaluationOptions(interval=chosen, reward_model=model)


def render_table(loaded: Loaded, reports: Sequence[PolicyReport], options: EvaluationOptions) -> str:
    """Return the human-readable table."""
    level = f"{options.interval.level:.0%}"
    lines = [
        f"{len(loaded.decisions):,} closed decisions from {loaded.source}"
        + (f" ({loaded.open_events:,} still open, not counted)" if loaded.open_events else ""),
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
    return "\n".join(lines)


def to_json(
    loaded: Loaded, reports: Sequence[PolicyReport], summary: LogSummary, options: EvaluationOptions
) -> dict[str, Any]:
    """Return everything the table shows, plus the log summary, as plain data."""
    return {
        "source": loaded.source,
        "decisions": len(loaded.decisions),
        "open_events": loaded.open_events,
        "interval": {"method": options.interval.name, "level": options.interval.level},
        "reward_model": None if options.reward_model is None else asdict(options.reward_model),
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
