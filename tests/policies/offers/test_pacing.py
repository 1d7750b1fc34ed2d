"""Pacing rules, one at a time."""

from __future__ import annotations

from policies.offers.pacing import PacingOptions, ShopperEvent, pace

OPTIONS = PacingOptions(session_seconds=1800, session_cap=6, cooldown_seconds=100, category_fatigue=3)
NOW = 10_000.0


def verdict(events, frequency="normal", requested=2):
    return pace(events, frequency=frequency, requested=requested, now=NOW, options=OPTIONS)


def test_a_new_shopper_gets_what_was_asked() -> None:
    assert verdict([]).max_offers == 2


def test_off_means_no_offer() -> None:
    assert verdict([], frequency="off").reason == "shopper_turned_offers_off"


def test_the_session_cap_counts_offers_shown_and_fewer_means_a_third() -> None:
    shown = [ShopperEvent("shown", NOW - 60 * i, "tripod") for i in range(5)]
    assert verdict(shown, requested=3).max_offers == 1  # 5 of 6 used
    assert verdict(shown + [ShopperEvent("shown", NOW - 1, "bag")]).reason == "session_cap_reached"
    assert verdict(shown[:2], frequency="fewer").reason == "session_cap_reached"  # 6 // 3 = 2
    old = [ShopperEvent("shown", NOW - 4000, "x")] * 10  # an earlier session does not count
    assert verdict(old).max_offers == 2


def test_cool_down_doubles_with_each_dismissal_and_a_positive_answer_relaxes_it() -> None:
    one = [ShopperEvent("dismiss", NOW - 150)]
    assert verdict(one).max_offers == 2  # 100 s cool-down is over
    two = [ShopperEvent("dismiss", NOW - 500), ShopperEvent("dismiss", NOW - 150)]
    assert verdict(two).reason == "cooling_down_after_2_dismissals"  # 200 s
    three = [ShopperEvent("dismiss", NOW - 900), *two]
    assert verdict(three).max_offers == 0  # 400 s
    forgiven = [*two[:1], ShopperEvent("positive", NOW - 400), two[1]]
    assert verdict(forgiven).max_offers == 2  # one dismissal since the click: 100 s, over


def test_a_kind_shown_too_often_without_interest_rests_for_the_session() -> None:
    shown = [ShopperEvent("shown", NOW - i, "tripod") for i in range(1, 4)]
    assert verdict(shown).tired_categories == {"tripod"}
    liked = [*shown, ShopperEvent("positive", NOW - 1, "tripod")]
    assert verdict(liked).tired_categories == frozenset()
