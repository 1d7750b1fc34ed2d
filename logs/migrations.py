"""The log's schema, one function per change. Never edit a released migration."""

from __future__ import annotations

import sqlite_utils
from sqlite_utils import Migrations

__all__ = ["apply"]

migrations = Migrations("xsell")


@migrations()
def m001_decisions_feedback_models(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE decisions (
            event_id TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            closes_at REAL NOT NULL,        -- reward window end; moved earlier by first feedback
            model_version TEXT NOT NULL,
            request_sha256 TEXT NOT NULL,   -- detects an event id reused for another request
            context TEXT NOT NULL,          -- JSON, exactly as the policy saw it
            actions TEXT NOT NULL,          -- JSON [{id, features}], in ranked order given
            excluded TEXT NOT NULL,         -- JSON [action_id]
            probabilities TEXT NOT NULL,    -- JSON, first-slot distribution aligned with actions
            choices TEXT NOT NULL,          -- JSON [{slot, action_id, probability}]
            slots INTEGER NOT NULL,
            learned_in TEXT                 -- model version whose snapshot includes this event
        )
        """
    )
    # The learner's query: closed events not yet in any published snapshot.
    db.execute("CREATE INDEX decisions_to_learn ON decisions (closes_at, event_id) WHERE learned_in IS NULL")
    db.execute("CREATE INDEX decisions_created ON decisions (created_at)")
    db.execute(
        """
        CREATE TABLE feedback (
            id INTEGER PRIMARY KEY,
            event_id TEXT NOT NULL REFERENCES decisions(event_id) ON DELETE CASCADE,
            action_id TEXT NOT NULL,
            signal TEXT NOT NULL,
            value REAL,
            dedupe_key TEXT NOT NULL,      -- same signal twice counts once
            received_at REAL NOT NULL,
            on_time INTEGER NOT NULL,       -- 1 if it arrived before the event closed
            UNIQUE (event_id, action_id, dedupe_key)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE models (
            seq INTEGER PRIMARY KEY,
            version TEXT NOT NULL UNIQUE,
            parent TEXT,
            kind TEXT NOT NULL,
            vw_args TEXT NOT NULL,
            created_at REAL NOT NULL,
            events_learned INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            path TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('candidate', 'active', 'retired')),
            note TEXT
        )
        """
    )
    db.execute("CREATE UNIQUE INDEX models_one_active ON models (state) WHERE state = 'active'")


@migrations()
def m002_model_changes_control_shadow(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE model_changes (        -- every activation, rollback, promotion: who and why
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            action TEXT NOT NULL,           -- activate, rollback, promote, guardrail, import
            version TEXT NOT NULL,          -- what became active (or was imported)
            previous TEXT,                  -- what was active before
            actor TEXT NOT NULL,            -- cli, http, guardrail, auto-promote
            reason TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE control (              -- operator switches the learner obeys
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated_at REAL NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE shadow_scores (        -- a shadow policy's view of live decisions
            event_id TEXT NOT NULL REFERENCES decisions(event_id) ON DELETE CASCADE,
            shadow TEXT NOT NULL,           -- the shadow's VW arguments
            p_target TEXT NOT NULL,         -- JSON, per slot, given the logged slots above
            agrees INTEGER NOT NULL,        -- 1 if its top offer is the active policy's top offer
            scored_at REAL NOT NULL,
            PRIMARY KEY (event_id, shadow)
        )
        """
    )


@migrations()
def m003_catalog_relations(db: sqlite_utils.Database) -> None:
    db.execute(
        """
        CREATE TABLE products (
            sku TEXT PRIMARY KEY,
            title TEXT NOT NULL,
            category TEXT NOT NULL,         -- the kind: memory_card, tripod, laptop
            family TEXT NOT NULL,           -- the aisle: photo, computing, kitchen
            price REAL NOT NULL,
            tags TEXT NOT NULL,             -- JSON list
            stock INTEGER NOT NULL,
            popularity INTEGER NOT NULL DEFAULT 0   -- orders containing it (relations build)
        )
        """
    )
    db.execute("CREATE INDEX products_category ON products (category, popularity DESC)")
    db.execute(
        """
        CREATE TABLE relations (
            anchor TEXT NOT NULL,           -- a category or a sku in the cart
            complement TEXT NOT NULL,       -- what to offer beside it
            level TEXT NOT NULL CHECK (level IN ('category', 'sku')),
            source TEXT NOT NULL CHECK (source IN ('rule', 'co-purchase')),
            strength REAL NOT NULL,
            reason TEXT NOT NULL,
            support REAL,
            confidence REAL,
            lift REAL,
            PRIMARY KEY (anchor, complement, level, source)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE relation_reviews (     -- an operator's block or pin of a pair
            anchor TEXT NOT NULL,
            complement TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('blocked', 'pinned')),
            note TEXT,
            reviewed_at REAL NOT NULL,
            PRIMARY KEY (anchor, complement)
        )
        """
    )


