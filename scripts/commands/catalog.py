"""`xsell catalog` and `xsell relations`: the products and complements offers come from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from scripts.commands.options import json_option
from scripts.log_location import located_settings, log_options


def _catalog() -> Any:
    from logs.catalog_store import CatalogStore
    from service.resources import open_log_and_registry

    store, _ = open_log_and_registry(located_settings())
    return CatalogStore(store)


@click.group()
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


@click.group()
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
@json_option(None)
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
