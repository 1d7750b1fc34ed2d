"""The rank path: rank with the served policy, sample, log durably, answer.

No Flask here: the blueprints parse and serialise, this decides.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from logs.experiment_store import ExperimentStore
from logs.records import DecisionRecord, EventConflict
from logs.rule_store import COUNTED, trace_counts
from policies.base import Action, Features, Ranking, SlotChoice
from policies.deciding.mixture import promote
from policies.deciding.promotions import mixed_trace
from policies.deciding.rules import Attributes, Filters, Shaped
from policies.deciding.sampling import (
    baseline_choice,
    choose,
    diverse_bans,
    first_slot,
    seed_for,
    served,
)
from service import business_rules
from service.experiment_arms import Assignment, arms
from service.intake_fingerprint import same_request
from service.resources import Resources

__all__ = ["RankInput", "decide"]


@dataclass(frozen=True, slots=True)
class RankInput:
    event_id: str | None
    context: Features
    actions: tuple[Action, ...]
    excluded: frozenset[str]
    slots: int
    fingerprint: str  # identifies the request apart from its event id ("" if none given)
    # Per slot, what the storefront would show without xsell (None, or no entry: the
    # first candidate that slot may show); served when the learning mode says so.
    baseline: tuple[str | None, ...] = ()
    deferred: bool = False  # learned only once activated (Personalizer's deferActivation)
    slot_ids: tuple[str, ...] | None = None  # the storefront's names for its slots
    slot_excluded: tuple[frozenset[str], ...] = ()  # per slot, actions it may not show
    # What an experiment's sticky assignment is keyed on (#15): the keyed shopper id, else
    # the session, else the event.
    shopper: str | None = None
    session: str | None = None
    # Experiments and business rules apply to /v1/rank and /v1/offers only: Personalizer's
    # edge keeps Personalizer's contract (an offer in every answer, no filters).
    storefront_controls: bool = False
    # The request's own filters, and what the offers path already knows of its candidates.
    filters: Filters | None = None
    attributes: Mapping[str, Attributes] | None = None
    backfill: bool = False  # the candidates are popular products the filters' first pick left none of
    # What versions before the tagged fingerprint stored for this request (service/intake_fingerprint.py).
    legacy_fingerprints: Callable[[], Iterable[str]] = tuple


def decide(res: Resources, request: RankInput) -> DecisionRecord:
    """Rank, sample one offer per slot, and log the decision before returning it.

    A retry with the same event id and the same request returns the stored decision.
    """
    if request.event_id is not None:
        # Answer a retry without touching the model: the first answer is the answer.
        stored = res.store.find_decision(request.event_id)
        if stored is not None:
            if not same_request(stored.request_sha256, request.fingerprint, request.legacy_fingerprints):
                raise EventConflict(f"event id {request.event_id!r} was already used for another request")
            return stored
    event_id = request.event_id or uuid.uuid4().hex
    config = res.config.current().live
    # An experiment's arm is part of what the request carried: it picks the policy, and
    # the decision logs it, so the logged propensities stay those the arm served (#15).
    controls = request.storefront_controls
    assignment = arms(res).assign(request.shopper, request.session, event_id) if controls else None
    arm = assignment.arm if assignment is not None else None
    if assignment is not None and assignment.arm.policy == "no-offer":
        return _hold_out(res, request, event_id, assignment, config.reward_window_seconds)
    # What the rules add to the request's exclusions are locals, not a copied RankInput:
    # the copy (17 fields) was a tenth of what rules cost on the rank path.
    excluded, slot_excluded, shaped = (
        business_rules.apply(res, request, request.filters, request.attributes)
        if controls
        else (request.excluded, request.slot_excluded, None)
    )
    version, policy = (
        arms(res).frozen(arm.version) if arm is not None and arm.version else res.served.current()
    )
    popular = arm is not None and arm.policy == "most-popular"
    # served with probability 1, the popular order logged as each slot's baseline
    baseline = _popular(res, request) if popular else request.baseline
    baseline_mode = config.serves_baseline or popular
    ranking = (
        Ranking(tuple(a.id for a in request.actions), np.zeros(len(request.actions)))
        if popular
        else policy.rank(request.context, request.actions, excluded)
    )
    # Everything that shapes the served distribution is logged with it (slot controls,
    # exploration share, baseline mode), so a replay of the log reproduces it exactly.
    share = 0.0 if baseline_mode else config.exploration_share
    promoted: dict[str, Any] = {}
    if baseline_mode:
        ranking, choices = _baseline(request.slots, excluded, slot_excluded, baseline, ranking.action_ids)
    else:
        ranking, promoted = _promoted(ranking, share, excluded, shaped)
        cap = shaped.max_per_category if shaped is not None else None
        categories = shaped.category_of if shaped is not None else None
        choices = choose(
            ranking,
            request.slots,
            seed_for(event_id),
            slot_excluded=slot_excluded,
            category_of=categories,
            max_per_category=cap,
        )
        ranking = first_slot(ranking, slot_excluded)  # what the first slot was drawn from
        if cap is not None and categories:  # log each slot's bans along the path drawn
            chosen = [c.action_id for c in choices]
            ids = ranking.action_ids
            slot_excluded = diverse_bans(ids, request.slots, chosen, slot_excluded, categories, cap)
    now = res.store.clock()
    # A campaign's share and cap count what every worker logged: the decision carries
    # its counts in its trace (logs/rule_store.py), so they exist exactly when it does.
    counts = business_rules.campaign_rows(shaped, choices, now)
    record = DecisionRecord(
        event_id=event_id,
        created_at=now,
        # A deferred decision never closes until it is activated (LogStore.activate).
        closes_at=float("inf") if request.deferred else now + config.reward_window_seconds,
        model_version=version.version,
        request_sha256=request.fingerprint,
        context=request.context,
        actions=request.actions,
        excluded=excluded,
        probabilities=tuple(ranking.probabilities.tolist()),  # the same floats, without a loop
        choices=choices,
        slots=request.slots,
        deferred=request.deferred,
        # First learned a short horizon after it was made, answered or silent alike.
        learn_at=float("inf")
        if request.deferred
        else now + min(res.settings.first_learn_seconds, config.reward_window_seconds),
        slot_ids=request.slot_ids,
        slot_excluded=slot_excluded,
        baseline=baseline,
        exploration_share=share,
        served_baseline=baseline_mode,
        experiment=None if assignment is None else assignment.logged(),
        rules=None
        if shaped is None
        else shaped.trace()
        | promoted
        | ({"backfill": True} if request.backfill else {})
        | ({COUNTED: trace_counts(counts)} if counts else {}),
    )
    stored, new = res.store.record_decision(record)
    if new:  # a retry counts nothing: its decision is not new
        business_rules.counted(res, counts)
    return stored


def _promoted(
    ranking: Ranking, share: float, excluded: frozenset[str], shaped: Shaped | None
) -> tuple[Ranking, dict[str, Any]]:
    """Serve the policy's ranking with the exploration share and the promotions mixed in.

    Returns the distribution to sample from and the promotions' trace (``boosted`` and
    ``mixed``), which holds all a replay needs to serve the same mixture
    (``LoggedEvent.mixing``): a decision that serves the baseline logs neither.
    """
    if shaped is None or not (shaped.boosts or shaped.targets):
        return served(ranking, share, excluded), {}
    # Each campaign's epsilon is read off the distribution it is mixed into; the replay
    # takes the logged epsilons as given (policies/deciding/mixture.py served).
    ranking, shares = promote(ranking, share, excluded, shaped.boosts, shaped.targets)
    return ranking, shaped.boost_trace() | mixed_trace(shares, shaped.targets)


def _hold_out(
    res: Resources, request: RankInput, event_id: str, assignment: Assignment, window: float
) -> DecisionRecord:
    """Answer the no-offer arm with nothing, logged among the experiment's holdouts.

    Not a row of `decisions`: nothing was chosen, so there is no propensity for an
    offline evaluation to use, and every decision there stays evaluable.
    """
    now = res.store.clock()
    ExperimentStore(res.store).record_holdout(
        event_id,
        assignment.experiment.id,
        assignment.arm.name,
        assignment.unit,
        created_at=now,
        closes_at=now + window,
    )
    return DecisionRecord(
        event_id=event_id,
        created_at=now,
        closes_at=now + window,
        model_version="",
        request_sha256=request.fingerprint,
        context=request.context,
        actions=request.actions,
        excluded=request.excluded,
        probabilities=(0.0,) * len(request.actions),
        choices=(),
        slots=request.slots,
        experiment=assignment.logged(),
    )


def _popular(res: Resources, request: RankInput) -> tuple[str | None, ...]:
    """Each slot's most popular candidate (catalog popularity; ties keep the request's order)."""
    ids = [a.id for a in request.actions]
    popularity = ExperimentStore(res.store).popularity(ids)
    order = sorted(ids, key=lambda a: -popularity.get(a, 0))  # stable: ties keep their order
    return tuple(order[: request.slots])


def _baseline(
    slots: int,
    excluded: frozenset[str],
    slot_excluded: tuple[frozenset[str], ...],
    baseline: tuple[str | None, ...],
    action_ids: tuple[str, ...],
) -> tuple[Ranking, tuple[SlotChoice, ...]]:
    """Serve the storefront's own choice with probability 1 (apprentice and logging-only modes).

    The logged propensities are the truth: 1 for the baseline, 0 for the rest, so an
    offline evaluation credits another policy only where it agrees with the baseline.
    """
    order: list[str] = []
    for slot in range(slots):
        banned = slot_excluded[slot] if slot < len(slot_excluded) else frozenset()
        wanted = baseline[slot] if slot < len(baseline) else None
        shown = baseline_choice(action_ids, excluded | banned | set(order), wanted)
        if shown is None:
            break
        order.append(shown)
    # all zeros when the first slot may show nothing: nothing was served
    first = np.array([1.0 if order and a == order[0] else 0.0 for a in action_ids])
    choices = tuple(SlotChoice(slot, action_id, 1.0) for slot, action_id in enumerate(order))
    return Ranking(action_ids, first), choices
