"""The `xsell` command group."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import click

from scripts.log_location import located_settings, log_flag_given, log_options
from scripts.log_location import settings_from as _settings
from service.settings import Settings


@click.group()
@click.version_option(package_name="xsell")
def cli() -> None:
    """xsell: a contextual-bandit decision service for cross-sell offers."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
    )


@cli.command()
@click.option("--host", help="Address to bind (XSELL_HOST, default 127.0.0.1).")
@click.option("--port", type=int, help="Port to bind (XSELL_PORT, default 8000).")
@click.option("--workers", type=int, help="gunicorn workers (XSELL_WORKERS, default 2).")
@click.option("--threads", type=int, help="Threads per worker (XSELL_THREADS, default 1).")
@log_options()
def serve(host: str | None, port: int | None, workers: int | None, threads: int | None) -> None:
    """Start gunicorn and the learner, and supervise both.

    Example:

        xsell serve --port 8000 --workers 4
    """
    from scripts.serve import supervise

    settings = located_settings(creates=True, host=host, port=port, workers=workers, threads=threads)
    raise SystemExit(supervise(settings))


@cli.command()
@log_options()
def learn() -> None:
    """Run the learner alone (for deployments that run it apart from the web workers).

    Only one learner learns at a time; a second one waits as a standby.

    Example:

        xsell learn --data-dir /srv/xsell
    """
    from scripts.learn import run_learner

    run_learner(located_settings(creates=True))


@cli.command()
@click.option("--rounds", type=int, default=5000, show_default=True, help="Decisions per run.")
@click.option("--seeds", type=int, default=3, show_default=True, help="Independent problems per setting.")
@click.option("--vw-args", "vw_args", multiple=True, help="VW arguments to compare (repeatable).")
@click.option("--url", help="Drive a running service over HTTP instead of in-process.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--requests",
    "requests_count",
    type=click.IntRange(1),
    help="Drive POST /v1/offers at --url (default http://127.0.0.1:8000) with this many simulated shoppers.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the simulated shoppers.")
@click.option("--max-offers", type=click.IntRange(1, 10), default=1, show_default=True)
def simulate(
    rounds: int,
    seeds: int,
    vw_args: tuple[str, ...],
    url: str | None,
    as_json: bool,
    requests_count: int | None,
    seed: int,
    max_offers: int,
) -> None:
    """Run seeded simulated shoppers and report how well policies learn.

    In-process, each VW argument set serves and learns ROUNDS decisions on SEEDS
    synthetic problems; the table shows the click rate while learning, the exact
    click rate of the final policy, and uniform random and the best policy for scale.

    Example:

        xsell simulate --rounds 5000 --vw-args "--cb_explore_adf --squarecb -q ::"
        xsell simulate --url http://127.0.0.1:8000 --rounds 3000
        xsell simulate --requests 5000     # shoppers on the demo store, over HTTP
    """
    from scripts.simulate import EXPLORATION_CANDIDATES, simulate_http, simulate_in_process

    if requests_count:
        from scripts.http import HttpError, JsonClient
        from scripts.shoppers import ShopperWorld, drive

        client = JsonClient(url or "http://127.0.0.1:8000")
        try:
            rows = drive(client.post, ShopperWorld(seed=seed), requests_count, max_offers=max_offers)
        except (HttpError, OSError) as error:
            raise click.ClickException(
                f"the service at {url or 'http://127.0.0.1:8000'} failed: {error}"
            ) from error
        if as_json:
            click.echo(json.dumps(rows, indent=2))
            return
        header = ("requests", "click-through", "revenue/decision", "dismissals", "kinds bought")
        click.echo(" ".join(f"{h:>{w}}" for h, w in zip(header, (9, 14, 17, 11, 13), strict=True)))
        done = 0
        for row in rows:
            done += int(row["requests"])
            click.echo(
                f"{done:>9} {row['click_through']:14.3f} {row['revenue_per_decision']:17.2f} "
                f"{row['dismissal_rate']:11.3f} {int(row['kinds_bought']):13d}"
            )
        return
    if url:
        rates = simulate_http(url, rounds=rounds, seed=0)
        if as_json:
            click.echo(json.dumps({"click_rate_per_500": rates}))
        else:
            for index, rate in enumerate(rates):
                click.echo(f"rounds {index * 500 + 1:>6}-{(index + 1) * 500:<6} click rate {rate:.3f}")
        return
    candidates = vw_args or EXPLORATION_CANDIDATES
    rows = []
    for args in candidates:
        results = [simulate_in_process(args, rounds=rounds, seed=seed) for seed in range(seeds)]
        rows.append(
            {
                "vw_args": args,
                "online_reward": sum(r.online_reward for r in results) / seeds,
                "final_value": sum(r.final_value for r in results) / seeds,
                "uniform_value": sum(r.uniform_value for r in results) / seeds,
                "best_value": sum(r.best_value for r in results) / seeds,
                "seconds": sum(r.seconds for r in results),
            }
        )
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'online':>7} {'final':>7} {'uniform':>7} {'best':>7}  vw_args")
    for row in rows:
        click.echo(
            f"{row['online_reward']:7.3f} {row['final_value']:7.3f} {row['uniform_value']:7.3f} "
            f"{row['best_value']:7.3f}  {row['vw_args']}"
        )


