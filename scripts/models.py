"""`xsell models ...`: list, activate, roll back, promote, freeze, export and import models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

__all__ = ["render_overview"]


def render_overview(overview: dict[str, Any]) -> str:
    """Return the human-readable listing of `models_overview`."""
    lines = [
        f"active: {overview['active']}   learning: {'FROZEN' if overview['learning_frozen'] else 'on'}   "
        f"versions: {overview['versions_total']}",
        "",
        f"{'version':<8} {'state':<9} {'parent':<8} {'created (UTC)':<19} {'learned':>8} "
        f"{'served':>7} {'reward':>8} {'95% interval':>19}  note",
    ]
    within = overview.get("decisions_within_window", 0)
    if within:
        lines.insert(
            1, f"served and reward count decisions whose reward window has ended; {within:,} still within it"
        )
    for row in overview["versions"]:
        online = row["online"] or {}
        served = online.get("decisions", 0)
        reward = f"{online['mean_reward']:.4f}" if online else "-"
        interval = f"[{online['low']:.3f}, {online['high']:.3f}]" if online.get("low") is not None else "-"
        note = row["note"] or ""
        if not row["file_kept"]:
            note = ("file pruned; " + note).strip("; ")
        created = datetime.fromtimestamp(row["created_at"], UTC).strftime("%Y-%m-%d %H:%M:%S")
        lines.append(
            f"{row['version']:<8} {row['state']:<9} {row['parent'] or '-':<8} {created:<19} "
            f"{row['events_learned']:>8} {served:>7} {reward:>8} {interval:>19}  {note}"
        )
    if overview["changes"]:
        lines += ["", "recent changes:"]
        for change in overview["changes"][:10]:
            at = datetime.fromtimestamp(change["at"], UTC).strftime("%Y-%m-%d %H:%M:%S")
            lines.append(
                f"  {at} {change['action']:<9} {change['version']:<8} (was {change['previous'] or '-'}) "
                f"by {change['actor']}: {change['reason'] or '-'}"
            )
    shadow = overview.get("shadow")
    if shadow:
        lines += ["", f"shadow: {shadow['vw_args']} (latest {shadow['version'] or 'not yet published'})"]
        lines.append(
            f"  scored {shadow['decisions_scored']} decisions, agrees with the active top offer "
            f"{shadow['agreement']:.1%}"
        )
        if shadow["served"]:
            served = shadow["served"]
            lines.append(
                f"  served policies earned {served['value']:.4f} [{served['low']:.4f}, {served['high']:.4f}]"
            )
        for estimate in shadow["estimates"]:
            lines.append(
                f"  shadow {estimate['estimator']:<6} {estimate['value']:.4f} "
                f"[{estimate['low']:.4f}, {estimate['high']:.4f}] ESS {estimate['ess']:.0f}"
            )
    return "\n".join(lines)
