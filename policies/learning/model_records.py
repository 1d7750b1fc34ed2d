"""What the model registry records: versions, changes, rollbacks, retention, and its errors.

Plain data shared by ``policies.learning.registry`` (which acts on it) and ``logs.model_index``
(which stores it); ``policies.learning.registry`` re-exports every name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "ActiveChanged",
    "ModelChange",
    "ModelIndexLike",
    "ModelVersion",
    "RegistryError",
    "RetentionPolicy",
    "Rollback",
    "UnknownVersion",
]


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered model version as the registry's index keeps it."""

    seq: int
    version: str
    parent: str | None
    kind: str
    vw_args: str
    created_at: float
    events_learned: int
    sha256: str
    path: str  # file name inside the model directory
    state: str  # candidate, active or retired
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ModelChange:
    """One recorded change of what serves: who did it, when, and why."""

    at: float
    action: str  # activate, rollback, promote, guardrail, import
    version: str
    previous: str | None
    actor: str  # cli, http, guardrail, auto-promote
    reason: str | None


@dataclass(frozen=True, slots=True)
class Rollback:
    """A rollback done: the change recorded, the version it serves, and why that one."""

    change: ModelChange
    target: ModelVersion
    why: str


class RegistryError(ValueError):
    """A registry operation cannot be done as asked; the message says why."""


class UnknownVersion(RegistryError, LookupError):
    """No model version of that name is registered."""


class ActiveChanged(Exception):
    """The active version changed under the caller (an operator rolled back or promoted)."""


class ModelIndexLike(Protocol):
    """Where versions are recorded (``logs.model_index.ModelIndex`` in production)."""

    def reserve_seq(self) -> int: ...
    def publish(
        self,
        model: ModelVersion,
        learned_event_ids: Iterable[str] | Mapping[str, Sequence[int] | None] = (),
        *,
        expect_active: str | None = None,
    ) -> None: ...
    def activate(
        self, version: str, *, action: str, actor: str, reason: str | None, relearn: bool = False
    ) -> str | None: ...
    def record_change(self, change: ModelChange) -> None: ...
    def changes(self, limit: int = 50) -> list[ModelChange]: ...
    def active(self) -> ModelVersion | None: ...
    def find(self, version: str) -> ModelVersion | None: ...
    def versions(self) -> list[ModelVersion]: ...
    def set_control(self, key: str, value: str | None) -> None: ...
    def control(self, key: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    """Which retired model files to keep; records are always kept.

    Snapshots come every second or so, so "the newest N" alone would leave nothing
    to roll back to after a minute. Kept: the newest `keep_recent` retired files,
    one checkpoint per `checkpoint_seconds` for the newest `keep_checkpoints`
    intervals, and every version that was ever explicitly activated.
    """

    keep_recent: int = 50
    checkpoint_seconds: float = 600.0
    keep_checkpoints: int = 144
