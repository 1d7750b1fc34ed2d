"""Per-process shared state: the log, the registry and the model being served."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from flask import current_app

from logs.catalog_store import CatalogStore
from logs.db import LogUnavailable
from logs.model_index import ModelIndex
from logs.shopper_store import ShopperStore
from logs.store import WORKER_AUTOCHECKPOINT_PAGES, Clock, LogStore, StoreOptions
from policies.base import ModelFormatError
from policies.deciding.vw import VWPolicy
from policies.keyed_hash import KeyedHash
from policies.learning.registry import ModelRegistry, ModelVersion, RetentionPolicy
from policies.learning.rewards import RewardRules
from policies.offers.pacing import PacingOptions
from policies.offers.shortlist import OfferOptions
from service.effective import ConfigSource
from service.exceptions import ModelUnavailable
from service.settings import Settings

__all__ = ["Resources", "ServedModel", "open_log_and_registry", "resources", "shopper_key"]

log = logging.getLogger(__name__)


class ServedModel:
    """The active model, reloaded when the registry names a newer one.

    A worker looks at the registry at most every `poll_seconds`. If the new
    version cannot be loaded (corrupt file, bad checksum) it keeps serving the
    one it has and remembers why, for /readyz.
    """

    def __init__(self, registry: ModelRegistry, poll_seconds: float):
        self.registry = registry
        self.poll_seconds = poll_seconds
        self.version: ModelVersion | None = None
        self.policy: VWPolicy | None = None
        self.load_error: str | None = None
        self._checked_at = float("-inf")
        self._lock = threading.Lock()

    def current(self) -> tuple[ModelVersion, VWPolicy]:
        """Return the version to serve and its policy."""
        if time.monotonic() - self._checked_at >= self.poll_seconds:
            self.refresh()
        version, policy = self.version, self.policy
        if version is None or policy is None:
            raise ModelUnavailable(self.load_error or "no model has been published yet")
        return version, policy

    def refresh(self) -> None:
        """Load the active version if it is not the one being served."""
        with self._lock:
            self._checked_at = time.monotonic()
            active = self.registry.active()
            if active is None or (self.version is not None and active.version == self.version.version):
                return
            try:
                policy = self.registry.load(active)
            except ModelFormatError as error:
                problem = f"cannot load {active.version}: {error}"
                if problem != self.load_error:  # once per problem, not at every poll
                    log.error("keeping %s: %s", self.version.version if self.version else None, problem)
                self.load_error = problem
                return
            self.version, self.policy, self.load_error = active, policy, None
            log.info("serving model %s", active.version)


@dataclass
class Resources:
    """What every request handler may use; one instance per worker process."""

    settings: Settings
    store: LogStore
    registry: ModelRegistry
    served: ServedModel
    catalog: CatalogStore = field(init=False)
    offer_options: OfferOptions = field(init=False)
    pacing_options: PacingOptions = field(init=False)
    shoppers: ShopperStore = field(init=False)
    shopper_secret: bytes = field(init=False, repr=False)
    shopper_hash: KeyedHash = field(init=False, repr=False)  # HMAC under shopper_secret, prepared once
    config: ConfigSource = field(init=False)  # what is in force now: read it, never merge by hand
    admin_keys: frozenset[str] = field(init=False)
    storefront_keys: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        self.config = ConfigSource(
            self.settings, self.registry.index, ttl_seconds=self.settings.model_poll_seconds
        )
        self.catalog = CatalogStore(self.store)
        self.offer_options = self.settings.offer_options()
        self.pacing_options = self.settings.pacing_options()
        self.shoppers = ShopperStore(self.store)
        self.shopper_secret = self.settings.shopper_secret()
        self.shopper_hash = KeyedHash(self.shopper_secret)
        self.admin_keys = self.settings.admin_keys()
        self.storefront_keys = self.settings.storefront_keys()

    def live_rules(self) -> RewardRules:
        """Return the reward rules in force."""
        return self.config.current().rules

    @classmethod
    def open(cls, settings: Settings, *, clock: Clock = time.time) -> Resources:
        """Open the log (migrating it) and make sure a model is active."""
        # Checkpoints are the learner's job (it runs them every second): not in a request.
        store, registry = open_log_and_registry(
            settings, autocheckpoint_pages=WORKER_AUTOCHECKPOINT_PAGES, clock=clock
        )
        registry.ensure_initial(settings.vw_args)
        served = ServedModel(registry, settings.model_poll_seconds)
        try:
            served.refresh()
        except LogUnavailable as error:
            log.error("cannot read the registry yet: %s", error)
        return cls(settings, store, registry, served)


def open_log_and_registry(
    settings: Settings, *, autocheckpoint_pages: int = 1000, clock: Clock = time.time
) -> tuple[LogStore, ModelRegistry]:
    """Open (and migrate) the log, and the model registry kept beside it.

    The one place settings become stores, for either backend: the SQLite file, or the
    PostgreSQL database XSELL_DATABASE_URL names. On PostgreSQL the migrations run under
    their advisory lock (nodes starting together migrate once) and the model files go
    into the database too, so nodes need no shared disk: the model directory is then
    this node's cache of them.
    """
    database = settings.database
    store = LogStore(
        database,
        StoreOptions(settings.busy_timeout_seconds, settings.log_synchronous, autocheckpoint_pages),
        clock=clock,
    )
    store.migrate()
    return store, open_registry(settings, ModelIndex(store), clock=clock)


def open_registry(
    settings: Settings,
    index: ModelIndex,
    model_dir: Path | None = None,
    *,
    reader: bool = False,
    clock: Clock = time.time,
) -> ModelRegistry:
    """The model registry of the log `index` belongs to, with the settings' retention.

    On PostgreSQL the model files live in the database (nodes share no disk) and
    `model_dir` (default the settings' model directory) is this process's cache of them.
    A `reader` (`xsell evaluate`) writes nothing to the database. Versions are stamped
    by `clock`, the log's: a model is judged on the decisions logged after it.
    """
    retention = RetentionPolicy(
        keep_recent=settings.model_keep,
        checkpoint_seconds=settings.model_checkpoint_seconds,
        keep_checkpoints=settings.model_keep_checkpoints,
    )
    shared = None
    if settings.database.is_postgresql:
        from logs.blob_store import DatabaseBlobStore  # psycopg stays out of a SQLite worker

        shared = DatabaseBlobStore(
            settings.database, deadline_seconds=settings.busy_timeout_seconds, create=not reader
        )
    return ModelRegistry(
        model_dir or settings.resolved_model_dir, index, retention=retention, shared=shared, clock=clock
    )


def shopper_key(res: Resources, shopper_id: str) -> str:
    """Return the keyed hash a shopper is known by; the raw id is never stored."""
    return res.shopper_hash.hexdigest(shopper_id.encode())


def resources() -> Resources:
    """Return the current app's Resources."""
    found: Resources = current_app.extensions["xsell"]
    return found
