"""Settings: every knob, read from ``XSELL_*`` environment variables."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from logs.dialect import DatabaseUrl, parse_database_url
from policies.deciding.live_config import LIVE_SETTINGS, InvalidSetting, LiveConfig, check_live_setting
from policies.deciding.vw import check_vw_args
from policies.learning.rewards import RewardRules
from policies.offers.pacing import PacingOptions
from policies.offers.shortlist import OfferOptions

__all__ = ["DEFAULT_VW_ARGS", "Settings"]

# Chosen by measurement: see docs/exploration.md and `xsell simulate`.
DEFAULT_VW_ARGS = "--cb_explore_adf --squarecb -q :: --cb_type mtr"


class Settings(BaseSettings):
    """Configuration of the service, the learner and the log."""

    model_config = SettingsConfigDict(env_prefix="XSELL_", frozen=True, extra="ignore")

    # where things live
    data_dir: Path = Field(Path("var"), description="Directory for the log and models.")
    log_path: Path | None = Field(None, description="SQLite log file (default DATA_DIR/xsell.db).")
    model_dir: Path | None = Field(None, description="Model snapshots (default DATA_DIR/models).")
    database_url: str | None = Field(
        None,
        description="postgresql://user@host/db to share one database between nodes (docs/deploy.md); "
        "default: the SQLite log file.",
    )

    # serving
    host: str = Field("127.0.0.1", description="Address gunicorn binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port gunicorn binds.")
    workers: int = Field(2, ge=1, le=64, description="gunicorn worker processes.")
    threads: int = Field(
        1, ge=1, le=64, description="Threads per worker; a request reaches one once it has fully arrived."
    )
    request_timeout_seconds: int = Field(30, ge=1, description="gunicorn worker timeout.")
    max_body_bytes: int = Field(256 * 1024, ge=1024, description="Larger request bodies get 413.")
    model_poll_seconds: float = Field(0.5, gt=0, description="How often workers look for a newer model.")
    access_log: bool = Field(False, description="Write gunicorn's access log to stdout.")
    bench_endpoints: bool = Field(
        False,
        description="Serve POST /bench/parse (parse a rank body, answer small JSON) for the benchmark.",
    )

    # request cost limits (docs/security.md, "Limits"); a rank past one gets 413
    max_context_features: int = Field(
        1024, ge=1, description="Context features after flattening (each list item counts)."
    )
    max_action_features: int = Field(256, ge=1, description="Features of one action after flattening.")
    max_features_x_actions: int = Field(
        32_768, ge=1, description="Features over all action lines (context + action, summed over actions)."
    )
    max_interaction_pairs: int = Field(
        25_000_000, ge=1, description="Interaction features the VW arguments make (-q :: squares a line)."
    )

    # learning
    vw_args: str = Field(DEFAULT_VW_ARGS, description="Vowpal Wabbit arguments for new models.")
    # An operator may override the live settings (LIVE_SETTINGS) while the service
    # runs; policies/deciding/live_config.py alone checks their bounds, here and for overrides.
    reward_window_seconds: float = Field(600.0, description="Wait this long for feedback.")
    first_learn_seconds: float = Field(
        0.5,
        ge=0,
        description="Learn every decision this long after it was made, with the feedback known then; "
        "later signals within the reward window are learned as corrections.",
    )
    snapshot_interval_seconds: float = Field(1.0, description="Publish a snapshot this often.")
    learner_poll_seconds: float = Field(
        0.2, gt=0, description="How often the learner reads the log for events come due."
    )
    learner_grace_seconds: float = Field(
        0.2,
        ge=0,
        description="Read decisions this long after they are due, so nearly every write stamped before "
        "then has committed (one committed later is still learned, a moment later).",
    )
    learner_batch_size: int = Field(500, ge=1, description="Events read per query.")
    model_keep: int = Field(50, ge=1, description="Newest retired model files kept on disk.")
    model_checkpoint_seconds: float = Field(
        600.0, gt=0, description="Also keep one retired model file per this many seconds, for rollback."
    )
    model_keep_checkpoints: int = Field(144, ge=0, description="How many such checkpoints to keep.")
    rollback_default_seconds: float = Field(
        600.0,
        ge=0,
        description="`rollback` without --to goes back to a trained model at least this much older.",
    )
    personalizer_reset_policy: Literal["xsell", "personalizer"] = Field(
        "xsell",
        description="What the Personalizer API's reset_policy restores: xsell's XSELL_VW_ARGS, or "
        "Personalizer's own default arguments exactly (docs/personalizer.md).",
    )

    # shadow and promotion
    shadow_vw_args: str | None = Field(
        None, description="VW arguments of a shadow policy that learns beside the active one, unseen."
    )
    auto_promote: bool = Field(
        False, description="Promote the shadow when it provably beats the active policy."
    )
    auto_promote_min_events: int = Field(
        1000, ge=1, description="Decisions the shadow must have scored first."
    )

    # guardrail
    guardrail_enabled: bool = Field(True, description="Roll back when online reward falls significantly.")
    guardrail_window_events: int = Field(2000, ge=10, description="Decisions per compared window.")
    guardrail_min_events: int = Field(500, ge=2, description="Fewer decisions in a window: no verdict.")
    guardrail_level: float = Field(0.01, gt=0, lt=0.5, description="One-sided z-test significance level.")
    guardrail_min_relative_drop: float = Field(
        0.1, ge=0, description="Ignore drops smaller than this share of the baseline reward."
    )
    guardrail_check_seconds: float = Field(10.0, gt=0, description="How often the learner checks.")

    # offers (POST /v1/offers)
    demo_catalog: bool = Field(
        True, description="Load the bundled demo store into an empty catalog at start."
    )
    offers_max_candidates: int = Field(
        20, ge=1, le=50, description="Candidates the bandit ranks per request."
    )
    offers_per_category: int = Field(
        4, ge=1, description="In-stock products looked at per complement kind; one per kind is offered."
    )
    offers_max_cart_lines: int = Field(8, ge=1, description="A cart with this many lines gets no offer.")
    offers_checkout_max_lines: int = Field(
        3, ge=0, description="At checkout, more lines than this: no offer."
    )
    offers_checkout_max_offers: int = Field(1, ge=1, description="At most this many offers at checkout.")

    shopper_id_secret: SecretStr | None = Field(
        None,
        description="Key for hashing shopper ids (HMAC-SHA256); default: DATA_DIR/shopper-id.key, made once.",
    )

    # pacing (per shopper id)
    pacing_session_seconds: float = Field(1800.0, gt=0, description="Length of a shopping session for caps.")
    pacing_session_cap: int = Field(6, ge=0, description="Offers shown per session (a third for 'fewer').")
    pacing_cooldown_seconds: float = Field(
        120.0, ge=0, description="Pause after a dismissal, doubled for each further dismissal."
    )
    pacing_max_cooldown_seconds: float = Field(86_400.0, ge=0, description="Longest pause after dismissals.")
    pacing_category_fatigue: int = Field(
        3, ge=1, description="A kind shown this often in a session without a positive answer rests."
    )

    # access
    # A key setting that yields no key refuses to start: an empty or comment-only value
    # must never leave routes open by accident (docs/security.md).
    admin_api_keys: SecretStr | None = Field(
        None, description="Comma-separated keys for admin endpoints; unset disables admin HTTP."
    )
    admin_api_key_file: Path | None = Field(None, description="File with admin keys, one per line.")
    api_keys: SecretStr | None = Field(
        None,
        description="Comma-separated keys every storefront call must send (rank, offers, feedback, "
        "shopper preferences and erasure).",
    )
    api_key_file: Path | None = Field(None, description="File with storefront keys, one per line.")
    open_access: bool = Field(
        False,
        description="With no storefront key, serve the storefront routes to anyone on a non-loopback "
        "address (only behind a proxy that authenticates); without it such a start is refused.",
    )

    @field_validator("admin_api_keys", "api_keys")
    @classmethod
    def _keys_given(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None:
            _parse_keys(value.get_secret_value().split(","), f"XSELL_{str(info.field_name).upper()}")
        return value

    # rewards (see policies/learning/rewards.py for why these defaults)
    reward_click: float = Field(1.0, description="Reward of a click.")
    reward_save: float = Field(1.0, description="Reward of a save.")
    reward_add_to_cart: float = Field(1.0, description="Reward of an add to cart.")
    reward_purchase: float = Field(1.0, description="Reward of a purchase, before its value.")
    reward_purchase_value_scale: float = Field(0.005, ge=0, description="Added per unit of order value.")
    reward_dismiss: float = Field(-0.1, description="Reward of a dismissal (a small penalty).")
    default_reward: float = Field(0.0, description="Reward of an event with no feedback.")
    reward_aggregation: Literal["max", "sum", "average", "earliest"] = Field(
        "max", description="How several signals combine (max, sum, average, or earliest: the first counts)."
    )
    learning_mode: Literal["online", "apprentice", "logging_only"] = Field(
        "online",
        description="online serves the policy; apprentice serves the baseline (first candidate) and "
        "learns from it; logging_only serves the baseline and learns nothing.",
    )
    exploration_share: float = Field(
        0.0, description="Share of every distribution spread evenly over the candidates."
    )
    log_retention_days: int = Field(
        -1, description="The learner deletes decisions older than this many days; -1 keeps them."
    )
    reward_min: float = Field(-1.0, description="Rewards are clipped to at least this.")
    reward_max: float = Field(2.0, description="Rewards are clipped to at most this.")

    # the log
    log_synchronous: Literal["NORMAL", "FULL"] = Field(
        "NORMAL",
        description="NORMAL survives xsell's own crashes (on PostgreSQL synchronous_commit=off: a crash "
        "of the database server may lose its last 0.6 s of commits); FULL also power loss and database "
        "crashes (synchronous_commit=on), at the cost of a disk flush per write.",
    )
    busy_timeout_seconds: float = Field(30.0, gt=0, description="Wait this long for the write lock.")
    log_budget_mb: float = Field(
        0.0,
        ge=0,
        description="Disk the log may take; past it the learner deletes the oldest closed, learned "
        "decisions. 0: what the log takes plus half the free space of its disk (it cannot fill it).",
    )
    log_archive_dir: Path | None = Field(
        None,
        description="Every closed day of decisions is written here as Parquet before pruning or retention "
        "deletes it (pip install 'xsell[archive]'); `xsell evaluate --archive DIR` reads it.",
    )

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        parse_database_url(value, Path("xsell.db"))  # an unsupported scheme is refused at startup
        return value

    @field_validator("vw_args")
    @classmethod
    def _vw_args_usable(cls, value: str) -> str:
        return check_vw_args(value)

    @field_validator("shadow_vw_args")
    @classmethod
    def _shadow_args_usable(cls, value: str | None) -> str | None:
        return check_vw_args(value) if value else None

    @property
    def resolved_log_path(self) -> Path:
        if self.log_path is None and self.database_url:  # sqlite:///path names the file too
            found = parse_database_url(self.database_url, self.data_dir / "xsell.db").path
            if found is not None:
                return found
        return self.log_path or self.data_dir / "xsell.db"

    @property
    def database(self) -> DatabaseUrl:
        """Where the log lives: XSELL_DATABASE_URL, else the SQLite file (logs/dialect.py)."""
        url = parse_database_url(self.database_url, self.resolved_log_path)
        return url if url.is_postgresql else parse_database_url(None, self.resolved_log_path)

    @property
    def resolved_model_dir(self) -> Path:
        return self.model_dir or self.data_dir / "models"

    def reward_rules(self) -> RewardRules:
        """Return the signal → reward mapping these settings describe."""
        return RewardRules(
            click=self.reward_click,
            save=self.reward_save,
            add_to_cart=self.reward_add_to_cart,
            purchase=self.reward_purchase,
            purchase_value_scale=self.reward_purchase_value_scale,
            dismiss=self.reward_dismiss,
            default_reward=self.default_reward,
            aggregation=self.reward_aggregation,
            min_reward=self.reward_min,
            max_reward=self.reward_max,
        )

    def live_config(self) -> LiveConfig:
        """Return the live settings these settings hold (with overrides applied, those in force)."""
        return LiveConfig(**{name: getattr(self, name) for name in LIVE_SETTINGS})

    @field_validator(*LIVE_SETTINGS)
    @classmethod
    def _live_usable(cls, value: object, info: ValidationInfo) -> object:
        try:
            return check_live_setting(str(info.field_name), value)
        except InvalidSetting as error:
            raise ValueError(error.problem) from None

    def to_env(self) -> dict[str, str]:
        """Return the settings given here (a variable or a flag) as XSELL_* variables, for child processes.

        Only those: a default exported as a variable would reach the workers as "environment",
        and GET /v1/config and /metrics would name the wrong source for every setting.
        """
        env = {}
        for name, value in self.model_dump(include=self.model_fields_set).items():
            if isinstance(value, SecretStr):
                value = value.get_secret_value()  # a child process needs the key itself
            if value is not None:
                env[f"XSELL_{name.upper()}"] = str(value).lower() if isinstance(value, bool) else str(value)
        return env

    def offer_options(self) -> OfferOptions:
        """Return the shortlist rules these settings describe."""
        return OfferOptions(
            max_candidates=self.offers_max_candidates,
            per_category=self.offers_per_category,
            max_cart_lines=self.offers_max_cart_lines,
            checkout_max_lines=self.offers_checkout_max_lines,
            checkout_max_offers=self.offers_checkout_max_offers,
        )

    def pacing_options(self) -> PacingOptions:
        """Return the pacing rules these settings describe."""
        return PacingOptions(
            session_seconds=self.pacing_session_seconds,
            session_cap=self.pacing_session_cap,
            cooldown_seconds=self.pacing_cooldown_seconds,
            max_cooldown_seconds=self.pacing_max_cooldown_seconds,
            category_fatigue=self.pacing_category_fatigue,
        )

    def shopper_secret(self) -> bytes:
        """Return the key shopper ids are hashed with, creating DATA_DIR/shopper-id.key once if needed."""
        if self.shopper_id_secret is not None:
            return self.shopper_id_secret.get_secret_value().encode()
        path = self.data_dir / "shopper-id.key"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(path, "x") as handle:  # exactly one process creates it
                os.chmod(path, 0o600)
                handle.write(secrets.token_hex(32))
        except FileExistsError:
            pass
        return path.read_text().strip().encode()

    def admin_keys(self) -> frozenset[str]:
        """Return the admin API keys from XSELL_ADMIN_API_KEYS and XSELL_ADMIN_API_KEY_FILE."""
        return _keys(self.admin_api_keys, self.admin_api_key_file, "ADMIN_API_KEY")

    def storefront_keys(self) -> frozenset[str]:
        """Return the storefront API keys from XSELL_API_KEYS and XSELL_API_KEY_FILE."""
        return _keys(self.api_keys, self.api_key_file, "API_KEY")


def _keys(listed: SecretStr | None, path: Path | None, name: str) -> frozenset[str]:
    """Return the keys of one setting pair (XSELL_NAMES, XSELL_NAME_FILE); none if both are unset.

    Each one that is set must yield a key: ``""``, ``","``, ``" "``, ``"#x"`` or an empty
    file are mistakes, and a mistake here would otherwise open every route it guards.
    """
    keys: set[str] = set()
    if listed is not None:
        keys |= _parse_keys(listed.get_secret_value().split(","), f"XSELL_{name}S")
    if path is not None:
        try:
            lines = path.read_text().splitlines()
        except OSError as error:
            raise ValueError(f"cannot read API key file {path}: {error.strerror}") from error
        keys |= _parse_keys(lines, f"XSELL_{name}_FILE ({path})")
    return frozenset(keys)


def _parse_keys(entries: list[str], source: str) -> set[str]:
    keys = {entry.strip() for entry in entries}
    keys = {key for key in keys if key and not key.startswith("#")}
    if not keys:
        raise ValueError(
            f"{source} is set but holds no key (empty, blank or only comments); "
            "give at least one key, or unset it"
        )
    return keys
