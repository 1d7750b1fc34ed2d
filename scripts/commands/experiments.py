"""`xsell experiments`: start, list, show results, stop and ship experiments against a holdout."""

from __future__ import annotations

import json
from typing import Any

import click

from scripts.commands.options import json_option, reason_option
from scripts.log_location import located_settings, log_options


@click.group()
def experiments() -> None:
    """Experiments against a holdout: arms are policies sharing the traffic.

    Changes reach every worker within XSELL_MODEL_POLL_SECONDS. Results count only
    decisions whose reward window ended; their intervals stay valid however often
    you look (docs/experiments.md).

    Example:

    \b
        xsell experiments start spring --arm bandit=model:0.9 --arm holdout=no-offer:0.1
        xsell experiments show spring
        xsell experiments ship spring bandit --reason "lift held for two weeks"
    """


def _open() -> tuple[Any, Any]:
    from service.resources import open_log_and_registry

    return open_log_and_registry(located_settings())


def _run(action: Any) -> Any:
    """Run an operation, turning a refused one into one error line naming the field."""
    from pydantic import ValidationError

    from logs.db import LogUnavailable
    from logs.experiment_store import ExperimentExists, UnknownExperiment
    from policies.learning.registry import RegistryError
    from service.exceptions import InvalidField

    try:
        return action()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'experiment'}: {e['msg']}" for e in error.errors()
        )
        raise click.ClickException(problems) from error
    except (ExperimentExists, UnknownExperiment, InvalidField, RegistryError, LogUnavailable) as error:
        raise click.ClickException(str(error)) from error


def _arm(spec: str) -> dict[str, Any]:
    """NAME=POLICY:SHARE[:VERSION] -> an arm of the request body."""
    name, _, rest = spec.partition("=")
    policy, _, tail = rest.partition(":")
    share, _, version = tail.partition(":")
    try:
        value = float(share)
    except ValueError:
        raise click.BadParameter(f"{spec!r}: use NAME=POLICY:SHARE[:VERSION]", param_hint="--arm") from None
    return {"name": name, "policy": policy, "share": value} | ({"version": version} if version else {})


@experiments.command("start")
@log_options()
@click.argument("experiment_id")
@click.option(
    "--arm", "arms", multiple=True, required=True, help="NAME=POLICY:SHARE[:VERSION]; twice or more."
)
@click.option("--alpha", type=float, default=0.05, show_default=True, help="The intervals' error rate.")
@click.option("--name", default=None, help="A longer name for people.")
def start_command(experiment_id: str, arms: tuple[str, ...], alpha: float, name: str | None) -> None:
    """Start an experiment (policies: model, frozen, most-popular, no-offer)."""
    from service.experiment_schemas import ExperimentRequest
    from service.experiments import start

    store, registry = _open()
    body = {"id": experiment_id, "arms": [_arm(a) for a in arms], "alpha": alpha, "name": name}
    started = _run(lambda: start(store, registry, ExperimentRequest.model_validate(body), actor="cli"))
    click.echo(
        f"started {started.id}: " + ", ".join(f"{a.name} {a.policy} {a.share:g}" for a in started.arms)
    )


@experiments.command("list")
@log_options()
@json_option()
def list_command(as_json: bool) -> None:
    """List experiments, newest first."""
    from logs.experiment_store import ExperimentStore
    from service.experiments import describe

    store, _ = _open()
    found = [describe(e) for e in ExperimentStore(store).all()]
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        click.echo("no experiments")
    for e in found:
        click.echo(
            f"{e['id']}  {e['status']}  "
            + ", ".join(f"{a['name']}={a['policy']}:{a['share']:g}" for a in e["arms"])
        )


@experiments.command("show")
@log_options()
@click.argument("experiment_id")
@json_option()
def show_command(experiment_id: str, as_json: bool) -> None:
    """Results per arm: rates with anytime-valid intervals, lift over the control, sample ratio."""
    from logs.experiment_store import ExperimentStore

    store, _ = _open()
    experiments_ = ExperimentStore(store)
    experiment = _run(lambda: experiments_.get(experiment_id))
    results = experiments_.results(experiment, store.clock())
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    click.echo(f"{experiment.id} ({experiment.status}), {1 - experiment.alpha:.0%} anytime-valid intervals")
    for arm in results["arms"]:
        line = f"  {arm['arm']:<12} {arm['policy']:<13} {arm['decisions']:>8,} decisions"
        for metric, value in arm["metrics"].items():
            line += f"  {metric} {_interval(value)}"
        click.echo(line)
        for metric, value in arm.get("lift", {}).items():
            click.echo(f"  {'':<12} lift over {results['control']}: {metric} {_interval(value)}")
    ratio = results["sample_ratio"]
    verdict = "ALARM: the split departs from the shares" if ratio["alarm"] else "ok"
    click.echo(f"  sample ratio: chi-square {ratio['statistic']:.2f}, p = {ratio['p_value']:.4g} ({verdict})")


def _interval(value: dict[str, Any]) -> str:
    if value["low"] is None:
        return f"{value['estimate']:.4g} [no data]"
    return f"{value['estimate']:.4g} [{value['low']:.4g}, {value['high']:.4g}]"


@experiments.command("stop")
@log_options()
@click.argument("experiment_id")
@reason_option()
def stop_command(experiment_id: str, reason: str | None) -> None:
    """End an experiment: the default policy serves everyone again."""
    from service.experiments import finish

    store, registry = _open()
    _run(lambda: finish(store, registry, experiment_id, ship=None, reason=reason, actor="cli"))
    click.echo(f"stopped {experiment_id}")


@experiments.command("ship")
@log_options()
@click.argument("experiment_id")
@click.argument("arm")
@reason_option()
def ship_command(experiment_id: str, arm: str, reason: str | None) -> None:
    """End an experiment and make an arm's policy the default."""
    from service.experiments import finish

    store, registry = _open()
    _run(lambda: finish(store, registry, experiment_id, ship=arm, reason=reason, actor="cli"))
    click.echo(f"shipped {arm} of {experiment_id}")
