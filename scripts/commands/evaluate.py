"""`xsell evaluate`: off-policy estimates from the log or the Open Bandit Dataset."""

from __future__ import annotations

import json
from pathlib import Path

import click

from scripts.commands.options import json_option
from scripts.log_location import located_settings, log_flag_given, log_options


@click.command()
@log_options()
@click.option(
    "--models",
    "model_dir",
    type=click.Path(file_okay=False),
    help="Model registry directory (default: XSELL_MODEL_DIR, else 'models' beside the log; "
    "on PostgreSQL, where the model files are read from the database: their cache, default DATA_DIR/models).",
)
@click.option(
    "--obd",
    type=click.Path(file_okay=False),
    help="A directory in the Open Bandit Dataset's CSV layout instead.",
)
@click.option(
    "--archive",
    type=click.Path(file_okay=False),
    help="A directory of archived days (XSELL_LOG_ARCHIVE_DIR: decisions-YYYY-MM-DD.parquet) instead.",
)
@click.option(
    "--policy",
    "policies",
    multiple=True,
    help="uniform, most-popular, baseline, served, model:VERSION or vw:ARGS (repeatable). "
    "Default: uniform, most-popular and the active model.",
)
@click.option("--interval", type=click.Choice(["normal", "bootstrap"]), default="normal", show_default=True)
@click.option("--level", type=click.FloatRange(0.5, 0.999), default=0.95, show_default=True)
@click.option("--bootstrap-samples", type=click.IntRange(50, 100_000), default=1000, show_default=True)
@click.option("--folds", type=click.IntRange(2, 20), default=2, show_default=True, help="Reward-model folds.")
@click.option("--no-reward-model", is_flag=True, help="Skip DM, DR and SNDR (no reward model is fitted).")
@click.option(
    "--reward-model",
    "reward_model_kind",
    type=click.Choice(["auto", "logistic", "linear", "vw-logistic", "vw-squared", "action-mean"]),
    default="auto",
    show_default=True,
    help="Reward model behind DM, DR and SNDR; auto: logistic when every reward is in [0, 1], "
    "else linear (docs/evaluation.md).",
)
@click.option("--limit", type=click.IntRange(1), help="Use only the first N decisions.")
@click.option("--seed", type=int, default=0, show_default=True)
@json_option()
@click.option(
    "--report", "report_dir", type=click.Path(file_okay=False), help="Write report.md and plots here."
)
def evaluate(
    model_dir: str | None,
    obd: str | None,
    archive: str | None,
    policies: tuple[str, ...],
    interval: str,
    level: float,
    bootstrap_samples: int,
    folds: int,
    no_reward_model: bool,
    reward_model_kind: str,
    limit: int | None,
    seed: int,
    as_json: bool,
    report_dir: str | None,
) -> None:
    """Estimate, from the log alone, what each policy would have earned per decision.

    Replays closed decisions in order through each candidate policy and prints,
    per policy and estimator (IPS, SNIPS, DM, DR, SNDR), the estimated average
    reward per decision with its confidence interval, the decisions used and the
    effective sample size. vw:ARGS policies are trained progressively on the log
    (each decision is scored before it is learned from).

    Example:

    \b
        xsell evaluate --log var/xsell.db --policy uniform --policy "vw:--cb_explore_adf --epsilon 0.05 -q ::"
        xsell evaluate --obd obd/random/all --json
        xsell evaluate --archive var/archive --policy uniform
    """
    from scripts.evaluate import (
        EXPECTED_ERRORS,
        EvaluationFailed,
        load_archive,
        load_log,
        load_obd,
        options_from,
        render_table,
        run,
        to_json,
    )

    if log_flag_given() and obd:
        raise click.UsageError("give --log or --obd, not both")
    if report_dir:  # say so now, not after a long evaluation
        from scripts.report import ReportUnavailable, check_available

        try:
            check_available()
        except ReportUnavailable as error:
            raise click.ClickException(str(error)) from None
    if archive and obd:
        raise click.UsageError("give --archive or --obd, not both")
    options = options_from(
        interval=interval,
        level=level,
        bootstrap_samples=bootstrap_samples,
        folds=folds,
        reward_model=not no_reward_model,
        seed=seed,
        reward_model_kind=reward_model_kind,
    )
    try:
        if obd:
            loaded = load_obd(Path(obd), limit=limit)
        elif archive:  # the log beside it (if any) gives the reward rules and the registry
            loaded = load_archive(Path(archive), located_settings(must_exist=False), limit=limit)
        else:
            loaded = load_log(located_settings(), Path(model_dir) if model_dir else None, limit=limit)
        from scripts.commands.progress import progress
        from scripts.evaluate import default_policies

        # every candidate replays every decision
        steps = len(loaded.decisions) * (len(policies or default_policies(loaded)) or 1)
        with progress(steps, "replaying decisions") as advance:
            reports, summary, quality = run(loaded, policies, options, advance)
    except (EvaluationFailed, *EXPECTED_ERRORS) as error:
        raise click.ClickException(str(error)) from error
    table = render_table(loaded, reports, options, quality)
    if as_json:
        click.echo(json.dumps(to_json(loaded, reports, summary, options, quality), indent=2))
    else:
        click.echo(table)
    if report_dir:
        from scripts.report import write_report

        path = write_report(Path(report_dir), table, reports, summary)
        click.echo(f"report written to {path}", err=True)
