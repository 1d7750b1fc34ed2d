"""The settings an operator may change while the service runs, and where changes are kept.

The environment (``XSELL_*``) gives every setting its value; an operator may override
the few named here while the service runs (``PATCH /v1/config``, ``xsell config set``
or the Personalizer configuration API). Overrides are kept, sparse, in the log's
``control`` table, so every gunicorn worker and the learner see the same values
within a poll interval, and a restart keeps them. What is in force is answered in one
place, ``service.effective``; the learner and the guardrail read it through
`InForceSource`. The bounds of each live setting are checked here and nowhere else:
the environment, the HTTP routes and the CLI all call `check_live_setting`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, Protocol

from policies.learning.rewards import RewardRules

__all__ = [
    "CONTROL_KEY",
    "ControlStore",
    "LEARNING_MODES",
    "LIVE_SETTINGS",
    "REWARD_AGGREGATIONS",
    "InForce",
    "InForceSource",
    "InvalidSetting",
    "LiveConfig",
    "Overrides",
    "StaticConfig",
    "check_live_setting",
    "read_overrides",
    "update_overrides",
    "write_overrides",
]

CONTROL_KEY = "live_config"
LEARNING_MODES = ("online", "apprentice", "logging_only")
REWARD_AGGREGATIONS = ("max", "sum", "average", "earliest")
LearningMode = Literal["online", "apprentice", "logging_only"]
# Longer than any sensible window, short enough for datetime arithmetic and ISO durations.
MAX_SECONDS = 3650 * 86_400.0
MAX_RETENTION_DAYS = 36_500


class InvalidSetting(ValueError):
    """A live setting's value is outside what the service can run with; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.problem = message


class ControlStore(Protocol):
    """Where operator switches are kept (``logs.model_index.ModelIndex``).

    ``update_control`` reads a switch and writes what `change` makes of it in one
    write transaction, so two processes changing different settings at once both land.
    """

    def set_control(self, key: str, value: str | None) -> None: ...
    def control(self, key: str) -> str | None: ...
    def update_control(self, key: str, change: Callable[[str | None], str | None]) -> str | None: ...


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """The live settings in force.

    ``learning_mode``: ``online`` serves the policy's choice; ``apprentice`` serves the
    baseline (the first candidate not excluded, per slot) with probability 1 while the
    model learns from what the baseline earns; ``logging_only`` serves the baseline
    and learns nothing (events wait, unlearned, until the mode changes).
    ``exploration_share``: that share of every served distribution is spread evenly
    over the candidates, on top of the policy's own exploration; the logged
    probabilities are the mixed ones, so they stay exact.
    """

    reward_window_seconds: float
    default_reward: float
    reward_aggregation: Literal["max", "sum", "average", "earliest"]
    learning_mode: LearningMode = "online"
    exploration_share: float = 0.0
    log_retention_days: int = -1  # -1 keeps the log forever
    snapshot_interval_seconds: float = 1.0

    def __post_init__(self) -> None:
        for name in LIVE_SETTINGS:
            check_live_setting(name, getattr(self, name))

    @property
    def serves_baseline(self) -> bool:
        """Whether decisions serve the baseline instead of the policy's choice."""
        return self.learning_mode != "online"

    @property
    def learns(self) -> bool:
        """Whether the learner learns from closed events."""
        return self.learning_mode != "logging_only"


LIVE_SETTINGS: tuple[str, ...] = tuple(f.name for f in fields(LiveConfig))


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidSetting(name, "must be a finite number")
    return float(value)


def _seconds(name: str, value: Any, *, low: float, low_text: str) -> float:
    seconds = _number(name, value)
    if not low <= seconds <= MAX_SECONDS:
        raise InvalidSetting(name, f"must be {low_text} and at most {MAX_SECONDS:.0f} seconds (10 years)")
    return seconds


