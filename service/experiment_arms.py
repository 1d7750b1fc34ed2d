"""Which arm of the running experiment serves a request, and with which policy.

Each worker reads the running experiment at most every `model_poll_seconds` (as it
reads the active model), so an experiment started or stopped reaches every worker
within that time without a read of the log per request. A worker that could not read
it for ASSIGNS_WITHIN_SECONDS stops assigning: an experiment's decisions are all made
before its end plus that, which is where its results look for them
(logs/experiment_store.py). Frozen versions an arm serves are loaded once per worker
and kept.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from logs.db import LogUnavailable
from logs.experiment_store import ASSIGNS_WITHIN_SECONDS, Experiment, ExperimentStore
from policies.deciding.vw import VWPolicy
from policies.experiments.assignment import Arm, ArmSplit, UnitHasher
from policies.keyed_hash import KeyedHash
from policies.learning.model_records import ModelVersion
from service.resources import Resources

__all__ = ["Assignment", "ArmSource", "arms", "unit_of"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Assignment:
    experiment: Experiment
    arm: Arm
    unit: str  # shopper, session or event: what stickiness was keyed on

    def logged(self) -> dict[str, str]:
        """What the decision's `experiment` column keeps."""
        return {"id": self.experiment.id, "arm": self.arm.name, "unit": self.unit}


class ArmSource:
    """The running experiment as this worker knows it, and the frozen policies its arms serve."""

    def __init__(self, res: Resources):
        self.res = res
        self.store = ExperimentStore(res.store)
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._read_at = float("-inf")  # when the running experiment was last read
        self.monotonic = time.monotonic  # tests drive time through it
        self._running: Experiment | None = None
        self._frozen: dict[str, tuple[ModelVersion, VWPolicy]] = {}
        # Per request only the unit's keyed hash is new: the key is prepared once, the
        # running experiment's split once per read of it.
        self._hasher = UnitHasher(res.shopper_hash)
        self._split: tuple[Experiment, ArmSplit] | None = None

    def running(self) -> Experiment | None:
        now = self.monotonic()
        # At least twice per ASSIGNS_WITHIN_SECONDS, whatever the poll interval: a longer
        # one would switch the experiment off between reads.
        if now - self._checked_at >= min(self.res.settings.model_poll_seconds, ASSIGNS_WITHIN_SECONDS / 2):
            self.refresh()
            now = self.monotonic()
        if now - self._read_at > ASSIGNS_WITHIN_SECONDS:
            return None  # not read for too long: serve outside any experiment until it is
        return self._running

    def refresh(self) -> None:
        """Read the running experiment now (tests and the admin routes call it after a change)."""
        with self._lock:
            self._checked_at = self.monotonic()
            try:
                self._running = self.store.running()
                self._read_at = self._checked_at
            except LogUnavailable:  # a busy log: serve as before (for a minute at most), look again
                log.warning(
                    "could not read the running experiment; keeping the last known for up to %.0f s",
                    ASSIGNS_WITHIN_SECONDS,
                    exc_info=True,
                )

    def frozen(self, version: str) -> tuple[ModelVersion, VWPolicy]:
        """Return a frozen version's policy, loading it on first use."""
        found = self._frozen.get(version)
        if found is None:
            model = self.res.registry.find(version)
            found = (model, self.res.registry.load(model))
            self._frozen[version] = found
        return found

    def assign(self, shopper: str | None, session: str | None, event_id: str) -> Assignment | None:
        """Return the arm this request's unit belongs to, or None outside any experiment."""
        experiment = self.running()
        if experiment is None:
            return None
        kind, unit = unit_of(self.res.shopper_hash, shopper, session, event_id)
        split = self._split
        if split is None or split[0] is not experiment:
            split = self._split = (experiment, ArmSplit.of(experiment.arms))
        return Assignment(experiment, split[1].arm_at(self._hasher.bucket(experiment.id, unit)), kind)


def unit_of(secret: KeyedHash, shopper: str | None, session: str | None, event_id: str) -> tuple[str, str]:
    """Return (kind, keyed unit): the shopper if known, else the session, else the event."""
    if shopper is not None:
        return "shopper", "shopper:" + shopper
    if session is not None:
        return "session", "session:" + secret.hexdigest(session.encode())
    return "event", "event:" + event_id


def arms(res: Resources) -> ArmSource:
    """Return this worker's ArmSource (made on first use, kept on the Resources)."""
    found: ArmSource | None = getattr(res, "_experiment_arms", None)
    if found is None:
        found = ArmSource(res)
        setattr(res, "_experiment_arms", found)  # noqa: B010 -- one per Resources, not a field of it
    return found
