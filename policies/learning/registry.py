"""ModelRegistry: versioned model files, their checksums, and which one is active.

The registry is the one object callers hold; the longer pieces of work behind some of
its verbs live beside it: ``rollback`` (which version a rollback serves),
``model_transfer`` (export and import), ``model_startup`` (an intact model at start)
and ``model_records`` (the records, retention rule and errors, re-exported here).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from policies.base import ModelFormatError
from policies.deciding.vw import VWPolicy, card_path, check_vw_args, read_card
from policies.learning.model_records import (
    ActiveChanged,
    ModelChange,
    ModelIndexLike,
    ModelVersion,
    RegistryError,
    RetentionPolicy,
    Rollback,
    UnknownVersion,
)
from policies.learning.model_startup import ensure_initial
from policies.learning.model_transfer import export_version, import_export
from policies.learning.rollback import choose_rollback

__all__ = [
    "ActiveChanged",
    "ModelChange",
    "ModelFiles",
    "ModelIndexLike",
    "ModelRegistry",
    "ModelVersion",
    "RegistryError",
    "RetentionPolicy",
    "Rollback",
    "UnknownVersion",
]

log = logging.getLogger(__name__)


class ModelFiles(Protocol):
    """Where model files are shared between nodes (logs/blob_store.py): named bytes."""

    def put(self, name: str, data: bytes) -> None: ...
    def get(self, name: str) -> bytes | None: ...
    def delete(self, name: str) -> None: ...


class ModelRegistry:
    """Save snapshots as new versions and load the active one, checksum first."""

    def __init__(
        self,
        model_dir: Path,
        index: ModelIndexLike,
        *,
        keep_files: int = 50,
        retention: RetentionPolicy | None = None,
        shared: ModelFiles | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.model_dir = Path(model_dir)
        self.index = index
        self.retention = retention or RetentionPolicy(keep_recent=keep_files)
        # With several nodes and no shared disk, model files live in `shared` (the
        # database) and model_dir is this node's cache of them: a version published on
        # another node is fetched on first load, checksum checked as always.
        self.shared = shared
        # Versions and changes are stamped from here, so a test can drive time (rollback
        # picks a version by age) instead of sleeping.
        self.clock = clock

    def publish(
        self,
        policy: VWPolicy,
        *,
        parent: str | None,
        learned_event_ids: Iterable[str] | Mapping[str, Sequence[int] | None] = (),
        note: str | None = None,
        state: str = "active",
        expect_active: str | None = None,
    ) -> ModelVersion:
        """Save `policy` as the next version: active (replacing `expect_active`) or a candidate.

        Raises
        ------
        ActiveChanged
            The active version is no longer `expect_active`; nothing is published.
        """
        self.model_dir.mkdir(parents=True, exist_ok=True)
        seq, path = self.reserve_path()
        card = policy.save(path)
        model = ModelVersion.of_file(
            seq, path, card, parent=parent, state=state, note=note, created_at=self.clock()
        )
        try:
            self.share_files(path)  # before the index names it, so every node finds it
            self.index.publish(model, learned_event_ids, expect_active=expect_active)
        except BaseException:
            for leftover in (path, card_path(path)):
                leftover.unlink(missing_ok=True)
                if self.shared is not None:
                    self.shared.delete(leftover.name)
            raise
        self._prune()
        return model

    def active(self) -> ModelVersion | None:
        """Return the active version's record."""
        return self.index.active()

    def find(self, version: str) -> ModelVersion:
        """Return a version's record; raise UnknownVersion if there is none."""
        model = self.index.find(version)
        if model is None:
            raise UnknownVersion(f"no model version {version!r}")
        return model

    def has_file(self, model: ModelVersion) -> bool:
        """Whether the version's model file is still on disk (old ones are pruned)."""
        return self._fetch(model)

    def load(self, model: ModelVersion) -> VWPolicy:
        """Load a version; raise ModelFormatError if its file does not match the registry."""
        self._fetch(model)
        path = self.model_dir / model.path
        if read_card(path).sha256 != model.sha256:
            raise ModelFormatError(f"{model.version}: model card checksum differs from the registry's")
        return VWPolicy.load(path)  # checks the file itself against the card

    def activate(
        self,
        version: str,
        *,
        actor: str,
        reason: str | None = None,
        action: str = "activate",
        relearn: bool = False,
    ) -> ModelChange:
        """Make `version` what every worker serves, after proving its file loads.

        Raises
        ------
        UnknownVersion
            No such version.
        RegistryError
            Its file was pruned, or is corrupt or does not match its checksum.
        """
        model = self.find(version)
        if not self.has_file(model):
            raise RegistryError(f"{version}: its model file was pruned; it cannot be served again")
        try:
            self.load(model)
        except ModelFormatError as error:
            raise RegistryError(
                f"{version}: refusing to activate a model that does not load: {error}"
            ) from error
        previous = self.index.activate(version, action=action, actor=actor, reason=reason, relearn=relearn)
        log.warning(
            "%s: %s is now active (was %s) by %s: %s", action, version, previous, actor, reason or "-"
        )
        return ModelChange(self.clock(), action, version, previous, actor, reason)

    def choose_rollback(
        self, *, to: str | None = None, older_than_seconds: float = 600.0
    ) -> tuple[ModelVersion, str]:
        """Return the version a rollback would serve and why (``policies.learning.rollback``)."""
        return choose_rollback(self, to=to, older_than_seconds=older_than_seconds)

    def rollback(
        self,
        *,
        to: str | None = None,
        actor: str,
        reason: str | None = None,
        older_than_seconds: float = 600.0,
        action: str = "rollback",
        relearn: bool = False,
        freeze: bool = False,
    ) -> ModelChange:
        """Serve an earlier version again (`to`, or the default target) and record why.

        By default the events the discarded versions learned are not learned again
        (they may be what made the model bad); `relearn` hands them to the restored
        model. `freeze` stops learning until an operator unfreezes it.
        """
        return self.explained_rollback(
            to=to,
            actor=actor,
            reason=reason,
            older_than_seconds=older_than_seconds,
            action=action,
            relearn=relearn,
            freeze=freeze,
        ).change

    def explained_rollback(
        self,
        *,
        to: str | None = None,
        actor: str,
        reason: str | None = None,
        older_than_seconds: float = 600.0,
        action: str = "rollback",
        relearn: bool = False,
        freeze: bool = False,
    ) -> Rollback:
        """Do `rollback` and return, beside the change, which version was chosen and why."""
        target, why = self.choose_rollback(to=to, older_than_seconds=older_than_seconds)
        if not to:  # the history says why this version was chosen
            reason = f"{reason}; {why}" if reason else why
        active = self.active()
        if active is not None and target.version == active.version:
            raise RegistryError(f"{target.version} is already active")
        if freeze:
            self.freeze_learning(True, actor=actor, reason=f"with rollback to {target.version}")
        change = self.activate(target.version, actor=actor, reason=reason, action=action, relearn=relearn)
        return Rollback(change, target, why)

    def promote(self, version: str, *, actor: str, reason: str | None = None) -> ModelChange:
        """Make a candidate (a shadow or an imported model) the active version."""
        model = self.find(version)
        if model.state != "candidate":
            raise RegistryError(f"{version} is {model.state}, not a candidate; use activate or rollback")
        return self.activate(version, actor=actor, reason=reason, action="promote")

    def freeze_learning(self, frozen: bool, *, actor: str, reason: str | None = None) -> None:
        """Stop (or restart) the learner from publishing; serving is unaffected."""
        self.index.set_control(LEARNING_FROZEN, "1" if frozen else None)
        active = self.active()
        self.index.record_change(
            ModelChange(
                self.clock(),
                "freeze" if frozen else "unfreeze",
                active.version if active else "-",
                None,
                actor,
                reason,
            )
        )

    def learning_frozen(self) -> bool:
        """Whether an operator froze learning."""
        return self.index.control(LEARNING_FROZEN) == "1"

    def export(self, version: str, destination: Path) -> ModelVersion:
        """Write `version` (model file, card and registry record) into one tar file."""
        return export_version(self, version, destination)

    def import_file(self, source: Path, *, actor: str) -> ModelVersion:
        """Register an exported model as a new candidate version (``policies.learning.model_transfer``).

        Raises
        ------
        RegistryError
            The file is not a usable export, or the model inside is refused or will not load.
        """
        return import_export(self, source, actor=actor)

    def start_fresh(self, vw_args: str, *, actor: str, reason: str | None = None) -> ModelChange:
        """Serve a new, untrained model with `vw_args` (a policy change or a model reset).

        The old versions stay in the registry, so this can be rolled back like any change.

        Raises
        ------
        ValueError
            VW refuses the arguments.
        """
        try:
            policy = VWPolicy(check_vw_args(vw_args))
        except ModelFormatError as error:
            raise ValueError(str(error)) from error
        model = self.publish(policy, parent=None, note=f"fresh: {reason or vw_args}", state="candidate")
        return self.activate(model.version, actor=actor, reason=reason, action="reset")

    def ensure_initial(self, vw_args: str) -> ModelVersion:
        """Make sure an intact model is active (``policies.learning.model_startup``)."""
        return ensure_initial(self, vw_args)

    def reserve_path(self) -> tuple[int, Path]:
        """Reserve the next version number and return it with its model file's path."""
        seq = self.index.reserve_seq()  # under the log's lock: concurrent publishers never collide
        return seq, self.model_dir / f"v{seq}.vw"  # the version's name is the file's stem

    def share_files(self, path: Path) -> None:
        """Put a new version's model file and card where every node can read them (if shared)."""
        if self.shared is not None:
            for file in (card_path(path), path):
                self.shared.put(file.name, file.read_bytes())

    def _fetch(self, model: ModelVersion) -> bool:
        """Make sure the version's files are in model_dir (from `shared` if need be); False if gone."""
        path = self.model_dir / model.path
        if path.is_file() or self.shared is None:
            return path.is_file()
        for file in (card_path(path), path):  # the model last: its presence means both arrived
            data = self.shared.get(file.name)
            if data is None:
                return False
            self.model_dir.mkdir(parents=True, exist_ok=True)
            partial = file.with_name(f".{file.name}.partial")
            partial.write_bytes(data)
            os.replace(partial, file)
        return True

    def _prune(self) -> None:
        """Delete files of retired versions the retention policy does not keep; keep records."""
        activated = {c.version for c in self.index.changes(limit=10_000)}
        for model in self.retention.prunable(self.index.versions(), activated):
            for path in (self.model_dir / model.path, card_path(self.model_dir / model.path)):
                path.unlink(missing_ok=True)
                if self.shared is not None:
                    self.shared.delete(path.name)


LEARNING_FROZEN = "learning_frozen"
