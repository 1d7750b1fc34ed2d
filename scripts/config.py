"""`xsell config`: every setting in force with its source; change the live ones in the log.

It reads and writes what ``GET``/``PATCH /v1/config`` do, through the same
``service.effective`` and the same ``ConfigPatch`` schema, so the command line and
the API accept the same values and a change reaches the running service's workers
and learner within their poll interval.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ValidationError

from policies.deciding.live_config import LIVE_SETTINGS, InvalidSetting
from service.config import ConfigPatch, patch_values
from service.effective import ConfigSource, EffectiveConfig, effective
from service.resources import open_log_and_registry
from service.settings import Settings

__all__ = ["ConfigError", "change", "in_force", "parse_assignments", "render"]


class ConfigError(Exception):
    """An assignment cannot be applied; the message names the setting and the problem."""


class _NoLog:
    """A log that does not exist yet holds no overrides."""

    def control(self, key: str) -> str | None:
        return None

    def set_control(self, key: str, value: str | None) -> None:
        raise ConfigError("there is no log to keep a live setting in")


def in_force(settings: Settings, *, log_exists: bool) -> EffectiveConfig:
    """Return the configuration in force for the log `settings` name (the environment's alone if none)."""
    if not log_exists:
        return effective(settings, _NoLog())
    store, registry = open_log_and_registry(settings)
    try:
        return effective(settings, registry.index)
    finally:
        store.close()


def parse_assignments(assignments: Sequence[str]) -> dict[str, Any]:
    """Turn ``KEY=VALUE`` words into checked live settings, as PATCH /v1/config would.

    Raises
    ------
    ConfigError
        Naming the first word that is not an assignment of a live setting to a usable value.
    """
    raw: dict[str, str] = {}
    for word in assignments:
        name, equals, value = word.partition("=")
        if not equals or not name:
            raise ConfigError(f"{word!r}: write KEY=VALUE, e.g. default_reward=-0.05")
        if name not in LIVE_SETTINGS:
            raise ConfigError(f"{name}: not a live setting (live: {', '.join(LIVE_SETTINGS)})")
        raw[name] = value
    try:
        values, _ = patch_values(ConfigPatch.model_validate(raw))
    except ValidationError as error:
        first = error.errors(include_url=False)[0]
        raise ConfigError(f"{'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    return values


def change(settings: Settings, values: dict[str, Any], *, reset: Iterable[str] = ()) -> EffectiveConfig:
    """Save live overrides (and drop those in `reset`) in the log; return what is then in force."""
    store, registry = open_log_and_registry(settings)
    try:
        return ConfigSource(settings, registry.index).change(values, reset=reset)
    except InvalidSetting as error:
        raise ConfigError(str(error)) from None
    finally:
        store.close()


def render(config: EffectiveConfig, names: Iterable[str] | None = None) -> str:
    """Return a table of settings (all, or `names`): value, source, and whether it is live."""
    described = config.describe()
    rows = described["settings"]
    wanted = list(names) if names is not None else list(rows)
    table = [("setting", "value", "source")]
    for name in wanted:
        row = rows[name]
        value = json.dumps(row["value"]) if not isinstance(row["value"], str) else row["value"]
        live = "  (may change live)" if row["live"] and row["source"] != "live" else ""
        table.append((name, value, row["source"] + live))
    # Columns as wide as their widest cell: a long path or VW argument string pushed
    # the source of its row out of line when the widths were fixed.
    widths = [max(len(line[k]) for line in table) for k in range(2)]
    lines = [f"{n:<{widths[0]}}  {v:<{widths[1]}}  {source}" for n, v, source in table]
    if names is None:
        rules = ", ".join(f"{k} {v}" for k, v in described["reward_rules"].items())
        lines += ["", f"reward rules in force: {rules}"]
    return "\n".join(lines)
