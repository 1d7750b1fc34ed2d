"""Options several `xsell` commands share, declared once so their flags and help agree."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["json_option", "reason_option"]

F = TypeVar("F", bound=Callable[..., Any])


def json_option(help: str | None = "Print JSON instead of a table.") -> Callable[[F], F]:
    """Add --json (passed as `as_json`): the output is data, so a script can read it."""
    return click.option("--json", "as_json", is_flag=True, help=help)


def reason_option() -> Callable[[F], F]:
    """Add --reason: why an operator changed what serves, kept in the change history."""
    return click.option("--reason", help="Why; kept in the change history.")
