"""`xsell faults`: fault runs against the real service."""

from __future__ import annotations

import json

import click

from scripts.commands.options import json_option


@click.group()
def faults() -> None:
    """Fault runs against the real service (they need root: they mount filesystems).

    Example:

    \b
        sudo xsell faults disk
    """


@faults.command("disk")
@click.option(
    "--requests",
    "per_phase",
    type=click.IntRange(1, 10_000),
    default=30,
    show_default=True,
    help="Rank requests in each phase.",
)
@json_option("Print one JSON object instead of lines.")
def faults_disk(per_phase: int, as_json: bool) -> None:
    """Put the log on a small tmpfs, fill it while serving, then free it.

    Every answer must be a 2xx or a 503 with a JSON error, every 2xx decision must be
    in the log, and the service must recover. Exits 1 if any of that fails.
    """
    from scripts.devtools.faults import FaultsUnavailable, render, run_disk_faults

    try:
        result = run_disk_faults(requests_per_phase=per_phase)
    except FaultsUnavailable as error:
        raise click.ClickException(str(error)) from error
    click.echo(json.dumps(result, indent=2) if as_json else render(result))
    failed = (
        result["server_errors"] or result["accepted_but_missing_from_log"] or result["ready_when_full"] != 503
    )
    if failed or not result["service_alive"]:
        raise SystemExit(1)
