"""A hand-kept rule's reason is a template filled on every offer: it may name fields, never size them."""

from __future__ import annotations

from pathlib import Path

import pytest

from policies.offers.relations import RulesError, read_rules


@pytest.mark.parametrize(
    "reason",
    [
        "{anchor} {anchor:>300000000}",
        "{anchor} {where:^99999999}",
        "{anchor} {anchor!r}",
        "{anchor} {anchor:.3}",
    ],
)
def test_a_reason_with_a_format_spec_or_conversion_is_refused(tmp_path: Path, reason: str) -> None:
    # {anchor:>300000000} made every offer's reason 300 MB long.
    rules = tmp_path / "rules.toml"
    rules.write_text(f'[[rule]]\nanchor = "camera"\ncomplements = ["tripod"]\nreason = "{reason}"\n')
    with pytest.raises(RulesError, match="rule 1 \\(camera\\) reason may use only"):
        read_rules(rules)


def test_a_reason_naming_its_fields_is_kept(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rule]]\nanchor = "camera"\ncomplements = ["tripod"]\nreason = "Steadies the {anchor} {where}"\n'
    )
    assert [r.reason for r in read_rules(rules)] == ["Steadies the {anchor} {where}"]
