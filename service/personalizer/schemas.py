"""Personalizer request and response bodies, with Personalizer's own field names.

Unknown fields are ignored, as the Personalizer SDKs expect of the service; every
list and string is bounded. Durations are ISO 8601 (``PT10M``), as Personalizer
sent and returned them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

__all__ = [
    "EvaluationRequest",
    "MultiSlotRankRequest",
    "MultiSlotRewardRequest",
    "PolicyBody",
    "PersonalizerRankRequest",
    "PersonalizerRewardRequest",
    "ServiceConfiguration",
]

MAX_ACTIONS = 50
MAX_SLOTS = 10
# Any printable text: Personalizer event and action ids were free-form.
EventId = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]
ActionId = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]
MAX_EXACT_INTEGER = 2**53


def _integers_in_range(objects: list[Any]) -> list[Any]:
    """Refuse an integer past 64 bits anywhere in the objects (ignored keys too).

    orjson cannot write one into the log's request fingerprint and ``float()`` of one
    past ~1e308 raises OverflowError; the features xsell uses are held to ±2**53 later,
    with their exact place named (features.py). orjson finds one at C speed: this runs
    on every Personalizer rank.
    """
    try:
        orjson.dumps(objects)
    except orjson.JSONEncodeError as error:
        where = _huge_integer(objects)
        raise ValueError(f"numbers must be within ±2**53 (at {where})" if where else str(error)) from None
    return objects


def _huge_integer(objects: list[Any]) -> str | None:
    """Return where the first integer past ±2**53 is (``[0].user.n``), or None."""
    pending: list[tuple[str, Any]] = [("", objects)]
    while pending:
        where, item = pending.pop()
        if isinstance(item, dict):
            pending.extend((f"{where}.{key}", value) for key, value in item.items())
        elif isinstance(item, list):
            pending.extend((f"{where}[{k}]", value) for k, value in enumerate(item))
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) > MAX_EXACT_INTEGER:
            return where
    return None


FeatureObjects = Annotated[list[Any], Field(max_length=64), AfterValidator(_integers_in_range)]


class _Body(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="ignore", allow_inf_nan=False, frozen=True
    )


class RankableAction(_Body):
    id: ActionId
    features: FeatureObjects = Field(default_factory=list)


def _distinct(actions: list[RankableAction]) -> list[str]:
    ids = [a.id for a in actions]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"duplicate action ids: {', '.join(duplicates)}")
    return ids


class PersonalizerRankRequest(_Body):
    """POST rank."""

    context_features: FeatureObjects = Field(default_factory=list)
    actions: Annotated[list[RankableAction], Field(min_length=1, max_length=MAX_ACTIONS)]
    excluded_actions: Annotated[list[ActionId], Field(max_length=MAX_ACTIONS)] = Field(default_factory=list)
    event_id: EventId | None = None
    defer_activation: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> PersonalizerRankRequest:
        ids = _distinct(self.actions)
        if set(ids) <= set(self.excluded_actions):
            raise ValueError("every action is excluded; nothing could be ranked")
        return self


class SlotRequest(_Body):
    id: ActionId
    baseline_action: ActionId
    excluded_actions: Annotated[list[ActionId], Field(max_length=MAX_ACTIONS)] = Field(default_factory=list)
    features: FeatureObjects = Field(default_factory=list)


class MultiSlotRankRequest(_Body):
    """POST multislot/rank."""

    context_features: FeatureObjects = Field(default_factory=list)
    actions: Annotated[list[RankableAction], Field(min_length=1, max_length=MAX_ACTIONS)]
    slots: Annotated[list[SlotRequest], Field(min_length=1, max_length=MAX_SLOTS)]
    event_id: EventId | None = None
    defer_activation: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> MultiSlotRankRequest:
        ids = set(_distinct(self.actions))
        slot_ids = [s.id for s in self.slots]
        if len(set(slot_ids)) != len(slot_ids):
            raise ValueError("slot ids must be unique")
        for slot in self.slots:
            if slot.baseline_action not in ids:
                raise ValueError(f"slot {slot.id!r}: baselineAction is not one of the actions")
            if slot.baseline_action in slot.excluded_actions:
                raise ValueError(f"slot {slot.id!r}: baselineAction may not be excluded")
        if len(self.slots) > len(ids):
            raise ValueError("more slots than actions")
        return self


class PersonalizerRewardRequest(_Body):
    """POST events/{eventId}/reward."""

    # Strict: lax mode read true as a reward of 1 and "0.5" as 0.5 (an int is still a number).
    value: StrictFloat = Field(ge=-1, le=1, description="Reward, between -1 and 1")


class SlotReward(_Body):
    slot_id: ActionId
    value: StrictFloat = Field(ge=-1, le=1)


class MultiSlotRewardRequest(_Body):
    """POST multislot/events/{eventId}/reward."""

    reward: Annotated[list[SlotReward], Field(min_length=1, max_length=MAX_SLOTS)]


class ServiceConfiguration(_Body):
    """GET/PUT configurations/service; on PUT a missing field keeps its current value.

    Only types are checked here: the bounds are those of the live settings
    (policies/deciding/live_config.py), so whatever GET reports, PUT accepts.
    """

    reward_wait_time: timedelta | None = Field(None, description="ISO 8601 duration, 1 ms to 10 years")
    default_reward: StrictFloat | None = None
    reward_aggregation: Literal["earliest", "sum", "average", "max"] | None = None
    exploration_percentage: StrictFloat | None = Field(None, description="0 to 1")
    model_export_frequency: timedelta | None = Field(None, description="ISO 8601 duration, 0 to 10 years")
    log_retention_days: int | None = Field(None, description="-1 (keep forever) or 1 to 36500")
    model_retrain_days: int | None = Field(None, ge=0, le=36500)
    learning_mode: Literal["Online", "Apprentice", "LoggingOnly"] | None = None
    is_auto_optimization_enabled: bool | None = None

    @field_validator(
        "default_reward", "exploration_percentage", "log_retention_days", "model_retrain_days", mode="before"
    )
    @classmethod
    def _no_booleans(cls, value: Any) -> Any:
        # pydantic would read true as 1: logRetentionDays=true kept one day of the log.
        if isinstance(value, bool):
            raise ValueError("must be a number, not true or false")
        return value


class PolicyBody(_Body):
    """GET/PUT configurations/policy: the learning settings (VW arguments)."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=256)] = "xsell"
    arguments: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class EvaluationPolicy(_Body):
    name: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    arguments: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class EvaluationRequest(_Body):
    """Create an offline evaluation over the decisions made in [startTime, endTime)."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    start_time: datetime
    end_time: datetime
    policies: Annotated[list[EvaluationPolicy], Field(max_length=10)] = Field(default_factory=list)
    enable_policy_optimization: bool = False
    enable_offline_experimentation: bool = False  # v1.0's name for the same wish

    @model_validator(mode="after")
    def _ordered(self) -> EvaluationRequest:
        if self.end_time <= self.start_time:
            raise ValueError("endTime must be after startTime")
        return self


class ApplyFromEvaluation(_Body):
    evaluation_id: EventId
    policy_name: Annotated[str, StringConstraints(min_length=1, max_length=256)] | None = None


class FeatureImportanceRequest(_Body):
    name: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    start_time: datetime
    end_time: datetime

    @model_validator(mode="after")
    def _ordered(self) -> FeatureImportanceRequest:
        if self.end_time <= self.start_time:
            raise ValueError("endTime must be after startTime")
        return self
