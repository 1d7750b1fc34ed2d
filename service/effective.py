"""The configuration in force: the environment's settings, overridden by the live ones.

Every process asks `effective` (or a `ConfigSource`, which caches it) what is in
force now: the rank path, the feedback path, the learner, the guardrail, the online
metrics of ``GET /v1/models``, ``xsell evaluate``, ``/metrics``, ``/v1/config`` and
the Personalizer configuration routes. Precedence: a default, then an ``XSELL_*``
variable (or a command-line flag), then a live override kept in the log. Nothing
else merges the two, so a change an operator makes reaches every reader alike.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from types import MappingProxyType
from typing import Any, Literal

from policies.deciding.live_config import (
    LIVE_SETTINGS,
    ControlStore,
    InvalidSetting,
    LiveConfig,
    Overrides,
    read_overrides,
    update_overrides,
)
from policies.learning.rewards import RewardRules
from service.settings import Settings

__all__ = ["ConfigSource", "EffectiveConfig", "Source", "effective"]

Source = Literal["default", "environment", "live"]


@dataclass(frozen=True, slots=True)
class EffectiveConfig:
    """Every setting in force, where each came from, and the rules that follow from them."""

    settings: Settings  # the environment's settings with the live overrides applied
    sources: Mapping[str, Source]  # per setting: default, environment (or a flag), live
    updated_at: float | None  # when an operator last changed a live setting
    live: LiveConfig
    rules: RewardRules

    def describe(self) -> dict[str, Any]:
        """Return every setting (value, source, whether live, its variable) and the reward rules."""
        values = self.settings.model_dump(mode="json")  # secrets come out masked
        return {
            "settings": {
                name: {
                    "value": value,
                    "source": self.sources[name],
                    "live": name in LIVE_SETTINGS,
                    "variable": f"XSELL_{name.upper()}",
                }
                for name, value in values.items()
            },
            "reward_rules": asdict(self.rules),
            "updated_at": self.updated_at,
        }


def effective(settings: Settings, store: ControlStore) -> EffectiveConfig:
    """Return what is in force now: `settings`, overridden by the live settings `store` keeps."""
    return _in_force(settings, read_overrides(store))


def _in_force(settings: Settings, overrides: Overrides) -> EffectiveConfig:
    # Checked when saved (update_overrides) and when read back: no second validation here.
    in_force = settings.model_copy(update=dict(overrides.values))
    given = settings.model_fields_set
    sources: dict[str, Source] = {
        name: "live" if name in overrides.values else "environment" if name in given else "default"
        for name in type(settings).model_fields
    }
    return EffectiveConfig(
        in_force,
        MappingProxyType(sources),
        overrides.updated_at,
        in_force.live_config(),
        in_force.reward_rules(),
    )


class ConfigSource:
    """Answer `effective` for one process, re-read at most every `ttl_seconds`; apply changes."""

    def __init__(self, settings: Settings, store: ControlStore, *, ttl_seconds: float = 0.5):
        self.settings = settings
        self.store = store
        self.ttl_seconds = ttl_seconds
        self._cached: EffectiveConfig | None = None
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def current(self) -> EffectiveConfig:
        """Return the configuration in force (as read within the last `ttl_seconds`)."""
        with self._lock:
            if self._cached is None or time.monotonic() - self._read_at >= self.ttl_seconds:
                self._cached = effective(self.settings, self.store)
                self._read_at = time.monotonic()
            return self._cached

    def change(self, values: Mapping[str, Any], *, reset: Iterable[str] = ()) -> EffectiveConfig:
        """Override the live settings in `values`, drop the overrides named in `reset`; return the result.

        A reset setting follows the environment again. Nothing is saved unless every
        value is one the service can run with.

        Raises
        ------
        InvalidSetting
            Naming the first setting that is not live or whose value is unusable.
        """
        reset = tuple(reset)
        for name in reset:
            if name not in LIVE_SETTINGS:
                raise InvalidSetting(name, f"is not a live setting (live: {', '.join(LIVE_SETTINGS)})")
        saved = update_overrides(self.store, values, reset=reset)  # one read-modify-write in the log
        found = _in_force(self.settings, saved)
        with self._lock:
            self._cached, self._read_at = found, time.monotonic()
        return found
