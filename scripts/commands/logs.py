"""`xsell logs`: retention of the decision log."""

from __future__ import annotations

import click

from scripts.log_location import located_settings, log_options


@click.group()
def logs() -> None:
    """Look after the decision log: retention.

    Example:

        xsell logs purge --older-than 90d
    """


def parse_age(text: str) -> float:
    """Return seconds for an age like 90d, 12h, 30m or 3600s."""
    units = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
    number, unit = text[:-1], text[-1:].lower()
    try:
        value = float(number)
    except ValueError:
        raise click.BadParameter(f"{text!r}: use a number and d, h, m or s, e.g. 90d") from None
    if unit not in units or value <= 0:
        raise click.BadParameter(f"{text!r}: use a positive number and d, h, m or s, e.g. 90d")
    return value * units[unit]


@logs.command("purge")
@log_options()
@click.option("--older-than", "older_than", required=True, help="Age, e.g. 90d, 12h, 30m.")
@click.option("--dry-run", is_flag=True, help="Say how much would go; delete nothing.")
def logs_purge(older_than: str, dry_run: bool) -> None:
    """Delete decisions, their feedback and pacing history older than an age (retention).

    Example:

        xsell logs purge --older-than 90d
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
