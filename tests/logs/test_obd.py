"""Reading logs in the Open Bandit Dataset's CSV layout."""

from __future__ import annotations

from pathlib import Path

import pytest

from logs.obd import ObdFormatError, read_obd
from tests.obd_fixture import N_ITEMS, write_obd


def test_each_row_becomes_a_one_slot_decision_over_every_item(tmp_path: Path) -> None:
    decisions = read_obd(write_obd(tmp_path / "random" / "all", rows=50))
    assert len(decisions) == 50
    first = decisions[0]
    assert [a.id for a in first.event.actions] == [str(k) for k in range(N_ITEMS)]
    assert first.event.actions[1].features == {"item": {"item_feature_0": 0.1, "item_feature_1": "kind1"}}
    assert len(first.event.choices) == 1
    assert first.event.choices[0].probability == pytest.approx(1 / N_ITEMS)
    assert first.rewards[0] in (0.0, 1.0)
    assert set(first.event.context) == {"user", "position", "affinity"}
    assert first.event.context["position"]["position"] in {"1", "2", "3"}
    assert not first.logged_distribution_known
    assert first.event.model_version == "obd:random/all"
    assert len({d.event.event_id for d in decisions}) == 50


def test_limit_reads_only_the_first_rows(tmp_path: Path) -> None:
    assert len(read_obd(write_obd(tmp_path / "d", rows=50), limit=7)) == 7


def test_without_item_context_the_only_candidate_known_is_the_one_shown(tmp_path: Path) -> None:
    decisions = read_obd(write_obd(tmp_path / "d", rows=5, items=False))
    assert [a.id for a in decisions[0].event.actions] == [decisions[0].event.choices[0].action_id]


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({3: {"propensity_score": "high"}}, "line 5: propensity_score 'high' is not a number"),
        ({0: {"click": "nan"}}, "line 2: click 'nan' is not finite"),
        ({1: {"item_id": 99}}, "item_id '99' is not in item_context.csv"),
        ({2: {"timestamp": "yesterday"}}, "timestamp 'yesterday' is not a date"),
    ],
)
def test_bad_rows_are_refused_with_line_and_column(tmp_path: Path, broken, message) -> None:
    with pytest.raises(ObdFormatError, match=message):
        read_obd(write_obd(tmp_path / "d", rows=10, broken=broken))


def test_missing_files_and_columns_are_named(tmp_path: Path) -> None:
    with pytest.raises(ObdFormatError, match="all.csv"):
        read_obd(tmp_path)
    (tmp_path / "all.csv").write_text("timestamp,item_id\n2019-11-24,1\n")
    with pytest.raises(ObdFormatError, match="missing column.*position, click, propensity_score"):
        read_obd(tmp_path)
