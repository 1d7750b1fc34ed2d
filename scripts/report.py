"""`xsell evaluate --report DIR`: a Markdown report with PNG plots."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from policies.evaluation.log_summary import LogSummary
from policies.evaluation.replay import PolicyReport

__all__ = ["ReportUnavailable", "check_available", "write_report"]


class ReportUnavailable(Exception):
    """The plots need matplotlib, an optional extra that is not installed."""


def _pyplot() -> Any:
    """Return matplotlib.pyplot drawing to files only (matplotlib is the ``report`` extra)."""
    try:
        import matplotlib
    except ImportError:
        raise ReportUnavailable(
            "--report draws its plots with matplotlib, which is not installed: pip install 'xsell[report]'"
        ) from None
    matplotlib.use("Agg")  # files only; never open a window or need a display
    import matplotlib.pyplot as plt

    return plt


def check_available() -> None:
    """Raise ReportUnavailable now, before a long evaluation, if the report could not be drawn."""
    _pyplot()


def write_report(directory: Path, table: str, reports: Sequence[PolicyReport], summary: LogSummary) -> Path:
    """Write report.md and its plots into `directory`; return the report's path."""
    directory.mkdir(parents=True, exist_ok=True)
    _plot_estimates(directory / "estimates.png", reports)
    _plot_reward_over_time(directory / "reward_over_time.png", summary)
    sections = [
        "# xsell offline evaluation",
        f"Generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC}. "
        f"{summary.decisions:,} decisions logged between {_when(summary.first_at)} "
        f"and {_when(summary.last_at)}.",
        "## Estimates",
        "```\n" + table + "\n```",
        "![Estimated average reward per decision, with intervals](estimates.png)",
        "## Reward over time, per model version",
        "![Mean reward per decision over time, one line per model version](reward_over_time.png)",
    ]
    if summary.exploration is not None:
        _plot_exploration(directory / "exploration.png", summary)
        share = sum(
            v * c for v, c in zip(summary.exploration.values, summary.exploration.counts, strict=True)
        )
        sections += [
            "## Exploration",
            f"{share / summary.decisions:.1%} of decisions showed a first offer other than the policy's "
            "most likely one.",
            "![Share of decisions that explored, over time](exploration.png)",
        ]
    sections += [
        "## How to read this",
        "IPS and SNIPS reweight logged rewards; DM trusts a cross-fitted reward model; DR and SNDR "
        "combine both. Trust an estimate less when its interval is wide or its ESS (effective sample "
        "size) is small next to n: the log then says little about that policy. Multi-slot decisions "
        "use cascade weights (the reward of a slot may depend on the offers above it).",
        "The lines under the table say how well the reward model predicted rewards it never saw: its "
        "Brier score (mean squared error) against predicting the mean reward, and the skill between "
        "them. At a skill near 0 the model knows only the average, DM cannot tell policies apart, and "
        "DR is about IPS; a negative skill means it fits noise.",
    ]
    path = directory / "report.md"
    path.write_text("\n\n".join(sections) + "\n")
    return path


def _when(timestamp: float) -> str:
    return f"{datetime.fromtimestamp(timestamp, UTC):%Y-%m-%d %H:%M}"


def _plot_estimates(path: Path, reports: Sequence[PolicyReport]) -> None:
    plt = _pyplot()
    rows = [(r.policy, e) for r in reports for e in r.estimates]
    figure, axes = plt.subplots(figsize=(9, 0.35 * len(rows) + 1.5))
    for y, (_, estimate) in enumerate(rows):
        axes.errorbar(
            estimate.value,
            y,
            xerr=[[estimate.value - estimate.low], [estimate.high - estimate.value]],
            fmt="o",
            capsize=3,
        )
    axes.set_yticks(range(len(rows)), [f"{p[:40]} · {e.estimator}" for p, e in rows], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("estimated average reward per decision")
    axes.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _plot_reward_over_time(path: Path, summary: LogSummary) -> None:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(9, 4))
    for series in summary.reward_by_version:
        times = [datetime.fromtimestamp(t, UTC) for t in series.times]
        axes.plot(times, series.values, marker=".", label=series.name)
    axes.set_ylabel("mean reward per decision")
    if len(summary.reward_by_version) <= 12:
        axes.legend(fontsize=8)
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _plot_exploration(path: Path, summary: LogSummary) -> None:
    plt = _pyplot()
    assert summary.exploration is not None
    figure, axes = plt.subplots(figsize=(9, 3))
    times = [datetime.fromtimestamp(t, UTC) for t in summary.exploration.times]
    axes.plot(times, summary.exploration.values, marker=".")
    axes.set_ylim(0, 1)
    axes.set_ylabel("share of decisions exploring")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
