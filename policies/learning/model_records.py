"""What the model registry records: versions, changes, rollbacks, retention, and its errors.

Plain data shared by ``policies.learning.registry`` (which acts on it) and ``logs.model_index``
(which stores it); ``policies.learning.registry`` re-exports every name.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from policies.base import ModelCard

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

    @classmethod
    def of_file(
        cls,
        seq: int,
        path: Path,
        card: ModelCard,
        *,
        parent: str | None,
        state: str,
        note: str | None,
        created_at: float | None = None,
    ) -> ModelVersion:
        """Return the registry record of a model file just written at `path` with its `card`."""
        return cls(
            seq=seq,
            version=path.stem,
            parent=parent,
            kind=card.kind,
            vw_args=card.vw_args,
            created_at=time.time() if created_at is None else created_at,
            events_learned=card.events_learned,
            sha256=card.sha256,
            path=path.name,
            state=state,
            note=note,
        )


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

    def prunable(self, versions: Sequence[ModelVersion], activated: set[str]) -> list[ModelVersion]:
        """Return the retired versions (of `versions`, newest first) whose files need not be kept.

        `activated` names every version an operator or the guardrail ever made active.
        """
        retired = [m for m in versions if m.state == "retired"]
        checkpoints: dict[int, ModelVersion] = {}
        for model in retired:
            checkpoints[int(model.created_at // self.checkpoint_seconds)] = model  # oldest in its interval
        kept_intervals = sorted(checkpoints, reverse=True)[: self.keep_checkpoints]
        keep = {m.version for m in retired[: self.keep_recent]} | activated
        keep |= {checkpoints[i].version for i in kept_intervals}
        return [m for m in retired if m.version not in keep]
