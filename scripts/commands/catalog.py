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

    The demo store never mixes with your products: the first import removes it.
    File formats and columns: docs/offers.md ("Bring your own catalog").

    Example:

    \b
        xsell catalog import products.csv --dry-run
        xsell catalog import products.jsonl --replace
        xsell catalog clear --demo
    """


@catalog.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@log_options(create_flag=True)
@click.option("--dry-run", is_flag=True, help="Say what would change; change nothing.")
@click.option("--replace", is_flag=True, help="Remove products that are not in FILE.")
def catalog_import(file: str, dry_run: bool, replace: bool) -> None:
    """Add or update the products in FILE (.csv, .jsonl or .json); say what changed and what was assumed.

    Columns: sku, title, category, price (required); family, tags (CSV: a|b), stock
    (optional; no stock column: every product in stock). Unknown columns are
    ignored, with a note. The first import removes the demo store.

    Example:

    \b
        xsell catalog import products.csv --dry-run
        xsell catalog import products.jsonl --replace
    """
    from logs.catalog_files import CatalogFileError, read_products
    from scripts.catalog_import import apply_import, plan_import

    try:
        products = read_products(Path(file))
    except CatalogFileError as error:
        raise click.ClickException(str(error)) from error
    store = _catalog()
    plan = plan_import(store, products, replace=replace)
    if dry_run:
        for line in plan.lines(applied=False):
            click.echo(line)
        click.echo("dry run: nothing changed")
        return
    apply_import(store, plan)
    for line in plan.lines(applied=True):
        click.echo(line)
    click.echo(f"imported {len(products.products)} products; the catalog holds {store.count()}")


@catalog.command("clear")
@log_options()
@click.option("--demo", is_flag=True, help="Remove the demo store's products, relations and orders.")
def catalog_clear(demo: bool) -> None:
    """Remove the demo store (and stop it loading again); your own products stay.

    Example:

    \b
        xsell catalog clear --demo
    """
    from scripts.demo_store import remove_demo

    if not demo:
        raise click.UsageError("say what to clear: --demo (the demo store)")
    products, relations_removed = remove_demo(_catalog())
    if products or relations_removed:
        click.echo(
            f"removed the demo store: {products} products, {relations_removed} relations and its orders"
        )
    else:
        click.echo("no demo store to remove; it will not be loaded again")


@click.group()
def relations() -> None:
    """Build and review the complement relations offers come from.

    Example:

    \b
        xsell relations build orders.csv --rules complements.toml
        xsell relations review --block camera screen_protector
    """


@relations.command("build")
@click.argument("orders", type=click.Path(dir_okay=False))
@log_options(create_flag=True)
@click.option(
    "--rules",
    type=click.Path(dir_okay=False),
    help="Hand-kept complement rules (TOML): replace the stored rules.",
)
@click.option("--drop-rules", is_flag=True, help="Remove the stored hand-kept rules (without --rules).")
@click.option("--min-support", type=click.FloatRange(0, 1), default=0.002, show_default=True)
@click.option("--min-confidence", type=click.FloatRange(0, 1), default=0.05, show_default=True)
@click.option("--min-lift", type=click.FloatRange(0), default=1.2, show_default=True)
@click.option("--min-orders", type=click.IntRange(1), default=3, show_default=True)
def relations_build(
    orders: str,
    rules: str | None,
    drop_rules: bool,
    min_support: float,
    min_confidence: float,
    min_lift: float,
    min_orders: int,
) -> None:
    """Mine co-purchases from ORDERS (CSV: order_id, sku) and merge them with the rules; say what changed.

    Mined relations are replaced. Hand-kept rules stay as they are unless --rules
    gives new ones or --drop-rules removes them. Reviews (blocks, pins) are kept.

    Example:

    \b
        xsell relations build orders.csv
        xsell relations build orders.csv --rules complements.toml --min-lift 1.5
    """
    from logs.catalog_files import CatalogFileError, read_orders
    from policies.offers.relations import MiningThresholds, RulesError
    from scripts.commands.progress import progress
    from scripts.relations import build_relations

    if rules and drop_rules:
        raise click.UsageError("--rules replaces the stored rules and --drop-rules removes them: give one")
    try:
        history = read_orders(Path(orders))
        thresholds = MiningThresholds(min_support, min_confidence, min_lift, min_orders)
        with progress(2 * len(history), "mining orders") as advance:
            changes = build_relations(
                _catalog(),
                history,
                Path(rules) if rules else None,
                thresholds,
                drop_rules=drop_rules,
                progress=advance,
            )
    except (CatalogFileError, RulesError) as error:
        raise click.ClickException(str(error)) from error
    for line in changes.lines():
        click.echo(line)


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

    \b
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