def check_live_setting(name: str, value: Any) -> Any:
    """Return `value` if the service can run with it as live setting `name`.

    Raises
    ------
    InvalidSetting
        Naming the setting and what is wrong, when it cannot (or `name` is not live).
    """
    if name == "reward_window_seconds":
        # a millisecond: the finest a Personalizer duration round-trips without loss
        return _seconds(name, value, low=0.001, low_text="at least 0.001 seconds")
    if name == "snapshot_interval_seconds":
        return _seconds(name, value, low=0.0, low_text="0 or more")
    if name == "default_reward":
        return _number(name, value)
    if name == "exploration_share":
        if not 0.0 <= _number(name, value) <= 1.0:
            raise InvalidSetting(name, "must be between 0 and 1")
        return float(value)
    if name == "log_retention_days":
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidSetting(name, "must be a whole number of days")
        if not (value == -1 or 1 <= value <= MAX_RETENTION_DAYS):
            raise InvalidSetting(name, f"must be -1 (keep forever) or 1 to {MAX_RETENTION_DAYS} days")
        return value
    choices = {"reward_aggregation": REWARD_AGGREGATIONS, "learning_mode": LEARNING_MODES}.get(name)
    if choices is None:
        raise InvalidSetting(name, f"is not a live setting (live: {', '.join(LIVE_SETTINGS)})")
    if value not in choices:
        raise InvalidSetting(name, f"must be one of {', '.join(choices)}, not {value!r}")
    return value


@dataclass(frozen=True, slots=True)
class Overrides:
    """The live settings an operator changed, and when they last changed any."""

    values: Mapping[str, Any]
    updated_at: float | None = None


def read_overrides(store: ControlStore) -> Overrides:
    """Return the saved overrides; a value the service can no longer run with is dropped."""
    return _parse_overrides(store.control(CONTROL_KEY))


def _parse_overrides(text: str | None) -> Overrides:
    if text is None:
        return Overrides({})
    saved = json.loads(text)
    values = {}
    for name, value in saved.items():
        try:
            values[name] = check_live_setting(name, value)
        except InvalidSetting:
            continue  # "updated_at", or a setting since retired: the environment's value stands
    return Overrides(values, saved.get("updated_at"))


def write_overrides(store: ControlStore, values: Mapping[str, Any]) -> Overrides:
    """Save `values` (every one checked first) as the overrides; return them stamped with the time.

    Only the settings given are kept, so a setting an operator never touched
    follows the environment, also after a restart with new variables.

    Raises
    ------
    InvalidSetting
        For the first value the service cannot run with; nothing is saved then.
    """
    checked = {name: check_live_setting(name, value) for name, value in values.items()}
    stamped = Overrides(checked, time.time())
    store.set_control(CONTROL_KEY, json.dumps({**checked, "updated_at": stamped.updated_at}, sort_keys=True))
    return stamped


def update_overrides(
    store: ControlStore, values: Mapping[str, Any], *, reset: Iterable[str] = ()
) -> Overrides:
    """Override the settings in `values` and drop those in `reset`, keeping every other override.

    The saved overrides are read and rewritten in one write transaction of the log:
    two partial updates arriving at once at different workers both land, whatever
    their order (a read here and a write later could undo the other's change).

    Raises
    ------
    InvalidSetting
        For the first value the service cannot run with; nothing is saved then.
    """
    checked = {name: check_live_setting(name, value) for name, value in values.items()}
    dropped = frozenset(reset)
    stamped: list[Overrides] = []

    def change(text: str | None) -> str:
        kept = {k: v for k, v in _parse_overrides(text).values.items() if k not in dropped}
        stamped[:] = [Overrides({**kept, **checked}, time.time())]
        return json.dumps({**stamped[0].values, "updated_at": stamped[0].updated_at}, sort_keys=True)

    store.update_control(CONTROL_KEY, change)
    return stamped[0]


class InForce(Protocol):
    """What the learner and the guardrail read of the configuration in force."""

    @property
    def live(self) -> LiveConfig: ...
    @property
    def rules(self) -> RewardRules: ...


class InForceSource(Protocol):
    """Answers what is in force now (``service.effective.ConfigSource`` in production)."""

    def current(self) -> InForce: ...


@dataclass(frozen=True, slots=True)
class StaticConfig:
    """A configuration that never changes: for tools and tests that run without a log."""

    live: LiveConfig
    rules: RewardRules

    def current(self) -> StaticConfig:
        """Return itself."""
        return self