@migrations()
def m004_shoppers_pacing(db: sqlite_utils.Database) -> None:
    # Shoppers are known only by a keyed hash of their id; erasing a shopper deletes
    # every row below that carries it, and decisions never carry it.
    db.execute(
        """
        CREATE TABLE shoppers (
            shopper_key TEXT PRIMARY KEY,   -- HMAC-SHA256 of the storefront's id
            muted TEXT NOT NULL,            -- JSON list of categories or families
            frequency TEXT NOT NULL CHECK (frequency IN ('off', 'fewer', 'normal')),
            personalised INTEGER NOT NULL,
            updated_at REAL NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE shopper_events (       -- what pacing needs: offers shown and answers
            id INTEGER PRIMARY KEY,
            shopper_key TEXT NOT NULL,
            event_id TEXT,
            sku TEXT,
            category TEXT,
            kind TEXT NOT NULL CHECK (kind IN ('shown', 'dismiss', 'positive')),
            at REAL NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX shopper_events_by_shopper ON shopper_events (shopper_key, at)")
    db.execute("CREATE INDEX shopper_events_by_event ON shopper_events (event_id)")
    db.execute(
        """
        CREATE TABLE pacing_log (           -- every pacing verdict and why
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            shopper_key TEXT,
            event_id TEXT,
            verdict TEXT NOT NULL,          -- offer, fewer, none
            reason TEXT NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX pacing_log_by_shopper ON pacing_log (shopper_key)")


@migrations()
def m005_deferred_activation_evaluations(db: sqlite_utils.Database) -> None:
    # A deferred decision waits for activation with closes_at = +inf, so it is never
    # learned or evaluated unless the storefront says it was shown.
    db.execute("ALTER TABLE decisions ADD COLUMN deferred INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE decisions ADD COLUMN activated_at REAL")
    # Names the storefront gave its slots (Personalizer multi-slot), so a reward can
    # say which slot it is for; NULL when slots are only numbered.
    db.execute("ALTER TABLE decisions ADD COLUMN slot_ids TEXT")
    db.execute(
        """
        CREATE TABLE evaluations (          -- offline evaluations asked for over HTTP
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            status TEXT NOT NULL,           -- Running, Succeeded, Failed
            start_time REAL NOT NULL,       -- decisions made in [start_time, end_time)
            end_time REAL NOT NULL,
            created_at REAL NOT NULL,
            request TEXT NOT NULL,          -- JSON: policies and options as asked
            result TEXT,                    -- JSON: estimates per policy
            error TEXT
        )
        """
    )
    db.execute(
        """
        CREATE TABLE feature_importances (  -- how each feature relates to reward, asked for over HTTP
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            start_time REAL NOT NULL,
            end_time REAL NOT NULL,
            created_at REAL NOT NULL,
            scores TEXT NOT NULL            -- JSON [{namespace, featureName, score}]
        )
        """
    )


@migrations()
def m006_learn_schedule(db: sqlite_utils.Database) -> None:
    # Every decision is first learned at `learn_at` (shortly after it was made, or after
    # its activation) with the feedback known then, answered or silent alike; a later
    # on-time signal is learned as a correction. `closes_at` stays the end of the reward
    # window, which feedback no longer moves: numbers use only decisions past it.
    db.execute("ALTER TABLE decisions ADD COLUMN learn_at REAL")
    db.execute("UPDATE decisions SET learn_at = closes_at")
    db.execute("DROP INDEX IF EXISTS decisions_to_learn")
    db.execute("CREATE INDEX decisions_to_learn ON decisions (learn_at, event_id) WHERE learned_in IS NULL")
    # The model version that learned a feedback row; NULL: not yet learned.
    db.execute("ALTER TABLE feedback ADD COLUMN learned_in TEXT")
    db.execute(
        "UPDATE feedback SET learned_in ="
        " (SELECT learned_in FROM decisions d WHERE d.event_id = feedback.event_id)"
    )
    db.execute(
        "CREATE INDEX feedback_to_learn ON feedback (event_id) WHERE learned_in IS NULL AND on_time = 1"
    )


@migrations()
def m007_slot_controls(db: sqlite_utils.Database) -> None:
    # Everything that shaped a served distribution, so the learner and the evaluator can
    # reproduce it. NULL in rows logged before: no per-slot controls, nothing mixed in.
    db.execute("ALTER TABLE decisions ADD COLUMN slot_excluded TEXT")  # JSON [[action_id]] per slot
    db.execute("ALTER TABLE decisions ADD COLUMN baseline TEXT")  # JSON [action_id | null] per slot
    db.execute("ALTER TABLE decisions ADD COLUMN exploration_share REAL")  # uniform share mixed in
    db.execute("ALTER TABLE decisions ADD COLUMN served_baseline INTEGER")  # 1: the baseline was served


def apply(db: sqlite_utils.Database) -> None:
    """Apply every pending migration."""
    migrations.apply(db)


@migrations()
def m009_demo_catalog_counters(db: sqlite_utils.Database) -> None:
    # The demo store must never mix with a real catalog: its rows are marked so the
    # first real import (or `xsell catalog clear --demo`) removes exactly them.
    db.execute("ALTER TABLE products ADD COLUMN demo INTEGER NOT NULL DEFAULT 0")
    db.execute("ALTER TABLE relations ADD COLUMN demo INTEGER NOT NULL DEFAULT 0")
    db.execute(
        """
        CREATE TABLE counters (             -- counts every worker adds to, read by /metrics
            name TEXT PRIMARY KEY,
            value INTEGER NOT NULL
        )
        """
    )


@migrations()
def m010_shared_payloads(db: sqlite_utils.Database) -> None:
    # What decisions repeat (candidate sets, contexts) is stored once, named by a
    # content hash of its exact JSON (logs/payloads.py). New decisions keep '' in
    # `context` and `actions` and point here; older rows keep their inline JSON.
    db.execute(
        """
        CREATE TABLE payloads (
            digest BLOB PRIMARY KEY,        -- BLAKE2b-128 of the JSON bytes
            codec INTEGER NOT NULL,         -- 0: the JSON as is, 1: zlib
            body BLOB NOT NULL
        ) WITHOUT ROWID
        """
    )
    db.execute("ALTER TABLE decisions ADD COLUMN actions_ref BLOB REFERENCES payloads(digest)")
    db.execute("ALTER TABLE decisions ADD COLUMN context_ref BLOB REFERENCES payloads(digest)")
    # Pruning and erasure ask whether anything still refers to a payload.
    db.execute("CREATE INDEX decisions_actions_ref ON decisions (actions_ref) WHERE actions_ref IS NOT NULL")
    db.execute("CREATE INDEX decisions_context_ref ON decisions (context_ref) WHERE context_ref IS NOT NULL")


@migrations()
def m011_rollups_drift(db: sqlite_utils.Database) -> None:
    # Aggregates the learner keeps as the log grows, so the console and /metrics never
    # scan the log (service/loop_health.py). Counts of decisions and feedback are added
    # as rows arrive (rowid watermarks); reward figures only when a decision's window
    # has ended (a closes_at watermark), so a minute's reward counts ended decisions only.
    db.execute("CREATE INDEX IF NOT EXISTS decisions_closes ON decisions (closes_at)")
    db.execute(
        """
        CREATE TABLE rollup_state (         -- how far each rollup has read the log
            name TEXT PRIMARY KEY,
            value REAL NOT NULL,
            updated_at REAL NOT NULL
        )
        """
    )
    db.execute(
        """
        CREATE TABLE rollup_decisions (     -- per minute decided and model version
            minute INTEGER NOT NULL,        -- floor(created_at / 60)
            model_version TEXT NOT NULL,
            decisions INTEGER NOT NULL DEFAULT 0,
            explored INTEGER NOT NULL DEFAULT 0,        -- first offer not the most likely one
            served_baseline INTEGER NOT NULL DEFAULT 0,
            exploration_share_sum REAL NOT NULL DEFAULT 0,
            ended INTEGER NOT NULL DEFAULT 0,           -- of those, window ended (watermark)
            answered INTEGER NOT NULL DEFAULT 0,        -- ended with an on-time signal
            reward_sum REAL NOT NULL DEFAULT 0,         -- over ended decisions, all slots
            reward_sq REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (minute, model_version)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE rollup_feedback (      -- per minute received, signal and delay
            minute INTEGER NOT NULL,
            signal TEXT NOT NULL,
            on_time INTEGER NOT NULL,
            delay_bucket INTEGER NOT NULL,  -- index into loop_health.DELAY_EDGES_SECONDS
            count INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (minute, signal, on_time, delay_bucket)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE rollup_offers (        -- per hour decided and offer, ended windows only
            hour INTEGER NOT NULL,
            action_id TEXT NOT NULL,
            category TEXT NOT NULL,
            shown INTEGER NOT NULL DEFAULT 0,
            clicked INTEGER NOT NULL DEFAULT 0,
            positive INTEGER NOT NULL DEFAULT 0,        -- click, save, add to cart or purchase
            dismissed INTEGER NOT NULL DEFAULT 0,
            purchased INTEGER NOT NULL DEFAULT 0,
            revenue REAL NOT NULL DEFAULT 0,
            PRIMARY KEY (hour, action_id, category)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE rollup_pacing (        -- per minute: pacing verdicts and no-offer reasons
            minute INTEGER NOT NULL,
            verdict TEXT NOT NULL,
            reason TEXT NOT NULL,
            count INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (minute, verdict, reason)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE rollup_features (      -- context features per minute, hashed into buckets
            minute INTEGER NOT NULL,
            namespace TEXT NOT NULL,
            bucket INTEGER NOT NULL,
            count INTEGER NOT NULL DEFAULT 0,
            example TEXT NOT NULL,          -- a feature name in the bucket (never a value)
            PRIMARY KEY (minute, namespace, bucket)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE learning_estimates (   -- per hour: what other policies would have earned
            hour INTEGER NOT NULL,
            policy TEXT NOT NULL,           -- logged, uniform, most-popular
            estimator TEXT NOT NULL,
            value REAL NOT NULL,
            low REAL NOT NULL,
            high REAL NOT NULL,
            n INTEGER NOT NULL,             -- decisions in the sample
            decisions INTEGER NOT NULL,     -- decisions in the hour
            computed_at REAL NOT NULL,
            PRIMARY KEY (hour, policy)
        )
        """
    )
    db.execute(
        """
        CREATE TABLE drift_checks (         -- every drift check the learner ran
            id INTEGER PRIMARY KEY,
            at REAL NOT NULL,
            kind TEXT NOT NULL,             -- features (per namespace) or reward
            subject TEXT NOT NULL,          -- the namespace, or "reward"
            score REAL,                     -- PSI, or the Welch z statistic
            p_value REAL,
            status TEXT NOT NULL,           -- ok, warn, alarm, insufficient
            recent_n INTEGER NOT NULL,
            reference_n INTEGER NOT NULL,
            detail TEXT NOT NULL            -- JSON: windows, means, the buckets that moved
        )
        """
    )
    db.execute("CREATE INDEX drift_checks_latest ON drift_checks (subject, at)")
    db.execute(
        """
        CREATE TABLE rollup_totals (        -- all-time counts per model version, per signal
            name TEXT NOT NULL,             -- decisions, feedback
            key TEXT NOT NULL,              -- the model version, the signal
            count INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (name, key)
        )
        """
    )
    db.execute("CREATE INDEX rollup_totals_top ON rollup_totals (name, count)")


@migrations()
def m012_experiments(db: sqlite_utils.Database) -> None:
    # Experiments against a holdout (issue #15, logs/experiment_store.py). Each decision
    # served inside one names its experiment and arm, so results come from the log alone.
    db.execute(
        """
        CREATE TABLE experiments (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            arms TEXT NOT NULL,             -- JSON [{name, policy, share, version}]
            alpha REAL NOT NULL,            -- the intervals' error rate
            status TEXT NOT NULL,           -- running, stopped, shipped
            created_at REAL NOT NULL,
            ended_at REAL,
            shipped_arm TEXT,
            reason TEXT
        )
        """
    )
    db.execute("CREATE UNIQUE INDEX experiments_one_running ON experiments (status) WHERE status = 'running'")
    db.execute("ALTER TABLE decisions ADD COLUMN experiment TEXT")  # JSON {id, arm, unit}; NULL outside
    db.execute(
        "CREATE INDEX decisions_experiment ON decisions (json_extract(experiment, '$.id'), closes_at)"
        " WHERE experiment IS NOT NULL"
    )
    db.execute(
        """
        CREATE TABLE experiment_holdouts (  -- requests the no-offer arm answered with nothing
            event_id TEXT PRIMARY KEY,
            experiment_id TEXT NOT NULL REFERENCES experiments(id),
            arm TEXT NOT NULL,
            unit TEXT NOT NULL,             -- shopper, session or event
            created_at REAL NOT NULL,
            closes_at REAL NOT NULL
        )
        """
    )
    db.execute("CREATE INDEX experiment_holdouts_by ON experiment_holdouts (experiment_id, closes_at)")


@migrations()
def m013_decision_rules(db: sqlite_utils.Database) -> None:
    # What business rules and request filters did to a decision (#15): JSON {removed:
    # {action_id: rule}, pinned, max_per_category}; NULL when none applied. Their effect
    # is in `excluded` and `slot_excluded` already, so replays need nothing else.
    db.execute("ALTER TABLE decisions ADD COLUMN rules TEXT")


@migrations()
def m014_campaign_counts(db: sqlite_utils.Database) -> None:
    # Promotions' impressions per campaign and period (#15, logs/rule_store.py), added as
    # decisions are logged: every worker reads a campaign's row instead of scanning the log.
    db.execute(
        """
        CREATE TABLE campaign_counts (
            campaign TEXT NOT NULL,
            period_start REAL NOT NULL,             -- the period's first second (epoch-aligned)
            eligible INTEGER NOT NULL DEFAULT 0,    -- decisions that could show its products
            shown INTEGER NOT NULL DEFAULT 0,       -- of those, decisions that showed one
            PRIMARY KEY (campaign, period_start)
        )
        """
    )


@migrations()
def m015_postgresql_commit_order(db: sqlite_utils.Database) -> None:
    # PostgreSQL only (#14, logs/commit_order.py): writers there commit out of id order,
    # so readers that follow the log past a watermark (the rollups) order rows by the
    # transaction that wrote them, then by id; decisions, keyed by event id, get an id.
    # Rows already there count as written before any transaction (txid 0). SQLite has
    # one writer at a time: its rowids arrive in order, and nothing changes there.
    if isinstance(db, sqlite_utils.Database):
        return
    db.execute("ALTER TABLE decisions ADD COLUMN seq BIGINT GENERATED BY DEFAULT AS IDENTITY")
    for table, row_id in (("decisions", "seq"), ("feedback", "id"), ("pacing_log", "id")):
        db.execute(f"ALTER TABLE {table} ADD COLUMN txid BIGINT NOT NULL DEFAULT 0")
        db.execute(f"ALTER TABLE {table} ALTER COLUMN txid SET DEFAULT pg_current_xact_id()::text::bigint")
        db.execute(f"CREATE INDEX {table}_commit_order ON {table} (txid, {row_id})")
    # Erasure moves a decision's children to a new event id before the decision itself
    # (logs/shopper_store.py): like SQLite's defer_foreign_keys, checked at commit.
    db.execute(
        """
        DO $$
        DECLARE c record;
        BEGIN
            FOR c IN SELECT conrelid::regclass::text AS tbl, conname FROM pg_constraint
                     WHERE contype = 'f' AND connamespace = current_schema()::regnamespace
            LOOP
                EXECUTE 'ALTER TABLE ' || c.tbl || ' ALTER CONSTRAINT ' || quote_ident(c.conname)
                    || ' DEFERRABLE INITIALLY IMMEDIATE';
            END LOOP;
        END $$
        """
    )


@migrations()
def m016_postgresql_payload_checks(db: sqlite_utils.Database) -> None:
    # PostgreSQL only (#14, logs/payloads.py): a foreign key check locks the payload row
    # it finds (FOR KEY SHARE), and nearly every decision names one of a few shared
    # payloads, so those locks cost a tenth of the rank throughput. The insert checks
    # that its payloads exist instead, and payloads are deleted only under a lock that
    # holds decision writers back. SQLite keeps its foreign keys: one writer at a time.
    if isinstance(db, sqlite_utils.Database):
        return
    db.execute(
        """
        DO $$
        DECLARE c record;
        BEGIN
            FOR c IN SELECT conname FROM pg_constraint
                     WHERE contype = 'f' AND conrelid = 'decisions'::regclass
                       AND confrelid = 'payloads'::regclass
            LOOP
                EXECUTE 'ALTER TABLE decisions DROP CONSTRAINT ' || quote_ident(c.conname);
            END LOOP;
        END $$
        """
    )


@migrations()
def m017_experiment_decisions_by_time(db: sqlite_utils.Database) -> None:
    # An experiment's results find its decisions by when they were made (decisions_created,
    # logs/experiment_store.py): an index on the experiment id made every decision served
    # inside one write an extra page of that index, a twentieth of the rank path's cost.
    db.execute("DROP INDEX IF EXISTS decisions_experiment")
