"""Which version a rollback serves when the operator does not name one, and why.

Snapshots come every second, so "the previous version" would be the same model a
second younger: the default reaches back in time, and never to a model that learned
nothing unless it is named.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from policies.learning.model_records import ModelVersion, RegistryError

if TYPE_CHECKING:
    from policies.learning.registry import ModelRegistry

__all__ = ["choose_rollback"]


def choose_rollback(
    registry: ModelRegistry, *, to: str | None = None, older_than_seconds: float = 600.0
) -> tuple[ModelVersion, str]:
    """Return the version a rollback would serve and why it was chosen.

    With `to`, that version (saying so if it learned nothing). Otherwise the newest
    earlier version that learned events, was created at least `older_than_seconds`
    before the active one and whose file is kept (or, failing that, the oldest such
    version kept), never a candidate.

    Raises
    ------
    UnknownVersion
        `to` names no version.
    RegistryError
        Nothing is active, or no earlier kept version learned anything: rolling back
        to an untrained model is only done when named with `to`.
    """
    if to:
        target = registry.find(to)
        untrained = " (it learned nothing: an untrained model)" if target.events_learned == 0 else ""
        return target, f"{target.version} was named{untrained}"
    active = registry.active()
    if active is None:
        raise RegistryError("no model is active: nothing to roll back from")
    cutoff = active.created_at - older_than_seconds
    kept = [m for m in registry.index.versions() if m.version != active.version and m.state != "candidate"]
    kept = [m for m in kept if m.seq < active.seq and registry.has_file(m)]
    if not kept:
        raise RegistryError(f"no earlier model file is kept to roll back to from {active.version}")
    trained = [m for m in kept if m.events_learned > 0]
    if not trained:
        names = ", ".join(m.version for m in kept[:5])
        raise RegistryError(
            f"no earlier version learned anything (kept: {names}): rolling back would serve an"
            ' untrained model; name one with --to (HTTP: "to") if that is what you want'
        )
    old_enough = [m for m in trained if m.created_at <= cutoff]
    if old_enough:
        target = old_enough[0]
        why = (
            f"the newest earlier version that learned events and is at least {older_than_seconds:g} s"
            f" older than {active.version}"
        )
    else:
        target = trained[-1]
        why = (
            f"no trained version is {older_than_seconds:g} s older than {active.version}: the oldest"
            " kept one that learned events"
        )
    return target, why
