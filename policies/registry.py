"""ModelRegistry: versioned model files, their checksums, and which one is active."""

from __future__ import annotations

import fcntl
import io
import json
import logging
import tarfile
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

from policies.base import ModelCard, ModelFormatError
from policies.vw import VWPolicy, card_path, check_vw_args, read_card

__all__ = [
    "ActiveChanged",
    "ModelChange",
    "ModelIndexLike",
    "ModelRegistry",
    "ModelVersion",
    "RegistryError",
    "RetentionPolicy",
    "UnknownVersion",
]

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


@dataclass(frozen=True, slots=True)
class ModelChange:
    """One recorded change of what serves: who did it, when, and why."""

    at: float
    action: str  # activate, rollback, promote, guardrail, import
    version: str
    previous: str | None
    actor: str  # cli, http, guardrail, auto-promote
    reason: str | None


class RegistryError(ValueError):
    """A registry operation cannot be done as asked; the message says why."""


class UnknownVersion(RegistryError, LookupError):
    """No model version of that name is registered."""


class ActiveChanged(Exception):
    """The active version changed under the caller (an operator rolled back or promoted)."""


class ModelIndexLike(Protocol):
    """Where versions are recorded (``logs.model_index.ModelIndex`` in production)."""

    def next_seq(self) -> int: ...
    def publish(
        self, model: ModelVersion, learned_event_ids: Iterable[str] = (), *, expect_active: str | None = None
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


class ModelRegistry:
    """Save snapshots as new versions and load the active one, checksum first."""

    def __init__(
        self,
        model_dir: Path,
        index: ModelIndexLike,
        *,
        keep_files: int = 50,
        retention: RetentionPolicy | None = None,
    ):
        self.model_dir = Path(model_dir)
        self.index = index
        self.retention = retention or RetentionPolicy(keep_recent=keep_files)

    def publish(
        self,
        policy: VWPolicy,
        *,
        parent: str | None,
        learned_event_ids: Iterable[str] = (),
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
        seq = self.index.next_seq()
        path = self.model_dir / f"v{seq}.vw"  # the version's name is the file's stem
        card = policy.save(path)
        model = _version(seq, path, card, parent=parent, state=state, note=note)
        try:
            self.index.publish(model, learned_event_ids, expect_active=expect_active)
        except BaseException:
            for leftover in (path, card_path(path)):
                leftover.unlink(missing_ok=True)
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
        return (self.model_dir / model.path).is_file()

    def load(self, model: ModelVersion) -> VWPolicy:
        """Load a version; raise ModelFormatError if its file does not match the registry."""
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
        return ModelChange(time.time(), action, version, previous, actor, reason)

    def rollback_target(self, *, older_than_seconds: float, now: float | None = None) -> ModelVersion:
        """Return the default version to roll back to.

        Snapshots come every second, so "the previous version" would be the same model
        a second younger. The target is the newest version that was created at least
        `older_than_seconds` before the active one and whose file is still kept (or,
        failing that, the oldest kept ancestor), never a shadow candidate.
        """
        active = self.active()
        if active is None:
            raise RegistryError("no model is active: nothing to roll back from")
        cutoff = active.created_at - older_than_seconds
        kept = [m for m in self.index.versions() if m.version != active.version and m.state != "candidate"]
        kept = [m for m in kept if m.seq < active.seq and self.has_file(m)]
        if not kept:
            raise RegistryError(f"no earlier model file is kept to roll back to from {active.version}")
        old_enough = [m for m in kept if m.created_at <= cutoff]
        return old_enough[0] if old_enough else kept[-1]

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
        target = self.find(to) if to else self.rollback_target(older_than_seconds=older_than_seconds)
        active = self.active()
        if active is not None and target.version == active.version:
            raise RegistryError(f"{target.version} is already active")
        if freeze:
            self.freeze_learning(True, actor=actor, reason=f"with rollback to {target.version}")
        return self.activate(target.version, actor=actor, reason=reason, action=action, relearn=relearn)

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
                time.time(),
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
        model = self.find(version)
        if not self.has_file(model):
            raise RegistryError(f"{version}: its model file was pruned; nothing to export")
        self.load(model)  # never export a file that does not match its checksum
        source = self.model_dir / model.path
        record = json.dumps({"format": EXPORT_FORMAT, "model": asdict(model)}, indent=2).encode()
        temporary = destination.with_name(f".{destination.name}.tmp")
        with tarfile.open(temporary, "w") as archive:
            archive.add(source, arcname="model.vw")
            archive.add(card_path(source), arcname="model.json")
            info = tarfile.TarInfo("record.json")
            info.size = len(record)
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(record))
        temporary.replace(destination)
        return model

    def import_file(self, source: Path, *, actor: str) -> ModelVersion:
        """Register an exported model as a new candidate version; it serves only once activated.

        Raises
        ------
        RegistryError
            The file is not an export, or the model inside fails its checksum or will not load.
        """
        try:
            with tarfile.open(source, "r") as archive:
                missing = sorted(EXPORT_MEMBERS - set(archive.getnames()))
                if missing:
                    raise RegistryError(f"{source}: not an xsell model export (missing {', '.join(missing)})")
                record = json.loads(_member(archive, "record.json"))
                model_bytes = _member(archive, "model.vw")
                card_bytes = _member(archive, "model.json")
        except (OSError, tarfile.TarError, ValueError) as error:
            if isinstance(error, RegistryError):
                raise
            raise RegistryError(f"{source}: cannot read the export ({error})") from error
        if record.get("format") != EXPORT_FORMAT:
            raise RegistryError(f"{source}: unsupported export format {record.get('format')!r}")
        original = record["model"]
        self.model_dir.mkdir(parents=True, exist_ok=True)
        seq = self.index.next_seq()
        path = self.model_dir / f"v{seq}.vw"  # the version's name is the file's stem
        path.write_bytes(model_bytes)
        card_path(path).write_bytes(card_bytes)
        try:
            policy = VWPolicy.load(path)  # checks the bytes against the card's checksum
            card = read_card(path)
        except ModelFormatError as error:
            for leftover in (path, card_path(path)):
                leftover.unlink(missing_ok=True)
            raise RegistryError(f"{source}: the model inside does not load: {error}") from error
        del policy
        note = f"imported from {source.name} ({original.get('version')})"
        model = _version(seq, path, card, parent=None, state="candidate", note=note)
        self.index.publish(model)
        self.index.record_change(ModelChange(time.time(), "import", model.version, None, actor, model.note))
        return model

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
        """Publish an untrained model as the first version unless one is active already."""
        self.model_dir.mkdir(parents=True, exist_ok=True)
        with _exclusive(self.model_dir / ".bootstrap.lock"):
            active = self.index.active()
            if active is not None:
                return active
            log.info("no active model: publishing an untrained one with %r", vw_args)
            return self.publish(VWPolicy(vw_args), parent=None, note="initial, untrained")

    def _prune(self) -> None:
        """Delete files of retired versions the retention policy does not keep; keep records."""
        policy = self.retention
        retired = [m for m in self.index.versions() if m.state == "retired"]  # newest first
        activated = {c.version for c in self.index.changes(limit=10_000)}
        checkpoints: dict[int, ModelVersion] = {}
        for model in retired:
            checkpoints[int(model.created_at // policy.checkpoint_seconds)] = model  # oldest in its interval
        kept_intervals = sorted(checkpoints, reverse=True)[: policy.keep_checkpoints]
        keep = {m.version for m in retired[: policy.keep_recent]} | activated
        keep |= {checkpoints[i].version for i in kept_intervals}
        for model in retired:
            if model.version not in keep:
                for path in (self.model_dir / model.path, card_path(self.model_dir / model.path)):
                    path.unlink(missing_ok=True)


LEARNING_FROZEN = "learning_frozen"
EXPORT_FORMAT = 1
EXPORT_MEMBERS = frozenset({"model.vw", "model.json", "record.json"})


def _version(
    seq: int, path: Path, card: ModelCard, *, parent: str | None, state: str, note: str | None
) -> ModelVersion:
    """Return the registry record of a model file just written at `path`."""
    return ModelVersion(
        seq=seq,
        version=path.stem,
        parent=parent,
        kind=card.kind,
        vw_args=card.vw_args,
        created_at=time.time(),
        events_learned=card.events_learned,
        sha256=card.sha256,
        path=path.name,
        state=state,
        note=note,
    )


def _member(archive: tarfile.TarFile, name: str) -> bytes:
    handle = archive.extractfile(name)
    if handle is None:
        raise RegistryError(f"{name} in the export is not a file")
    return handle.read()


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
