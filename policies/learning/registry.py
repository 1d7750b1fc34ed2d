"""ModelRegistry: versioned model files, their checksums, and which one is active."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from policies.base import ModelCard, ModelFormatError
from policies.deciding.vw import VWPolicy, card_path, check_vw_args, read_card
from policies.learning.model_archive import (
    ExportError,
    imported_card,
    original_version,
    read_export,
    write_export,
)
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

__all__ = [
    "ActiveChanged",
    "ModelChange",
    "ModelIndexLike",
    "ModelRegistry",
    "ModelVersion",
    "RegistryError",
    "RetentionPolicy",
    "Rollback",
    "UnknownVersion",
]

log = logging.getLogger(__name__)


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
        seq = self.index.reserve_seq()  # under the log's lock: concurrent publishers never collide
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

    def choose_rollback(
        self, *, to: str | None = None, older_than_seconds: float = 600.0
    ) -> tuple[ModelVersion, str]:
        """Return the version a rollback would serve and why it was chosen.

        With `to`, that version (saying so if it learned nothing). Otherwise: snapshots
        come every second, so "the previous version" would be the same model a second
        younger. The default is the newest earlier version that learned events, was
        created at least `older_than_seconds` before the active one and whose file is
        kept (or, failing that, the oldest such version kept), never a candidate.

        Raises
        ------
        RegistryError
            Nothing is active, or no earlier kept version learned anything: rolling back
            to an untrained model is only done when named with `to`.
        """
        if to:
            target = self.find(to)
            untrained = " (it learned nothing: an untrained model)" if target.events_learned == 0 else ""
            return target, f"{target.version} was named{untrained}"
        active = self.active()
        if active is None:
            raise RegistryError("no model is active: nothing to roll back from")
        cutoff = active.created_at - older_than_seconds
        kept = [m for m in self.index.versions() if m.version != active.version and m.state != "candidate"]
        kept = [m for m in kept if m.seq < active.seq and self.has_file(m)]
        if not kept:
            raise RegistryError(f"no earlier model file is kept to roll back to from {active.version}")
        trained = [m for m in kept if m.events_learned > 0]
        if not trained:
            names = ", ".join(m.version for m in kept[:5])
            raise RegistryError(
                f"no earlier version learned anything (kept: {names}): rolling back would serve an"
                " untrained model; name one with --to (HTTP: \"to\") if that is what you want"
            )
        old_enough = [m for m in trained if m.created_at <= cutoff]
        if old_enough:
            target = old_enough[0]
            why = (
                f"the newest earlier version that learned events ({target.events_learned:,}) and is at"
                f" least {older_than_seconds:g} s older than {active.version}"
            )
        else:
            target = trained[-1]
            why = (
                f"no trained version is {older_than_seconds:g} s older than {active.version}: the oldest"
                f" kept one that learned events ({target.events_learned:,})"
            )
        return target, why

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
        write_export(source, card_path(source), asdict(model), destination)
        return model

    def import_file(self, source: Path, *, actor: str) -> ModelVersion:
        """Register an exported model as a new candidate version; it serves only once activated.

        The export is read with bounded work (``policies.learning.model_archive``); the checksum
        registered is the one computed here; the model's header passes the VW option
        allowlist before VW opens it. Messages name no path.

        Raises
        ------
        RegistryError
            The file is not a usable export, or the model inside is refused or will not load.
        """
        self.model_dir.mkdir(parents=True, exist_ok=True)
        staging = self.model_dir / f".import-{uuid.uuid4().hex}.vw"
        try:
            contents = read_export(source, staging)
            card = imported_card(contents)
            card_path(staging).write_text(json.dumps(asdict(card), indent=2))
            VWPolicy.load(staging)  # the header's options, the checksum, then VW itself
        except (ExportError, ModelFormatError) as error:
            for leftover in (staging, card_path(staging)):
                leftover.unlink(missing_ok=True)
            message = str(error).replace(staging.name, "model.vw")
            raise RegistryError(f"the model export was refused: {message}") from None
        seq = self.index.reserve_seq()
        path = self.model_dir / f"v{seq}.vw"  # the version's name is the file's stem
        os.replace(card_path(staging), card_path(path))
        os.replace(staging, path)
        note = f"imported from {source.name} ({original_version(contents)})"
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
        """Make sure an intact model is active: publish an untrained one if none is.

        If the active version does not load (a corrupt or missing file), every rank
        would answer 503 until an operator acted: the newest intact version serves
        instead, and the change history (``fallback``) and /readyz say so. Every
        process calls this at start; the lock makes the first one do it.
        """
        self.model_dir.mkdir(parents=True, exist_ok=True)
        with _exclusive(self.model_dir / ".bootstrap.lock"):
            active = self.index.active()
            if active is None:
                log.info("no active model: publishing an untrained one with %r", vw_args)
                return self.publish(VWPolicy(vw_args), parent=None, note="initial, untrained")
            try:
                self.load(active)
            except ModelFormatError as error:
                return self._fall_back(active, str(error), vw_args)
            return active

    def _fall_back(self, broken: ModelVersion, problem: str, vw_args: str) -> ModelVersion:
        """Activate the newest intact version (earlier ones first), else a new untrained model."""
        earlier_first = sorted(self.index.versions(), key=lambda m: (m.seq > broken.seq, -m.seq))
        tried = 0
        for model in earlier_first:
            if model.version == broken.version or model.state == "candidate" or not self.has_file(model):
                continue
            tried += 1
            if tried > FALLBACK_ATTEMPTS:
                break
            try:
                self.load(model)
            except ModelFormatError:
                continue
            reason = f"{broken.version} does not load ({problem}); serving the newest intact version"
            self.index.activate(model.version, action="fallback", actor="startup", reason=reason)
            log.error("fallback to %s: %s", model.version, reason)
            return self.find(model.version)
        reason = f"{broken.version} does not load ({problem}) and no other version is intact: serving"
        reason += " a new untrained model"
        fresh = self.publish(VWPolicy(vw_args), parent=None, note="fallback, untrained", state="candidate")
        self.index.activate(fresh.version, action="fallback", actor="startup", reason=reason)
        log.error("fallback to %s: %s", fresh.version, reason)
        return self.find(fresh.version)

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
FALLBACK_ATTEMPTS = 50  # versions tried before starting untrained: each try is a VW load


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


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
