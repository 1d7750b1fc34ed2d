"""`xsell learn`: run the single learner until interrupted."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from pathlib import Path

from logs.archive import Archive
from logs.dialect import DatabaseUrl
from logs.election import AdvisoryLock, FileLock, LearnerLock
from logs.footprint import budget_from_mb, describe
from logs.payloads import DecisionWritersBusy
from logs.store import Clock, LogStore
from policies.learning.guardrail import Guardrail, GuardrailOptions
from policies.learning.learner import Learner, LearnerOptions
from policies.learning.shadow import Shadow, auto_promote, live_report
from service.effective import ConfigSource
from service.limits import feature_limits
from service.loop_chores import learner_chores
from service.resources import open_log_and_registry
from service.settings import Settings

log = logging.getLogger("xsell.learn")
RETENTION_SECONDS = 3600.0  # how often old decisions are deleted under a retention limit
PRUNE_SECONDS = 60.0  # how often the log is pruned back under its disk budget (small batches)
CHECKPOINT_SECONDS = 1.0  # how often the WAL is copied back, so web workers never do it


def build_learner(settings: Settings, *, clock: Clock = time.time) -> tuple[Learner, LogStore]:
    """Wire the log, the registry, the shadow and the guardrail into a Learner (tests pass a clock)."""
    store, registry = open_log_and_registry(settings, clock=clock)
    # The learner, the guardrail, retention and promotion all read what is in force here.
    config = ConfigSource(settings, registry.index, ttl_seconds=settings.learner_poll_seconds)
    options = LearnerOptions(
        vw_args=settings.vw_args,
        snapshot_interval_seconds=config.current().live.snapshot_interval_seconds,
        poll_seconds=settings.learner_poll_seconds,
        grace_seconds=settings.learner_grace_seconds,
        batch_size=settings.learner_batch_size,
        guardrail_check_seconds=settings.guardrail_check_seconds,
        limits=feature_limits(settings),
    )
    guardrail = Guardrail(
        store,
        registry,
        config,
        GuardrailOptions(
            enabled=settings.guardrail_enabled,
            window_events=settings.guardrail_window_events,
            min_events=settings.guardrail_min_events,
            level=settings.guardrail_level,
            min_relative_drop=settings.guardrail_min_relative_drop,
            check_seconds=settings.guardrail_check_seconds,
            grace_seconds=settings.learner_grace_seconds,
        ),
        clock=clock,
    )
    shadow = None
    after_snapshot = None
    if settings.shadow_vw_args:
        registry.ensure_initial(settings.vw_args)
        shadow = Shadow(registry, store, settings.shadow_vw_args)
        if settings.auto_promote:
            args = settings.shadow_vw_args

            def after_snapshot() -> None:
                found = live_report(store, registry, args, config.current().rules)
                auto_promote(registry, found, settings.auto_promote_min_events)

    archive = None
    if settings.log_archive_dir is not None:  # every closed day goes to Parquet before deletion
        archive = Archive(settings.log_archive_dir, lambda event: config.current().rules.slot_rewards(event))
        archive.check()

    def retention() -> None:
        days = config.current().live.log_retention_days
        if days > 0:
            if archive is not None:
                archive.write_closed_days(store)
            removed = store.purge(older_than=time.time() - days * 86400)
            if any(removed.values()):
                log.info("log retention (%d days) removed %s", days, removed)

    budget = budget_from_mb(settings.log_budget_mb)

    def prune() -> None:
        # Decisions wait unlearned while nothing learns (logging only, frozen): past the
        # budget they may go then, or the disk would fill.
        learns = config.current().live.learns and not registry.learning_frozen()
        archived = {}
        if archive is not None:  # only what is in a file may go
            archive.write_closed_days(store)
            archived = dict(zip(("created_before", "closed_by"), archive.archived(store), strict=True))
        try:
            removed = store.prune_to_budget(budget, keep_unlearned=learns, **archived)
        except DecisionWritersBusy as busy:  # PostgreSQL: a long write holds decisions; next run
            log.info("pruning waits: %s", busy)
            return
        if removed:
            log.info("pruned the %d oldest decisions: %s", removed, describe(store.footprint(budget)))

    learner = Learner(
        store,
        registry,
        config.current().rules,
        options,
        shadow=shadow,
        guardrail=guardrail,
        after_snapshot=after_snapshot,
        live=config,
        chores=[
            (RETENTION_SECONDS, retention),
            (PRUNE_SECONDS, prune),
            (CHECKPOINT_SECONDS, store.checkpoint),
            # rollups for the console and /metrics, policy estimates, drift checks
            *learner_chores(store, config, grace_seconds=settings.learner_grace_seconds),
        ],
        clock=clock,
    )
    return learner, store


def run_learner(settings: Settings) -> None:
    """Take the learner lock (waiting as a standby if another learner holds it), then learn."""
    os.umask(0o077)  # models and the lock file are the service's alone (docs/security.md)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    lock = learner_lock(settings.database, Path(settings.resolved_model_dir))
    if not wait_for_lock(lock, stop):
        return
    try:
        watchdog = threading.Thread(target=watch_lock, args=(lock, stop), daemon=True, name="learner-lock")
        watchdog.start()
        learner, store = build_learner(settings)
        log.info("learner started on %s", settings.database.redacted())
        log.info("%s", describe(store.footprint(budget_from_mb(settings.log_budget_mb))))
        try:
            learner.run(stop)
        finally:
            store.close()
        log.info("learner stopped at %s", learner.version.version if learner.version else None)
    finally:
        lock.release()


def learner_lock(database: DatabaseUrl, model_dir: Path) -> LearnerLock:
    """One learner per log: a lock file beside the models, or an advisory lock on PostgreSQL."""
    if database.conninfo is not None:
        return AdvisoryLock(database.conninfo)
    return FileLock(model_dir / "learner.lock")


def wait_for_lock(lock: LearnerLock, stop: threading.Event, poll_seconds: float = 1.0) -> bool:
    """Wait as a standby until `lock` is ours (True) or `stop` is set (False)."""
    announced = False
    while not stop.is_set():
        if lock.try_acquire():
            log.info("learner lock taken (%s)", lock.describe())
            return True
        if not announced:
            log.warning("another learner holds %s; waiting as standby", lock.describe())
            announced = True
        stop.wait(poll_seconds)
    return False


def watch_lock(lock: LearnerLock, stop: threading.Event, poll_seconds: float = 2.0) -> None:
    """Stop learning if the lock is lost (its connection broke): another node may hold it now."""
    while not stop.wait(poll_seconds):
        if not lock.still_held():
            log.error("learner lock lost (%s); stopping so only one learner runs", lock.describe())
            stop.set()
