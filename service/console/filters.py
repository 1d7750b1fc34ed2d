"""Jinja filters that write numbers and times the same way on every console page."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint

__all__ = ["register"]


def utc(seconds: float | None) -> str:
    """Write a Unix time as ``2026-11-29 20:07:12 UTC`` (a dash for none)."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def number(value: Any, digits: int = 3) -> str:
    """Write a number with `digits` significant digits (a dash for none)."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return "∞" if value > 0 else "—"
    return f"{value:.{digits}g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def percent(value: float | None) -> str:
    """Write a share as a percentage with one decimal (a dash for none)."""
    return "—" if value is None else f"{100 * value:.1f}%"


def duration(seconds: float | None) -> str:
    """Write seconds as ``42 s``, ``3.5 min`` or ``2.0 h``."""
    if seconds is None:
        return "—"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def register(bp: Blueprint) -> None:
    """Make the filters available to every console template."""
    for name, function in (("utc", utc), ("number", number), ("percent", percent), ("duration", duration)):
        bp.add_app_template_filter(function, name)
