"""Something intact serves from the first request: an untrained model, or a fallback from a broken one.

If the active version does not load (a corrupt or missing file), every rank would
answer 503 until an operator acted: the newest intact version serves instead, and the
change history (``fallback``) and /readyz say so. Every process calls this at start;
a file lock makes the first one do it.
"""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from policies.base import ModelFormatError
from policies.deciding.vw import VWPolicy
from policies.learning.model_records import ModelVersion

if TYPE_CHECKING:
    from policies.learning.registry import ModelRegistry

__all__ = ["FALLBACK_ATTEMPTS", "ensure_initial"]

log = logging.getLogger(__name__)

FALLBACK_ATTEMPTS = 50  # versions tried before starting untrained: each try is a VW load


def ensure_initial(registry: ModelRegistry, vw_args: str) -> ModelVersion:
    """Make sure an intact model is active: publish an untrained one (with `vw_args`) if none is."""
    registry.model_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(registry.model_dir / ".bootstrap.lock"):
        active = registry.index.active()
        if active is None:
            log.info("no active model: publishing an untrained one with %r", vw_args)
            return registry.publish(VWPolicy(vw_args), parent=None, note="initial, untrained")
        try:
            registry.load(active)
        except ModelFormatError as error:
            return _fall_back(registry, active, str(error), vw_args)
        return active


def _fall_back(registry: ModelRegistry, broken: ModelVersion, problem: str, vw_args: str) -> ModelVersion:
    """Activate the newest intact version (earlier ones first), else a new untrained model."""
    earlier_first = sorted(registry.index.versions(), key=lambda m: (m.seq > broken.seq, -m.seq))
    tried = 0
    for model in earlier_first:
        if model.version == broken.version or model.state == "candidate" or not registry.has_file(model):
            continue
        tried += 1
        if tried > FALLBACK_ATTEMPTS:
            break
        try:
            registry.load(model)
        except ModelFormatError:
            continue
        reason = f"{broken.version} does not load ({problem}); serving the newest intact version"
        registry.index.activate(model.version, action="fallback", actor="startup", reason=reason)
        log.error("fallback to %s: %s", model.version, reason)
        return registry.find(model.version)
    reason = f"{broken.version} does not load ({problem}) and no other version is intact: serving"
    reason += " a new untrained model"
    fresh = registry.publish(VWPolicy(vw_args), parent=None, note="fallback, untrained", state="candidate")
    registry.index.activate(fresh.version, action="fallback", actor="startup", reason=reason)
    log.error("fallback to %s: %s", fresh.version, reason)
    return registry.find(fresh.version)


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
