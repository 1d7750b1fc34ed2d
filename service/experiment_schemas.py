"""Request bodies of /v1/experiments (pydantic at the HTTP edge only)."""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

__all__ = [
    "ArmIn",
    "BoostIn",
    "CampaignIn",
    "ExperimentRequest",
    "RulesRequest",
    "ShipRequest",
    "StopRequest",
]

# Allowlist: ids and arm names reach SQL parameters, JSON and log lines, never anything else.
Slug = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=500)]
_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)  # Infinity was kept, echoed as null


class ArmIn(BaseModel):
    model_config = _STRICT

    name: Slug
    policy: Literal["model", "frozen", "most-popular", "no-offer"] = Field(
        description="model: the learning one; frozen: one model version; most-popular; no-offer: the holdout"
    )
    share: float = Field(gt=0, le=1, description="Share of the traffic (the arms' shares add up to 1)")
    version: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        None, description="The model version a frozen arm serves"
    )

    @model_validator(mode="after")
    def _version_for_frozen(self) -> ArmIn:
        if self.policy == "frozen" and self.version is None:
            raise ValueError("a frozen arm names the model version it serves (version)")
        if self.policy != "frozen" and self.version is not None:
            raise ValueError("only a frozen arm names a version")
        return self


class ExperimentRequest(BaseModel):
    """POST /v1/experiments: at most one runs at a time."""

    model_config = _STRICT

    id: Slug
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    arms: Annotated[list[ArmIn], Field(min_length=2, max_length=10)]
    alpha: float = Field(0.05, gt=0, le=0.2, description="The intervals' error rate, however often one looks")

    @field_validator("arms")
    @classmethod
    def _arms(cls, arms: list[ArmIn]) -> list[ArmIn]:
        names = [a.name for a in arms]
        if len(set(names)) != len(names):
            raise ValueError("arm names must be unique")
        total = math.fsum(a.share for a in arms)
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"the arms' shares add up to {total:g}, not 1")
        return arms


class StopRequest(BaseModel):
    model_config = _STRICT

    reason: Reason | None = None


class ShipRequest(BaseModel):
    model_config = _STRICT

    arm: Slug = Field(description="The arm whose policy becomes the default")
    reason: Reason | None = None


class PinIn(BaseModel):
    model_config = _STRICT

    name: Slug = Field(description="The campaign's name, as the trace names the rule")
    sku: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]


RuleSku = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]


class BoostIn(BaseModel):
    model_config = _STRICT

    sku: RuleSku = Field(description="A product of the catalog")
    factor: float = Field(
        gt=0, le=100, description="Multiplies its probability before renormalising (below 1 demotes)"
    )

    @field_validator("factor")
    @classmethod
    def _not_one(cls, factor: float) -> float:
        if factor == 1.0:
            raise ValueError("a factor of 1 changes nothing")
        return factor


class CampaignIn(BaseModel):
    model_config = _STRICT

    name: Slug = Field(description="As the trace names the rule: rules.campaigns.NAME")
    products: Annotated[list[RuleSku], Field(min_length=1, max_length=100)] = Field(
        description="Products of the catalog (in no other campaign)"
    )
    min_share: float | None = Field(
        None, gt=0, lt=1, description="Guaranteed share of the decisions that could show it, per period"
    )
    max_impressions: int | None = Field(
        None, ge=1, le=1_000_000_000, description="Decisions showing it per period; then it is removed"
    )
    period_seconds: float = Field(
        86_400.0, gt=0, le=366 * 86_400, description="Periods aligned to the epoch (86400: a UTC day)"
    )

    @field_validator("products")
    @classmethod
    def _distinct(cls, products: list[str]) -> list[str]:
        if len(set(products)) != len(products):
            raise ValueError("products must be distinct")
        return products

    @model_validator(mode="after")
    def _does_something(self) -> CampaignIn:
        if self.min_share is None and self.max_impressions is None:
            raise ValueError("a campaign needs min_share, max_impressions or both")
        return self


class RulesRequest(BaseModel):
    """PUT /v1/rules: the operator's standing rules (replaces them all)."""

    model_config = _STRICT

    pins: Annotated[list[PinIn], Field(max_length=20)] = Field(
        default_factory=list, description="Campaigns that take the first slot when a candidate (first wins)"
    )
    margin_floor: float | None = Field(
        None, ge=0, description="Remove candidates whose known margin is lower"
    )
    never_categories: Annotated[
        list[Annotated[str, StringConstraints(min_length=1, max_length=64)]], Field(max_length=100)
    ] = Field(default_factory=list, description="Categories never shown")
    max_per_category: int | None = Field(
        None, ge=1, le=20, description="At most this many offers per category"
    )
    boosts: Annotated[list[BoostIn], Field(max_length=100)] = Field(
        default_factory=list,
        description="Products whose probability is multiplied (logged: replays exactly)",
    )
    campaigns: Annotated[list[CampaignIn], Field(max_length=20)] = Field(
        default_factory=list, description="Guaranteed shares (mixed into the served distribution) and caps"
    )
    reason: Reason | None = None

    @field_validator("boosts")
    @classmethod
    def _one_boost_each(cls, boosts: list[BoostIn]) -> list[BoostIn]:
        skus = [b.sku for b in boosts]
        if len(set(skus)) != len(skus):
            raise ValueError("boost each product once")
        return boosts

    @field_validator("campaigns")
    @classmethod
    def _unique_campaigns(cls, campaigns: list[CampaignIn]) -> list[CampaignIn]:
        names = [c.name for c in campaigns]
        if len(set(names)) != len(names):
            raise ValueError("campaign names must be unique")
        return campaigns

    @field_validator("pins")
    @classmethod
    def _unique(cls, pins: list[PinIn]) -> list[PinIn]:
        names = [p.name for p in pins]
        if len(set(names)) != len(names):
            raise ValueError("pin names must be unique")
        return pins
