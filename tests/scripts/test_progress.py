"""Long commands show progress on a terminal and stay quiet when piped."""

from __future__ import annotations

import io

from click.testing import CliRunner

from policies.offers.catalog import Product
from policies.offers.relations import MiningThresholds, mine_co_purchases
from scripts.commands.progress import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_bar_is_drawn_on_a_terminal() -> None:
    screen = Terminal()
    with progress(10, "mining orders", file=screen) as advance:
        for _ in range(10):
            advance(1)
    assert "mining orders" in screen.getvalue() and "100%" in screen.getvalue()


def test_nothing_is_written_when_not_a_terminal() -> None:
    piped = io.StringIO()
    with progress(10, "mining orders", file=piped) as advance:
        advance(10)
    assert piped.getvalue() == ""


def test_mining_reports_every_order_twice() -> None:
    products = {s: Product(s, s, s[0], 1.0, stock=1) for s in ("a1", "b1", "c1")}
    orders = [["a1", "b1"]] * 2500 + [["zz"]] * 10 + [["c1"]] * 2500
    heard: list[int] = []
    relations = mine_co_purchases(orders, products, MiningThresholds(), heard.append)
    assert relations and sum(heard) == 2 * len(orders) and len(heard) > 4


def test_evaluation_reports_every_decision_per_candidate() -> None:
    from policies.evaluation.candidates import parse_candidate
    from policies.evaluation.replay import EvaluationOptions, evaluate_log
    from scripts.devtools.synthetic import SyntheticProblem, uniform_log

    decisions = uniform_log(SyntheticProblem(seed=1), 2300, seed=1)
    heard: list[int] = []
    candidates = [parse_candidate("uniform"), parse_candidate("most-popular")]
    evaluate_log(decisions, candidates, EvaluationOptions(reward_model=None), heard.append)
    assert sum(heard) == 2 * len(decisions) and len(heard) > 2


def test_commands_stay_quiet_when_not_a_terminal(tmp_path, monkeypatch) -> None:
    from scripts.cli import cli
    from service.resources import open_log_and_registry
    from tests.conftest import make_settings

    store, _ = open_log_and_registry(make_settings(tmp_path))
    store.close()
    monkeypatch.setenv("XSELL_DATA_DIR", str(tmp_path / "var"))
    products = tmp_path / "p.csv"
    products.write_text("sku,title,category,price,stock\na,A,x,1,1\nb,B,y,1,1\n")
    orders = tmp_path / "o.csv"
    orders.write_text("order_id,sku\n" + "".join(f"o{i},a\no{i},b\n" for i in range(3000)))
    runner = CliRunner()
    assert runner.invoke(cli, ["catalog", "import", str(products)]).exit_code == 0
    result = runner.invoke(cli, ["relations", "build", str(orders)])
    assert result.exit_code == 0, result.output
    assert "mining" not in result.output and "%" not in result.output
