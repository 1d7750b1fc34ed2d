"""Which log an `xsell` command uses: one rule for every command, said on stderr.

The rule, the service's own (``Settings.resolved_log_path``): ``--log FILE`` (or
``XSELL_LOG_PATH``), else ``DATA_DIR/xsell.db``, where ``DATA_DIR`` is ``--data-dir``
(or ``XSELL_DATA_DIR``, else ``./var``). Flags beat variables. A command given the
same ``--data-dir`` as ``xsell serve`` (or run with the same ``XSELL_*`` variables)
reads and changes the log that service uses, from any working directory.

Only the service creates a log: a command that reads or administers one refuses a
path with no log (run from the wrong directory, it would otherwise report success
into an empty database no service reads), and a command that loads data into one
(``catalog import``, ``relations build``) creates it only when given ``--create``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import ValidationError

from service.settings import Settings

__all__ = ["located_settings", "log_flag_given", "log_options", "settings_from"]

F = TypeVar("F", bound=Callable[..., Any])
_GIVEN = "xsell.log_location"  # where the options leave their values in the click context


def settings_from(**overrides: Any) -> Settings:
    """Build settings from XSELL_* variables, with command-line flags (not None) taking precedence."""
    given = {name: value for name, value in overrides.items() if value is not None}
    try:
        return Settings(**given)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise click.UsageError(f"invalid configuration: {problems}") from error


def _remember(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and param.name is not None:
        ctx.meta.setdefault(_GIVEN, {})[param.name] = Path(value)
    return value


def log_options(*, create_flag: bool = False) -> Callable[[F], F]:
    """Add --data-dir and --log (and --create, for commands that load data) to a command."""

    def decorate(command: F) -> F:
        if create_flag:
            command = click.option(
                "--create",
                "create_log",
                is_flag=True,
                expose_value=False,
                callback=lambda ctx, _, value: ctx.meta.setdefault(_GIVEN, {}).update(create=value),
                help="Start a new, empty log if there is none at the resolved path.",
            )(command)
        command = click.option(
            "--log",
            "log_path",
            type=click.Path(dir_okay=False),
            envvar="XSELL_LOG_PATH",
            expose_value=False,
            callback=_remember,
            help="The xsell log (XSELL_LOG_PATH; default DATA_DIR/xsell.db).",
        )(command)
        return click.option(
            "--data-dir",
            "data_dir",
            type=click.Path(file_okay=False),
            envvar="XSELL_DATA_DIR",
            expose_value=False,
            callback=_remember,
            help="Directory of the log and models, as the service uses it (XSELL_DATA_DIR; default ./var).",
        )(command)

    return decorate


def log_flag_given() -> bool:
    """Return whether --log was given on the command line (not by XSELL_LOG_PATH)."""
    ctx = click.get_current_context()
    return ctx.get_parameter_source("log_path") == click.core.ParameterSource.COMMANDLINE


def located_settings(*, creates: bool = False, must_exist: bool = True, **overrides: Any) -> Settings:
    """Return the settings for the log the current command's options name, and say which log it is.

    `creates`: the command is the service (serve, learn), which makes its log.
    `must_exist`: refuse when there is no log (unless --create was given).

    Raises
    ------
    click.ClickException
        When there is no log at the resolved path and the command may not create one.
    """
    given = click.get_current_context().meta.get(_GIVEN, {})
    settings = settings_from(data_dir=given.get("data_dir"), log_path=given.get("log_path"), **overrides)
    if settings.database.is_postgresql:  # no file to look for: the service created the database's log
        click.echo(f"using log {settings.database.redacted()}", err=True)
        return settings
    path = Path(os.path.abspath(settings.resolved_log_path))  # absolute, without any '..'
    if path.is_file() or creates:
        click.echo(f"using log {path}", err=True)
    elif given.get("create"):
        click.secho(f"created a new, empty log at {path} (no service has used it yet)", err=True, fg="yellow")
    elif must_exist:
        hint = " (or --create to start a new one there)" if "create" in given else ""
        raise click.ClickException(
            f"no xsell log at {path}: run the command where `xsell serve` runs, or name the log with "
            f"--data-dir DIR, --log FILE or XSELL_DATA_DIR{hint}"
        )
    else:
        click.echo(f"no log at {path}: showing the environment's settings only", err=True)
    return settings
