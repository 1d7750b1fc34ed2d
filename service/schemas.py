"""HTTP request and response bodies, one model per direction."""

from __future__ import annotations

import math
from dataclasses import fields as dataclass_fields
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    StrictFloat,
    StringConstraints,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from policies.base import Action
from policies.deciding.rules import Filters
from policies.learning.rewards import SIGNALS

__all__ = [
    "ActivateRequest",
    "FeedbackRequest",
    "FreezeRequest",
    "OffersRequest",
    "OffersResponse",
    "PreferencesRequest",
    "PreferencesResponse",
    "RankRequest",
    "RankResponse",
    "RewardRequest",
    "RollbackRequest",
]

MAX_ACTIONS = 50
MAX_SLOTS = 10
Name = Annotated[str, StringConstraints(min_length=1, max_length=64)]
# Printable, no whitespace: ids travel in URLs and logs.
EventId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\s\x00-\x1f\x7f]+$")]
ActionId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
MAX_TEXT = 256
MAX_LIST = 64
_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


def _feature_value(value: Any) -> Any:
    """Accept a string, a finite number, a boolean or a list of strings; nothing else."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) > 2**53:  # beyond this a float (what VW reads) is no longer exact
            raise ValueError("integers must be within ±2**53")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("numbers must be finite")
        return value
    if isinstance(value, str):
        if len(value) > MAX_TEXT:
            raise ValueError(f"strings may have at most {MAX_TEXT} characters")
        return value
    if isinstance(value, list):
        if len(value) > MAX_LIST:
            raise ValueError(f"lists may have at most {MAX_LIST} items")
        if not all(isinstance(item, str) and len(item) <= MAX_TEXT for item in value):
            raise ValueError(f"lists may hold only strings of at most {MAX_TEXT} characters")
        return value
    raise ValueError("must be a string, a finite number, a boolean or a list of strings")


# One validator instead of a union, so a bad value gets one clear error, not five.
FeatureValue = Annotated[
    Any,
    PlainValidator(_feature_value),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "maxLength": MAX_TEXT},
                {"type": "number"},
                {"type": "boolean"},
                {"type": "array", "items": {"type": "string", "maxLength": MAX_TEXT}, "maxItems": MAX_LIST},
            ]
        }
    ),
]
Namespace = Annotated[dict[Name, FeatureValue], Field(max_length=128)]
Features = Annotated[dict[Name, Namespace], Field(max_length=32)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class ActionIn(_Body):
    id: ActionId
    features: Features = Field(default_factory=dict)


class SlotIn(_Body):
    """One slot of a /v1/rank request and the controls that apply to it alone."""

    id: ActionId | None = Field(None, description="The storefront's name for the slot (all slots or none)")
    excluded_actions: Annotated[list[ActionId], Field(max_length=MAX_ACTIONS)] = Field(
        default_factory=list, description="Actions this slot may not show, on top of excluded_actions"
    )
    baseline_action: ActionId | None = Field(
        None,
        description="What the storefront shows here without xsell (default: the first action the slot"
        " may show); served with probability 1 in the apprentice and logging-only modes",
    )


def _slot_list(value: Any) -> Any:
    """Read a number of slots as that many slots without per-slot controls."""
    if isinstance(value, int) and not isinstance(value, bool):
        if not 1 <= value <= MAX_SLOTS:
            raise ValueError(f"must be between 1 and {MAX_SLOTS}")
        return [{}] * value
    if isinstance(value, list):
        return value
    raise ValueError(f"must be a number of slots (1 to {MAX_SLOTS}) or a list of slot objects")


Slots = Annotated[
    list[SlotIn],
    BeforeValidator(
        _slot_list,
        json_schema_input_type=Annotated[int, Field(ge=1, le=MAX_SLOTS)]
        | Annotated[list[SlotIn], Field(min_length=1, max_length=MAX_SLOTS)],
    ),
    Field(min_length=1, max_length=MAX_SLOTS),
]


Label = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class FiltersIn(_Body):
    """Which candidates this request may be shown (#15); include lists keep only what they name."""

    include_categories: Annotated[list[Label], Field(max_length=50)] = Field(default_factory=list)
    exclude_categories: Annotated[list[Label], Field(max_length=50)] = Field(default_factory=list)
    include_skus: Annotated[list[ActionId], Field(max_length=MAX_ACTIONS)] = Field(default_factory=list)
    exclude_skus: Annotated[list[ActionId], Field(max_length=MAX_ACTIONS)] = Field(default_factory=list)
    include_tags: Annotated[list[Label], Field(max_length=50)] = Field(default_factory=list)
    exclude_tags: Annotated[list[Label], Field(max_length=50)] = Field(default_factory=list)
    include_families: Annotated[list[Label], Field(max_length=50)] = Field(default_factory=list)
    exclude_families: Annotated[list[Label], Field(max_length=50)] = Field(default_factory=list)
    min_price: float | None = Field(None, ge=0)
    max_price: float | None = Field(None, ge=0)
    in_stock: bool = Field(False, description="Only candidates known to have stock (catalog, else features)")
    max_per_category: int | None = Field(None, ge=1, le=20, description="At most this many per category")

    @field_validator("max_price")
    @classmethod
    def _bounds(cls, high: float | None, info: ValidationInfo) -> float | None:
        low = info.data.get("min_price")
        if high is not None and low is not None and high < low:
            raise ValueError(f"max_price {high:g} is below min_price {low:g}")
        return high

    def domain(self) -> Filters:
        """The filters as the rules take them; equal filters give the same object.

        Storefronts send the same few filter sets again and again: one object per set
        spares building it per request, and lets the rules' caches, keyed on it, match
        it by identity. The key is every field as given (reprs for the scalars: -0.0 ==
        0.0, and the log keeps a bound as the request gave it).
        """
        values = {name: getattr(self, name) for name in _FILTER_FIELDS}
        key = tuple(tuple(v) if isinstance(v, list) else repr(v) for v in values.values())
        found = _FILTERS.get(key)
        if found is None:
            if len(_FILTERS) >= _FILTERS_KEPT:
                _FILTERS.clear()
            found = _FILTERS[key] = Filters(
                **{name: frozenset(v) if isinstance(v, list) else v for name, v in values.items()}
            )
        return found


_FILTER_FIELDS = tuple(f.name for f in dataclass_fields(Filters))  # FiltersIn has the same
_FILTERS: dict[tuple[object, ...], Filters] = {}
# Filter sets a worker keeps: at most ~30 kB each (two sku lists of 50, six label lists
# of 50), so a few MB at worst; cleared when full.
_FILTERS_KEPT = 256


class RankRequest(_Body):
    """POST /v1/rank."""

    event_id: EventId | None = None
    context: Features = Field(default_factory=dict)
    actions: Annotated[list[ActionIn], Field(min_length=1, max_length=MAX_ACTIONS)]
    excluded_actions: Annotated[list[ActionId], Field(max_length=MAX_ACTIONS)] = Field(default_factory=list)
    slots: Slots = Field(
        default_factory=lambda: [SlotIn()],
        description="How many offers to choose (a number), or one object per slot with its own controls",
    )
    # What keeps a running experiment's arm sticky (#15); neither given: the event itself.
    shopper_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        None, description="Who is shopping (kept only as a keyed hash): their experiment arm sticks"
    )
    session_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        None, description="The storefront's session when the shopper is anonymous (kept as a keyed hash)"
    )
    filters: FiltersIn | None = None

    @field_validator("slots")
    @classmethod
    def _slot_controls(cls, slots: list[SlotIn], info: ValidationInfo) -> list[SlotIn]:
        """Check each slot's controls against the actions (skipped if those were invalid)."""
        if "actions" not in info.data or "excluded_actions" not in info.data:
            return slots
        ids = {a.id for a in info.data["actions"]}
        excluded = set(info.data["excluded_actions"])
        named = [s.id for s in slots if s.id is not None]
        if named and len(named) != len(slots):
            raise ValueError("name every slot (id) or none")
        if len(set(named)) != len(named):
            raise ValueError("slot ids must be unique")
        for k, slot in enumerate(slots):
            unknown = sorted(set(slot.excluded_actions) - ids)
            if unknown:
                raise ValueError(
                    f"slots[{k}].excluded_actions names ids not in actions: {', '.join(unknown)}"
                )
            if ids <= excluded | set(slot.excluded_actions):
                raise ValueError(f"slots[{k}] excludes every action; nothing could be offered there")
            if slot.baseline_action is not None and (
                slot.baseline_action not in ids - excluded - set(slot.excluded_actions)
            ):
                raise ValueError(f"slots[{k}].baseline_action must be an action this slot may show")
        return slots

    @model_validator(mode="after")
    def _consistent(self) -> RankRequest:
        ids = [a.id for a in self.actions]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate action ids: {', '.join(duplicates)}")
        unknown = sorted(set(self.excluded_actions) - set(ids))
        if unknown:
            raise ValueError(f"excluded_actions names ids not in actions: {', '.join(unknown)}")
        if set(ids) <= set(self.excluded_actions):
            raise ValueError("every action is excluded; nothing could be offered")
        return self

    def domain_actions(self) -> tuple[Action, ...]:
        return tuple(Action(a.id, a.features) for a in self.actions)


