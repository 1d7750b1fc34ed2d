"""The PostgreSQL bench's figures: ratios turn by turn, medians, and what the table says."""

from __future__ import annotations

from pathlib import Path

from scripts.devtools.bench_postgres import render, summarise


def _turn(sqlite: float, postgresql: float, p99: tuple[float, float] = (10.0, 12.0)) -> dict:
    return {
        "sqlite": {"requests_per_second": sqlite, "p50_ms": 1.0, "p99_ms": p99[0]},
        "postgresql": {"requests_per_second": postgresql, "p50_ms": 2.0, "p99_ms": p99[1]},
    }


def test_the_ratio_is_the_median_of_each_turn_against_its_neighbour() -> None:
    # The machine slowed down by half in the last two turns: the ratio of the medians
    # (1000 / 1600 = 0.62) would blame PostgreSQL for it; turn by turn it is 0.8 throughout.
    rank = [_turn(2000, 1600), _turn(2000, 1600), _turn(1000, 800), _turn(1000, 800), _turn(2000, 1600)]
    found = summarise(
        {"/v1/rank": rank, "feedback": rank}, [1.0, 2.0, 3.0], clients=4, workers=2, threads=1, seconds=5.0
    )
    ratio = found["postgresql_vs_sqlite"]["/v1/rank"]
    assert ratio["throughput"] == 0.8
    assert ratio["throughput_turns"] == [0.8, 0.8, 0.8, 0.8, 0.8]
    assert ratio["p99"] == 1.2
    assert found["backends"]["sqlite"]["/v1/rank"]["requests_per_second"] == 2000
    assert found["backends"]["postgresql"]["/v1/rank"]["requests_per_second"] == 1600
    assert found["repeats"] == 5
    assert found["freshness_across_nodes_seconds"] == {"median": 2.0, "p95": 2.9}


def test_the_table_names_the_goals_and_shows_every_turn() -> None:
    rank = [_turn(1000, 700), _turn(1000, 900), _turn(1000, 850)]
    found = summarise({"/v1/rank": rank, "feedback": rank}, [], clients=4, workers=2, threads=1, seconds=5.0)
    text = render(found | {"learner_events_per_second": {"sqlite": 4000, "postgresql": 3500}})
    assert "PostgreSQL / SQLite, /v1/rank: throughput 0.85 (goal >= 0.80)" in text
    assert "PostgreSQL / SQLite, feedback: throughput 0.85 (no goal)" in text  # the goals are rank's
    assert "turn by turn 0.70 0.90 0.85" in text
    assert "3 turns of 5 s per backend and endpoint" in text
    assert "one learner on postgresql: 3,500 events/s" in text


def test_feedback_turns_share_out_the_ids_of_every_rank_turn(tmp_path: Path) -> None:
    from scripts.devtools.bench_postgres import _split_ids, _turn_folder

    for turn in range(3):  # each rank turn's wrk threads write ids-1.txt and ids-2.txt afresh
        folder = _turn_folder(tmp_path / "ids")
        for thread in (1, 2):
            (folder / f"ids-{thread}.txt").write_text(f"t{turn}-a{thread}\nt{turn}-b{thread}\n")
    files = _split_ids(tmp_path / "ids", tmp_path, 4)
    dealt = [p.read_text().split() for p in files]
    assert len(dealt) == 4
    assert sorted(e for share in dealt for e in share) == sorted(
        f"t{t}-{x}{n}" for t in range(3) for x in "ab" for n in (1, 2)
    )  # all 12 ids, each in exactly one feedback turn
