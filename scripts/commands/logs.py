"""`xsell logs`: retention of the decision log."""

from __future__ import annotations

import re

import click

from scripts.log_location import located_settings, log_options


@click.group()
def logs() -> None:
    """Look after the decision log: retention.

    Example:

    \b
        xsell logs purge --older-than 90d
    """


AGE_UNITS = {"d": 86_400, "h": 3_600, "min": 60, "s": 1}
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$")


def parse_age(text: str) -> float:
    """Return seconds for an age like 30d, 12h, 90min or 3600s.

    `m` is refused: one minute or one month? A retention command must not guess.
    """
    found = _AGE.match(text.lower())
    if found is None:
        raise click.BadParameter(f"{text!r}: use a number and d, h, min or s, e.g. 90d")
    number, unit = float(found[1]), found[2]
    if unit in ("m", "mo", "mon", "month", "months"):
        raise click.BadParameter(
            f"{text!r} is ambiguous (minutes or months?): use {found[1]}min or days, e.g. 30d"
        )
    if unit not in AGE_UNITS:
        raise click.BadParameter(f"{text!r}: unknown unit {unit!r}; use d, h, min or s, e.g. 90d")
    if number <= 0:
        raise click.BadParameter(f"{text!r}: use a positive age, e.g. 90d")
    return number * AGE_UNITS[unit]


@logs.command("purge")
@log_options()
@click.option(
    "--older-than",
    "older_than",
    required=True,
    help="Age: a number and d, h, min or s (30d, 12h, 90min); m is refused as ambiguous.",
)
@click.option("--dry-run", is_flag=True, help="Say how much would go; delete nothing.")
def logs_purge(older_than: str, dry_run: bool) -> None:
    """Delete decisions, their feedback and pacing history older than an age (retention).

    Example:

    \b
        xsell logs purge --older-than 90d --dry-run
        xsell logs purge --older-than 12h
    """
    import time

    from service.resources import open_log_and_registry

    cutoff = time.time() - parse_age(older_than)
    store, _ = open_log_and_registry(located_settings())
    if dry_run:
        count = store.conn.execute(
            "SELECT count(*) FROM decisions WHERE created_at < ?", (cutoff,)
        ).fetchone()[0]
        click.echo(f"would delete {count} decisions (and their feedback) older than {older_than}")
        return
    removed = store.purge(older_than=cutoff)
    click.echo(", ".join(f"{table}: {count}" for table, count in removed.items()))