@cli.command()
@log_options()
@click.option(
    "--models",
    "model_dir",
    type=click.Path(file_okay=False),
    help="Model registry directory (default: XSELL_MODEL_DIR, else 'models' beside the log).",
)
@click.option(
    "--obd",
    type=click.Path(file_okay=False),
    help="A directory in the Open Bandit Dataset's CSV layout instead.",
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
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--report", "report_dir", type=click.Path(file_okay=False), help="Write report.md and plots here."
)
def evaluate(
    model_dir: str | None,
    obd: str | None,
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

        xsell evaluate --log var/xsell.db --policy uniform --policy "vw:--cb_explore_adf --epsilon 0.05 -q ::"
        xsell evaluate --obd obd/random/all --json
    """
    from scripts.evaluate import (
        EXPECTED_ERRORS,
        EvaluationFailed,
        load_log,
        load_obd,
        options_from,
        render_table,
        run,
        to_json,
    )

    if log_flag_given() and obd:
        raise click.UsageError("give --log or --obd, not both")
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
        else:
            settings = located_settings()
            log = settings.resolved_log_path
            models = Path(model_dir) if model_dir else settings.model_dir or log.parent / "models"
            loaded = load_log(log, models, settings, limit=limit)
        reports, summary, quality = run(loaded, policies, options)
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


@cli.group()
def faults() -> None:
    """Fault runs against the real service (they need root: they mount filesystems).

    Example:

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
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of lines.")
def faults_disk(per_phase: int, as_json: bool) -> None:
    """Put the log on a small tmpfs, fill it while serving, then free it.

    Every answer must be a 2xx or a 503 with a JSON error, every 2xx decision must be
    in the log, and the service must recover. Exits 1 if any of that fails.
    """
    from scripts.faults import FaultsUnavailable, render, run_disk_faults

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


@cli.group()
def bench() -> None:
    """Benchmarks that print figures (ratios against a baseline measured in the same run).

    Example:

        xsell bench estimators --events 1000000
    """


@bench.command("serve")
@click.option("--quick", is_flag=True, help="5 s per endpoint (under a minute in all).")
@click.option(
    "--seconds", type=click.FloatRange(1), default=20.0, show_default=True, help="Load per endpoint."
)
@click.option(
    "--clients",
    type=click.IntRange(1, 256),
    default=4,
    show_default=True,
    help="wrk connections, or Python client processes.",
)
@click.option(
    "--load",
    type=click.Choice(["auto", "wrk", "python"]),
    default="auto",
    show_default=True,
    help="Load generator: wrk when installed (apt-get install wrk), else Python clients.",
)
@click.option("--workers", type=click.IntRange(1, 64), help="gunicorn workers (default XSELL_WORKERS).")
@click.option("--threads", type=click.IntRange(1, 64), help="Threads per worker (default XSELL_THREADS).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the table.")
def bench_serve_command(
    quick: bool,
    seconds: float,
    clients: int,
    load: str,
    workers: int | None,
    threads: int | None,
    as_json: bool,
) -> None:
    """Start the real service and measure rank, offers and feedback against a trivial endpoint.

    Example:

        xsell bench serve --quick
    """
    from scripts.bench_serve import render, run_serve_bench

    settings = _settings(workers=workers, threads=threads)
    result = run_serve_bench(
        seconds=5.0 if quick else seconds,
        clients=clients,
        workers=settings.workers,
        threads=settings.threads,
        load=load,
    )
    click.echo(json.dumps(result, indent=2) if as_json else render(result))


@bench.command("estimators")
@click.option("--events", type=click.IntRange(1000), default=1_000_000, show_default=True)
@click.option(
    "--repeats", type=click.IntRange(1), default=3, show_default=True, help="Best of this many runs."
)
@click.option("--bootstrap-samples", type=click.IntRange(0), default=0, show_default=True)
@click.option(
    "--replay-events",
    type=click.IntRange(0),
    default=20_000,
    show_default=True,
    help="Also time a whole evaluation (replay, reward model) on this many decisions; 0 skips it.",
)
def bench_estimators_command(events: int, repeats: int, bootstrap_samples: int, replay_events: int) -> None:
    """Time IPS, SNIPS, DM, DR and SNDR (each with its interval and ESS) on synthetic decisions.

    Example:

        xsell bench estimators --events 1000000 --bootstrap-samples 100
    """
    from scripts.bench import bench_estimators, bench_replay

    click.echo(f"{events:,} logged decisions, best of {repeats}")
    click.echo(f"{'estimator':<32} {'seconds':>9} {'events/s':>14} {'x baseline':>11}")
    for timing in bench_estimators(events, repeats=repeats, bootstrap_samples=bootstrap_samples):
        click.echo(
            f"{timing.name:<32} {timing.seconds:9.3f} {timing.events_per_second:14,.0f} "
            f"{timing.ratio_to_baseline:11.1f}"
        )
    if replay_events:
        click.echo(f"\nwhole evaluation of {replay_events:,} synthetic decisions (6 offers)")
        for timing in bench_replay(replay_events):
            click.echo(f"{timing.name:<32} {timing.seconds:9.3f} {timing.events_per_second:14,.0f}")


@bench.command("learning")
@click.option("--rounds", type=click.IntRange(100), default=3600, show_default=True)
@click.option("--seeds", type=click.IntRange(1, 20), default=3, show_default=True)
@click.option("--window", type=click.FloatRange(min=1), default=600.0, show_default=True, help="Seconds.")
@click.option(
    "--click-delay", type=click.FloatRange(min=0), default=20.0, show_default=True, help="Mean seconds."
)
@click.option(
    "--purchase-delay", type=click.FloatRange(min=0), default=180.0, show_default=True, help="Mean seconds."
)
def bench_learning_command(
    rounds: int, seeds: int, window: float, click_delay: float, purchase_delay: float
) -> None:
    """Compare when to learn: at a short horizon with corrections, at the first signal, at the window's end.

    Simulated shoppers (one a second) go through the real app, log and learner on a
    simulated clock; clicks come after a delay, and a purchase follows some clicks
    minutes later. Prints the served policy's expected reward as the run goes.

    Example:

        xsell bench learning --rounds 3600 --seeds 3
    """
    from scripts.learning_loop import compare_designs, render_comparison

    logging.disable(logging.INFO)  # the app logs every snapshot it loads
    found = compare_designs(
        seeds=tuple(range(1, seeds + 1)),
        rounds=rounds,
        window_seconds=window,
        click_delay_seconds=click_delay,
        purchase_delay_seconds=purchase_delay,
        purchase_share=(0.6, 0.1, 0.6, 0.1, 0.6, 0.1),
    )
    click.echo(render_comparison(found))


@cli.group()
def models() -> None:
    """See and change which model serves: list, activate, rollback, promote, freeze, export, import.

    Changes reach every worker within XSELL_MODEL_POLL_SECONDS, without a restart.

    Example:

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
        click.echo(f"chosen: {result.why} ({result.target.events_learned:,} events learned)")


@models.command("list")
@log_options()
@click.option(
    "--limit", type=click.IntRange(1), default=20, show_default=True, help="Newest versions to show."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models_list(limit: int, as_json: bool) -> None:
    """List versions (newest, plus the active one and candidates) with recent online metrics.

    Example:

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
@click.option("--reason", help="Why; kept in the change history.")
def models_activate(version: str, reason: str | None) -> None:
    """Serve VERSION from now on (its file is verified first).

    Example:

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
@click.option("--reason", help="Why; kept in the change history.")
@click.option(
    "--relearn", is_flag=True, help="Let the restored model learn what the discarded versions learned."
)
@click.option("--freeze", is_flag=True, help="Also stop learning until `xsell models unfreeze`.")
def models_rollback(to: str | None, reason: str | None, relearn: bool, freeze: bool) -> None:
    """Serve an earlier version again; the learner continues from it, not from the bad one.

    Without --to it picks a version that learned events and prints which and why; it
    refuses when only untrained versions are kept (name one with --to to serve it).

    Example:

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
@click.option("--reason", help="Why; kept in the change history.")
def models_promote(version: str, reason: str | None) -> None:
    """Make a candidate (the shadow's latest, or an imported model) the active version.

    Example:

        xsell models promote v1310 --reason "shadow SNIPS beat active for a week"
    """
    _, registry, _ = _registry()
    _change(lambda: registry.promote(version, actor="cli", reason=reason))


@models.command("freeze")
@log_options()
@click.option("--reason", help="Why; kept in the change history.")
def models_freeze(reason: str | None) -> None:
    """Stop the learner from learning and publishing; serving goes on unchanged.

    Example:

        xsell models freeze --reason "investigating a reward bug"
    """
    _, registry, _ = _registry()
    registry.freeze_learning(True, actor="cli", reason=reason)
    click.echo("learning frozen")


@models.command("unfreeze")
@log_options()
@click.option("--reason", help="Why; kept in the change history.")
def models_unfreeze(reason: str | None) -> None:
    """Let the learner learn again (it catches up on what it skipped).

    Example:

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

        xsell models import v1200.xsell-model
    """
    _, registry, _ = _registry()
    try:
        model = registry.import_file(Path(file), actor="cli")
    except (ValueError, OSError) as error:
        raise click.ClickException(f"{file}: {error}") from error
    click.echo(f"imported as {model.version} (candidate): {model.note}")


def _catalog() -> Any:
    from logs.catalog_store import CatalogStore
    from service.resources import open_log_and_registry

    store, _ = open_log_and_registry(located_settings())
    return CatalogStore(store)


@cli.group()
def catalog() -> None:
    """Load products into the catalog that POST /v1/offers draws from.

    Example:

        xsell catalog import products.csv
    """


@catalog.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@log_options(create_flag=True)
def catalog_import(file: str) -> None:
    """Insert or update products from FILE (CSV or JSON: sku, title, category, price, family, tags, stock).

    Example:

        xsell catalog import products.json
    """
    from logs.catalog_files import CatalogFileError, read_products

    try:
        products = read_products(Path(file))
    except CatalogFileError as error:
        raise click.ClickException(str(error)) from error
    written = _catalog().upsert_products(products)
    click.echo(f"imported {written} products")


@cli.group()
def relations() -> None:
    """Build and review the complement relations offers come from.

    Example:

        xsell relations build orders.csv --rules complements.toml
        xsell relations review --block camera screen_protector
    """


@relations.command("build")
@click.argument("orders", type=click.Path(dir_okay=False))
@log_options(create_flag=True)
@click.option("--rules", type=click.Path(dir_okay=False), help="Hand-kept complement rules (TOML).")
@click.option("--min-support", type=click.FloatRange(0, 1), default=0.002, show_default=True)
@click.option("--min-confidence", type=click.FloatRange(0, 1), default=0.05, show_default=True)
@click.option("--min-lift", type=click.FloatRange(0), default=1.2, show_default=True)
@click.option("--min-orders", type=click.IntRange(1), default=3, show_default=True)
def relations_build(
    orders: str,
    rules: str | None,
    min_support: float,
    min_confidence: float,
    min_lift: float,
    min_orders: int,
) -> None:
    """Mine co-purchases from ORDERS (CSV: order_id, sku) and merge them with the rules.

    Replaces every relation; reviews (blocks, pins) are kept.

    Example:

        xsell relations build orders.csv --rules complements.toml --min-lift 1.5
    """
    from logs.catalog_files import CatalogFileError, read_orders
    from policies.offers.relations import MiningThresholds, RulesError
    from scripts.relations import build_relations

    try:
        history = read_orders(Path(orders))
        thresholds = MiningThresholds(min_support, min_confidence, min_lift, min_orders)
        count = build_relations(_catalog(), history, Path(rules) if rules else None, thresholds)
    except (CatalogFileError, RulesError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{count} relations from {len(history)} orders")


@relations.command("review")
@log_options()
@click.option("--anchor", help="Only relations from this category or sku.")
@click.option("--block", nargs=2, metavar="ANCHOR COMPLEMENT", help="Never offer COMPLEMENT beside ANCHOR.")
@click.option("--pin", nargs=2, metavar="ANCHOR COMPLEMENT", help="Prefer this pair over stronger ones.")
@click.option("--clear", nargs=2, metavar="ANCHOR COMPLEMENT", help="Remove a block or pin.")
@click.option("--note", help="Why (kept with the review).")
@click.option("--json", "as_json", is_flag=True)
def relations_review(
    anchor: str | None,
    block: tuple[str, str] | None,
    pin: tuple[str, str] | None,
    clear: tuple[str, str] | None,
    note: str | None,
    as_json: bool,
) -> None:
    """List relations with their source and strength for a human audit; block or pin a pair.

    Example:

        xsell relations review --anchor camera
        xsell relations review --block phone charger --note "bundled in the box"
    """
    store = _catalog()
    for pair, status in ((block, "blocked"), (pin, "pinned"), (clear, None)):
        if pair:
            store.review(pair[0], pair[1], status, note)
            click.echo(f"{pair[0]} -> {pair[1]}: {status or 'cleared'}")
    found = store.relations([anchor] if anchor else None)
    if as_json:
        from dataclasses import asdict

        click.echo(json.dumps([asdict(r) for r in found], indent=2))
        return
    click.echo(
        f"{'anchor':<20} {'complement':<20} {'level':<8} {'source':<11} {'strength':>8} {'lift':>6}  status"
    )
    for r in found:
        lift = f"{r.lift:.2f}" if r.lift is not None else "-"
        click.echo(
            f"{r.anchor:<20} {r.complement:<20} {r.level:<8} {r.source:<11} "
            f"{r.strength:8.3f} {lift:>6}  {r.status}"
        )


@cli.group()
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


@cli.group()
def config() -> None:
    """See every setting in force and where it comes from; change the live ones.

    Precedence: a default, then an XSELL_* variable (or a flag), then a live change
    kept in the log. The live settings reach the running service within its poll
    interval, without a restart.

    Example:

        xsell config show
        xsell config set default_reward=-0.05 reward_window_seconds=1800
        xsell config reset default_reward
    """


@config.command("show")
@log_options()
@click.option("--json", "as_json", is_flag=True, help="Print JSON (as GET /v1/config answers).")
def config_show(as_json: bool) -> None:
    """Print every setting in force: value and source (default, environment, live), and the reward rules.

    Example:

        xsell config show --data-dir /srv/xsell
    """
    from scripts.config import in_force, render

    settings = located_settings(must_exist=False)
    found = in_force(settings, log_exists=settings.resolved_log_path.is_file())
    click.echo(json.dumps(found.describe(), indent=2) if as_json else render(found))


@config.command("set")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@log_options()
def config_set(assignments: tuple[str, ...]) -> None:
    """Change live settings in the log (all or none); the service picks them up while running.

    Example:

        xsell config set learning_mode=apprentice exploration_share=0.1
    """
    from scripts.config import ConfigError, change, parse_assignments, render

    try:
        values = parse_assignments(assignments)
        found = change(located_settings(), values)
    except ConfigError as error:
        raise click.ClickException(str(error)) from error
    click.echo(render(found, values))


@config.command("reset")
@click.argument("names", nargs=-1, required=True, metavar="SETTING...")
@log_options()
def config_reset(names: tuple[str, ...]) -> None:
    """Drop live changes: each setting named follows the environment (or its default) again.

    Example:

        xsell config reset default_reward learning_mode
    """
    from scripts.config import ConfigError, change, render

    try:
        found = change(located_settings(), {}, reset=names)
    except ConfigError as error:
        raise click.ClickException(str(error)) from error
    click.echo(render(found, names))