class Choice(BaseModel):
    slot: int = Field(description="1-based slot")
    slot_id: str | None = Field(None, description="The slot's id, when the request named its slots")
    action_id: str
    probability: float = Field(description="Probability of this choice given earlier slots")


class RankedAction(BaseModel):
    id: str
    probability: float
    excluded: bool = False
    rule: str | None = Field(
        None, description="The business rule or filter that removed, pinned, boosted or mixed it in (#15)"
    )


class RankResponse(BaseModel):
    """Answer of POST /v1/rank."""

    event_id: str
    model_version: str
    chosen: list[str]
    choices: list[Choice]
    ranking: list[RankedAction]


class FeedbackRequest(_Body):
    """POST /v1/events/{event_id}/feedback."""

    signal: Literal[SIGNALS]  # type: ignore[valid-type]
    # Strict: lax mode read true as 1 and "120" as 120 (an int is still a number).
    value: StrictFloat | None = Field(None, ge=0, description="Order value, for purchase")
    action_id: ActionId | None = Field(None, description="Which offer (default: the first chosen)")


class RewardRequest(_Body):
    """POST /v1/events/{event_id}/reward."""

    value: StrictFloat  # a JSON number: true was read as a reward of 1
    action_id: ActionId | None = None


class FeedbackResponse(BaseModel):
    event_id: str
    action_id: str
    signal: str
    duplicate: bool
    learnable: bool = Field(description="False when it arrived after the event closed")


