"""ModelRegistry: versioned model files, their checksums, and which one is active."""

from __future__ import annotations

import fcntl
import logging
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from policies.base import ModelFormatError
from policies.vw import VWPolicy, card_path, read_card

__all__ = ["ModelIndexLike", "ModelRegistry", "ModelVersion"]

log = logging.getLogger(__name__)


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


class ModelIndexLike(Protocol):
    """Where versions are recorded (``logs.model_index.ModelIndex`` in production)."""

    def next_seq(self) -> int: ...
    def publish(self, model: ModelVersion, learned_event_ids: Iterable[str] = ()) -> None: ...
    def active(self) -> ModelVersion | None: ...
    def versions(self) -> list[ModelVersion]: ...


class ModelRegistry:
    """Save snapshots as new versions and load the active one, checksum first."""

    def __init__(self, model_dir: Path, index: ModelIndexLike, *, keep_files: int = 50):
        self.model_dir = Path(model_dir)
        self.index = index
        self.keep_files = keep_files

    def publish(
        self,
        policy: VWPolicy,
        *,
        parent: str | None,
        learned_event_ids: Iterable[str] = (),
        note: str | None = None,
    ) -> ModelVersion:
        """Save `policy` as the next version and make it active."""
        self.model_dir.mkdir(parents=True, exist_ok=True)
        seq = self.index.next_seq()
        version = f"v{seq}"
        path = self.model_dir / f"{version}.vw"
        card = policy.save(path)
        model = ModelVersion(
            seq=seq,
            version=version,
            parent=parent,
            kind=card.kind,
            vw_args=card.vw_args,
            created_at=time.time(),
            events_learned=card.events_learned,
            sha256=card.sha256,
            path=path.name,
            state="active",
            note=note,
        )
        self.index.publish(model, learned_event_ids)
        self._prune()
        return model

    def active(self) -> ModelVersion | None:
        """Return the active version's record."""
        return self.index.active()

    def load(self, model: ModelVersion) -> VWPolicy:
        """Load a version; raise ModelFormatError if its file does not match the registry."""
        path = self.model_dir / model.path
        if read_card(path).sha256 != model.sha256:
            raise ModelFormatError(f"{model.version}: model card checksum differs from the registry's")
        return VWPolicy.load(path)  # checks the file itself against the card

    def ensure_initial(self, vw_args: str) -> ModelVersion:
        """Publish an untrained model as the first version unless one is active already."""
        self.model_dir.mkdir(parents=True, exist_ok=True)
        with _exclusive(self.model_dir / ".bootstrap.lock"):
            active = self.index.active()
            if active is not None:
                return active
            log.info("no active model: publishing an untrained one with %r", vw_args)
            return self.publish(VWPolicy(vw_args), parent=None, note="initial, untrained")

    def _prune(self) -> None:
        """Delete files of the oldest retired versions beyond `keep_files`; keep their records."""
        retired = [m for m in self.index.versions() if m.state == "retired"]
        for model in retired[self.keep_files :]:
            for path in (self.model_dir / model.path, card_path(self.model_dir / model.path)):
                path.unlink(missing_ok=True)


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
