"""`xsell logs`: retention, consistent backups, and moving the log to PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

import click

from scripts.log_location import located_settings, log_options


@click.group()
def logs() -> None:
    """Look after the decision log: retention, backups, moving it to PostgreSQL.

    Example:

    \b
        xsell logs purge --older-than 90d
        xsell logs backup /backups/xsell-$(date +%F).db
        xsell logs copy --to postgresql://xsell@db.internal/xsell
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


@logs.command("backup")
@log_options()
@click.argument("dest", type=click.Path(dir_okay=False, path_type=Path))
def logs_backup(dest: Path) -> None:
    """Write a consistent copy of the live SQLite log to DEST (a new file), WAL included.

    Safe while the service runs: SQLite's online backup copies one moment of the log,
    including what the WAL still holds (a plain file copy misses it). On PostgreSQL use
    pg_dump instead (docs/deploy.md).

    Example:

    \b
        xsell logs backup /backups/xsell-2026-11-29.db
    """
    from logs.backup import backup_sqlite
    from logs.db import LogUnavailable

    settings = located_settings()
    if settings.database.is_postgresql:
        raise click.UsageError("the log is on PostgreSQL: back it up with pg_dump (docs/deploy.md)")
    try:
        counts = backup_sqlite(settings.resolved_log_path, dest)
    except (FileExistsError, LogUnavailable) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"backed up {settings.resolved_log_path} to {dest}: {_counts(counts)}")


@logs.command("copy")
@log_options()
@click.option("--to", "target", required=True, help="postgresql://user@host/database (an empty database).")
def logs_copy(target: str) -> None:
    """Copy the SQLite log into an empty PostgreSQL database; counts are checked.

    The database gets the log's schema from its migrations, then every row. Stop the
    service first (or copy a backup): rows written during the copy would not be in it.
    Everything is copied in one transaction, and each table's row count in PostgreSQL
    must equal SQLite's or nothing is committed.

    Example:

    \b
        xsell logs copy --to postgresql://xsell@db.internal/xsell
    """
    from logs.backup import copy_to_postgresql
    from logs.db import LogUnavailable
    from logs.dialect import parse_database_url

    settings = located_settings()
    try:
        url = parse_database_url(target, settings.resolved_log_path)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--to") from error
    if url.conninfo is None:
        raise click.BadParameter("copy goes to PostgreSQL: postgresql://…", param_hint="--to")
    try:
        counts = copy_to_postgresql(settings.resolved_log_path, url.conninfo)
    except (FileExistsError, LogUnavailable) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"copied {settings.resolved_log_path} to {url.redacted()}, counts checked: {_counts(counts)}")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{table} {count}" for table, count in counts.items())
