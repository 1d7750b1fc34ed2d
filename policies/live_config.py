"""Settings an operator may change while the service runs, shared by every process.

The environment (``XSELL_*``) gives the defaults; an override saved through the
Personalizer configuration API is kept in the log's ``control`` table, so every
gunicorn worker and the learner see the same values within a poll interval, and a
restart keeps them.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import asdict, dataclass, fields, replace
from typing import Literal, Protocol

__all__ = ["CONTROL_KEY", "LEARNING_MODES", "LiveConfig", "LiveConfigSource"]

CONTROL_KEY = "live_config"
LEARNING_MODES = ("online", "apprentice", "logging_only")
LearningMode = Literal["online", "apprentice", "logging_only"]


class ControlStore(Protocol):
    """Where operator switches are kept (``logs.model_index.ModelIndex``)."""

    def set_control(self, key: str, value: str | None) -> None: ...
    def control(self, key: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class LiveConfig:
    """What serving and learning obey right now.

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
    reward_aggregation: Literal["max", "sum", "earliest"]
    learning_mode: LearningMode = "online"
    exploration_share: float = 0.0
    log_retention_days: int = -1  # -1 keeps the log forever
    snapshot_interval_seconds: float = 1.0
    updated_at: float | None = None  # when an operator last changed it; None: the defaults

    def __post_init__(self) -> None:
        if not (math.isfinite(self.reward_window_seconds) and self.reward_window_seconds > 0):
            raise ValueError("reward_window_seconds must be a positive number of seconds")
        if not math.isfinite(self.default_reward):
            raise ValueError("default_reward must be a finite number")
        if self.reward_aggregation not in ("max", "sum", "earliest"):
            raise ValueError(
                f"reward_aggregation must be max, sum or earliest, not {self.reward_aggregation!r}"
            )
        if self.learning_mode not in LEARNING_MODES:
            raise ValueError(f"learning_mode must be one of {', '.join(LEARNING_MODES)}")
        if not 0.0 <= self.exploration_share <= 1.0:
            raise ValueError("exploration_share must be between 0 and 1")
        if self.log_retention_days < -1 or self.log_retention_days == 0:
            raise ValueError("log_retention_days must be -1 (keep forever) or at least 1")
        if not (math.isfinite(self.snapshot_interval_seconds) and self.snapshot_interval_seconds >= 0):
            raise ValueError("snapshot_interval_seconds must be a number of seconds, 0 or more")

    @property
    def serves_baseline(self) -> bool:
        """Whether decisions serve the baseline instead of the policy's choice."""
        return self.learning_mode != "online"

    @property
    def learns(self) -> bool:
        """Whether the learner learns from closed events."""
        return self.learning_mode != "logging_only"


class LiveConfigSource:
    """Read the live configuration (cached for `ttl_seconds`) and save changes to it."""

    def __init__(self, store: ControlStore, defaults: LiveConfig, *, ttl_seconds: float = 0.5):
        self.store = store
        self.defaults = defaults
        self.ttl_seconds = ttl_seconds
        self._cached: LiveConfig | None = None
        self._read_at = float("-inf")
        self._lock = threading.Lock()

    def current(self) -> LiveConfig:
        """Return the configuration in force: the saved override, else the defaults."""
        with self._lock:
            if self._cached is None or time.monotonic() - self._read_at >= self.ttl_seconds:
                self._cached = self._read()
                self._read_at = time.monotonic()
            return self._cached

    def save(self, config: LiveConfig) -> LiveConfig:
        """Store `config` for every process; return it as stored (stamped with the time)."""
        stamped = replace(config, updated_at=time.time())
        self.store.set_control(CONTROL_KEY, json.dumps(asdict(stamped), sort_keys=True))
        with self._lock:
            self._cached, self._read_at = stamped, time.monotonic()
        return stamped

    def _read(self) -> LiveConfig:
        text = self.store.control(CONTROL_KEY)
        if text is None:
            return self.defaults
        saved = json.loads(text)
        known = {f.name for f in fields(LiveConfig)}
        # A field added after the override was saved takes its default.
        return replace(self.defaults, **{k: v for k, v in saved.items() if k in known})
