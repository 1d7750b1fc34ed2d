"""`xsell simulate`: seeded simulated shoppers, in process or over HTTP."""

from __future__ import annotations

import json

import click

from scripts.commands.options import json_option


@click.command()
@click.option("--rounds", type=int, default=5000, show_default=True, help="Decisions per run.")
@click.option("--seeds", type=int, default=3, show_default=True, help="Independent problems per setting.")
@click.option("--vw-args", "vw_args", multiple=True, help="VW arguments to compare (repeatable).")
@click.option("--url", help="Drive a running service over HTTP instead of in-process.")
@json_option()
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

    \b
        xsell simulate --rounds 5000 --vw-args "--cb_explore_adf --squarecb -q ::"
        xsell simulate --url http://127.0.0.1:8000 --rounds 3000
        xsell simulate --requests 5000     # shoppers on the demo store, over HTTP
    """
    from scripts.devtools.simulate import EXPLORATION_CANDIDATES, simulate_http, simulate_in_process

    if requests_count:
        from scripts.devtools.shoppers import ShopperWorld, drive
        from scripts.http import HttpError, JsonClient

        client = JsonClient(url or "http://127.0.0.1:8000")
        try:
            rows = drive(client.post, ShopperWorld(seed=seed), requests_count, max_offers=max_offers)
        except (HttpError, OSError) as error:
            raise click.ClickException(
                f"the service at {url or 'http://127.0.0.1:8000'} failed: {error}"
            ) from error
        finally:
            client.close()  # a kept-alive connection would otherwise outlive the command
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
        from scripts.http import HttpError

        try:
            rates = simulate_http(url, rounds=rounds, seed=seed)
        except (HttpError, OSError) as error:
            again = (
                " (event ids sim-SEED-N repeat each run: pass another --seed)"
                if "event_conflict" in str(error)
                else ""
            )
            raise click.ClickException(f"the service at {url} failed: {error}{again}") from error
        if as_json:
            click.echo(json.dumps({"click_rate_per_500": rates}))
        else:
            for index, rate in enumerate(rates):
                last = min((index + 1) * 500, rounds)
                click.echo(f"rounds {index * 500 + 1:>6}-{last:<6} click rate {rate:.3f}")
        return
    from scripts.commands.progress import progress

    candidates = vw_args or EXPLORATION_CANDIDATES
    rows = []
    with progress(len(candidates) * seeds, "simulating") as advance:
        for args in candidates:
            results = []
            for seed in range(seeds):
                results.append(simulate_in_process(args, rounds=rounds, seed=seed))
                advance(1)
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
