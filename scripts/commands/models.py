"""`xsell models`: see and change which model serves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from scripts.commands.options import json_option, reason_option
from scripts.log_location import located_settings, log_options
from service.settings import Settings


@click.group()
def models() -> None:
    """See and change which model serves: list, activate, rollback, promote, freeze, export, import.

    Changes reach every worker within XSELL_MODEL_POLL_SECONDS, without a restart.

    Example:

    \b
        xsell models list
        xsell models rollback --reason "offers went wrong after the catalog import"
    """


def _registry() -> tuple[Any, Any, Settings]:
    from service.resources import open_log_and_registry

    settings = located_settings()
    store, registry = open_log_and_registry(settings)
    return store, registry, settings


def _change(action: Any) -> None:
    """Run a registry change, printing it (and, for a rollback, what was chosen and why) or one error line."""
    from logs.db import LogUnavailable
    from policies.learning.registry import RegistryError, Rollback

    try:
        result = action()
    except (RegistryError, LogUnavailable) as error:
        raise click.ClickException(str(error)) from error
    change = result.change if isinstance(result, Rollback) else result
    if change is not None:
        click.echo(f"{change.action}: {change.version} is active (was {change.previous or '-'})")
    if isinstance(result, Rollback):
        # The reason names the version's training only when it learned nothing; the count once.
        learned = result.target.events_learned
        count = "" if learned == 0 else f" ({learned:,} event{'' if learned == 1 else 's'} learned)"
        click.echo(f"chosen: {result.why}{count}")


@models.command("list")
@log_options()
@click.option(
    "--limit", type=click.IntRange(1), default=20, show_default=True, help="Newest versions to show."
)
@json_option()
def models_list(limit: int, as_json: bool) -> None:
    """List versions (newest, plus the active one and candidates) with recent online metrics.

    Example:

    \b
        xsell models list --limit 50
    """
    from scripts.models import render_overview
    from service.overview import models_overview

    store, registry, settings = _registry()
    overview = models_overview(store, registry, settings, limit=limit)
    click.echo(json.dumps(overview, indent=2) if as_json else render_overview(overview))


@models.command("activate")
@log_options()
@click.argument("version")
@reason_option()
def models_activate(version: str, reason: str | None) -> None:
    """Serve VERSION from now on (its file is verified first).

    Example:

    \b
        xsell models activate v1200 --reason "known good"
    """
    _, registry, _ = _registry()
    _change(lambda: registry.activate(version, actor="cli", reason=reason))


@models.command("rollback")
@log_options()
@click.option(
    "--to",
    "to",
    help="Version to restore (default: a trained one, at least XSELL_ROLLBACK_DEFAULT_SECONDS older).",
)
@reason_option()
@click.option(
    "--relearn", is_flag=True, help="Let the restored model learn what the discarded versions learned."
)
@click.option("--freeze", is_flag=True, help="Also stop learning until `xsell models unfreeze`.")
def models_rollback(to: str | None, reason: str | None, relearn: bool, freeze: bool) -> None:
    """Serve an earlier version again; the learner continues from it, not from the bad one.

    Without --to it picks a version that learned events and prints which and why; it
    refuses when only untrained versions are kept (name one with --to to serve it).

    Example:

    \b
        xsell models rollback --to v1200 --freeze --reason "dismissals doubled"
    """
    _, registry, settings = _registry()
    _change(
        lambda: registry.explained_rollback(
            to=to,
            actor="cli",
            reason=reason,
            older_than_seconds=settings.rollback_default_seconds,
            relearn=relearn,
            freeze=freeze,
        )
    )


@models.command("promote")
@log_options()
@click.argument("version")
@reason_option()
def models_promote(version: str, reason: str | None) -> None:
    """Make a candidate (the shadow's latest, or an imported model) the active version.

    Example:

    \b
        xsell models promote v1310 --reason "shadow SNIPS beat active for a week"
    """
    _, registry, _ = _registry()
    _change(lambda: registry.promote(version, actor="cli", reason=reason))


@models.command("freeze")
@log_options()
@reason_option()
def models_freeze(reason: str | None) -> None:
    """Stop the learner from learning and publishing; serving goes on unchanged.

    Example:

    \b
        xsell models freeze --reason "investigating a reward bug"
    """
    _, registry, _ = _registry()
    registry.freeze_learning(True, actor="cli", reason=reason)
    click.echo("learning frozen")


@models.command("unfreeze")
@log_options()
@reason_option()
def models_unfreeze(reason: str | None) -> None:
    """Let the learner learn again (it catches up on what it skipped).

    Example:

    \b
        xsell models unfreeze
    """
    _, registry, _ = _registry()
    registry.freeze_learning(False, actor="cli", reason=reason)
    click.echo("learning resumed")


@models.command("export")
@log_options()
@click.argument("version")
@click.argument("file", type=click.Path(dir_okay=False))
def models_export(version: str, file: str) -> None:
    """Write VERSION (model, card and record) to FILE, a tar another installation can import.

    Example:

    \b
        xsell models export v1200 v1200.xsell-model
    """
    _, registry, _ = _registry()
    try:
        model = registry.export(version, Path(file))
    except (ValueError, OSError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"exported {model.version} ({model.sha256[:12]}) to {file}")


@models.command("import")
@log_options()
@click.argument("file", type=click.Path(dir_okay=False))
def models_import(file: str) -> None:
    """Register a model exported elsewhere as a candidate; `promote` it to serve.

    The export is checked before anything is registered: only its three files, size
    limits, the VW option allowlist for its arguments and its model header, and a
    checksum computed here (a stated one must match it).

    Example:

    \b
        xsell models import v1200.xsell-model
    """
    _, registry, _ = _registry()
    try:
        model = registry.import_file(Path(file), actor="cli")
    except (ValueError, OSError) as error:
        raise click.ClickException(f"{file}: {error}") from error
    click.echo(f"imported as {model.version} (candidate): {model.note}")