# -- admin: models --------------------------------------------------------------------


class ActivateRequest(BaseModel):
    model_config = _STRICT

    reason: str | None = Field(None, max_length=500, description="Why; kept in the change history")


class RollbackRequest(BaseModel):
    model_config = _STRICT

    to: str | None = Field(
        None, min_length=1, max_length=64, description="Version to restore (default: one old enough)"
    )
    reason: str | None = Field(None, max_length=500)
    relearn: bool = Field(False, description="Let the restored model learn what the discarded ones learned")
    freeze: bool = Field(False, description="Stop learning until unfrozen")


class FreezeRequest(BaseModel):
    model_config = _STRICT

    frozen: bool
    reason: str | None = Field(None, max_length=500)


# -- offers ---------------------------------------------------------------------------

MAX_CART_LINES = 100
Sku = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\s\x00-\x1f\x7f]+$")]


class CartLineIn(BaseModel):
    model_config = _STRICT

    sku: Sku
    qty: int = Field(1, ge=1, le=1000)
    price: float | None = Field(None, ge=0, le=1_000_000)


class OffersRequest(BaseModel):
    """POST /v1/offers: the storefront sends what it knows; xsell finds the candidates."""

    model_config = _STRICT

    event_id: EventId | None = None
    cart: Annotated[list[CartLineIn], Field(max_length=MAX_CART_LINES)] = Field(default_factory=list)
    viewed: Annotated[list[Sku], Field(max_length=50)] = Field(default_factory=list)
    bought: Annotated[list[Sku], Field(max_length=50)] = Field(
        default_factory=list, description="Skus this shopper bought before, newest first"
    )
    search: str | None = Field(None, max_length=200, description="Reduced to tokens; never stored verbatim")
    device: Annotated[str, StringConstraints(max_length=32)] | None = None
    locale: Annotated[str, StringConstraints(max_length=16)] | None = None
    hour: int | None = Field(None, ge=0, le=23, description="Local hour of the shopper")
    stage: Literal["browse", "cart", "checkout"] = "browse"
    shopper_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        None, description="Accepted for pacing and preferences; never stored or logged raw"
    )
    max_offers: int = Field(1, ge=1, le=MAX_SLOTS)
    filters: FiltersIn | None = None
    session_id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        None, description="The storefront's session when the shopper is anonymous (keeps an experiment's arm)"
    )

    @model_validator(mode="after")
    def _distinct_cart(self) -> OffersRequest:
        skus = [line.sku for line in self.cart]
        duplicates = sorted({s for s in skus if skus.count(s) > 1})
        if duplicates:
            raise ValueError(f"cart lists these skus more than once (use qty): {', '.join(duplicates)}")
        return self


class OfferConfidence(BaseModel):
    level: Literal["high", "medium", "low"]
    score: float = Field(description="0.5 x relation strength + 0.5 x model probability")


class OfferOut(BaseModel):
    slot: int
    sku: str
    title: str
    price: float
    category: str
    reason: str
    confidence: OfferConfidence
    probability: float = Field(description="Propensity of this choice given earlier slots")


class OffersResponse(BaseModel):
    event_id: str | None
    model_version: str | None
    offers: list[OfferOut]
    no_offer: str | None = Field(
        None, description="Why nothing is offered: cart_full, checkout_cart_full, holdout, filtered, ..."
    )
    backfill: bool = Field(
        False, description="The filters and rules left none of the related products: these are popular ones"
    )
    unknown_skus: list[str] = Field(
        default_factory=list,
        description="Cart skus the catalog does not have: left out, the answer uses the other lines",
    )


# -- shoppers -------------------------------------------------------------------------


class PreferencesRequest(BaseModel):
    """POST /v1/shoppers/{id}/preferences: fields left out keep their current value."""

    model_config = _STRICT

    muted_categories: Annotated[list[Name], Field(max_length=MAX_LIST)] | None = Field(
        None, description="Categories or families the shopper is not interested in (replaces the list)"
    )
    frequency: Literal["off", "fewer", "normal"] | None = None
    personalised: StrictBool | None = Field(None, description="False: offers use nothing about this shopper")


class PreferencesResponse(BaseModel):
    muted_categories: list[str]
    frequency: Literal["off", "fewer", "normal"]
    personalised: bool
