"""`xsell bench console` builds its log, runs the chores and times every figure and page."""

from __future__ import annotations

from pathlib import Path

from scripts.devtools.bench_console import render, run_console_bench


def test_the_console_bench_times_every_figure_and_page(tmp_path: Path) -> None:
    found = run_console_bench(3000, repeats=1, data_dir=tmp_path / "var")
    names = [t.name for t in found.timings]
    assert {"loop_health()", "learning()", "offers()", "GET /metrics"} <= set(names)
    assert all(t.ms > 0 for t in found.timings)
    pages = [t for t in found.timings if t.status is not None]
    assert pages and all(t.status == 200 for t in pages), [(t.name, t.status) for t in pages]
    assert found.feedback > 0 and found.baseline_ms > 0
    assert "x baseline" in render(found)
