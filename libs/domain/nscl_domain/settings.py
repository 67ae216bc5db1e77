"""Service configuration, read once from the environment (prefix ``NSCL_``) at start-up."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, IPvAnyNetwork, PostgresDsn, RedisDsn, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the API and the worker need to know about their surroundings."""

    # Secrets may also come as files (a Kubernetes Secret mounted as a volume, Docker
    # secrets), one file per setting named like its variable, e.g. `nscl_database_url`, in
    # the folder NSCL_SECRETS_DIR names; files are not inherited by child processes or shown
    # by `env`, unlike environment variables.
    model_config = SettingsConfigDict(
        env_prefix="NSCL_",
        env_file=".env",
        extra="ignore",
        secrets_dir=os.environ.get("NSCL_SECRETS_DIR") or None,
    )

    database_url: PostgresDsn | None = Field(
        default=None,
        description=(
            "PostgreSQL URL (postgresql+asyncpg://user@host:port/db) of the service role "
            "the API and the worker connect as: it owns nothing in the schema. "
            "Unset: an embedded PostgreSQL is started under `data_dir`."
        ),
    )
    migration_database_url: PostgresDsn | None = Field(
        default=None,
        description=(
            "PostgreSQL URL of the role that owns the schema; `nscl db upgrade` migrates as "
            "it and grants the service role (the user of `database_url`) its privileges. "
            "Give it to the migration job only. Unset: migrations run as `database_url`."
        ),
    )
    redis_url: RedisDsn | None = Field(
        default=None,
        description=(
            "Redis URL for the job queue. Unset: the worker runs inside the API process "
            "on an in-memory Redis."
        ),
    )
    data_dir: Path = Field(
        default=Path(".nscl"), description="Folder of the embedded PostgreSQL's data."
    )
    environment: Literal["development", "test", "production"] = Field(
        default="development",
        description=(
            "production: refuse to start on the embedded database or the in-memory Redis, "
            "and without a passphrase sealing the signing keys."
        ),
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = Field(default=True, description="Structured JSON logs (false: console).")

    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)

    max_body_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest request body accepted."
    )
    upload_parsers: int = Field(
        default=2,
        ge=1,
        le=32,
        description="Worker processes parsing uploaded spreadsheets; at most this many at once.",
    )
    upload_parse_seconds: float = Field(
        default=15.0,
        gt=0,
        le=600,
        description="Wall time one upload may take to parse; its worker is killed after it.",
    )
    upload_wait_seconds: float = Field(
        default=10.0,
        ge=0,
        le=600,
        description="How long an upload waits for a free parser before a 503 with Retry-After.",
    )
    queue_name: str = Field(default="nscl:jobs", description="arq queue the jobs go through.")
    job_max_tries: int = Field(
        default=5, ge=1, le=50, description="Attempts a job gets before it ends failed."
    )
    job_timeout_seconds: int = Field(
        default=600, ge=1, description="Longest an attempt may run before it is interrupted."
    )
    job_lease_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description=(
            "Lease of a running attempt, renewed while it runs; once it lapses (its worker "
            "died) the sweep hands the job over again."
        ),
    )
    job_heartbeat_seconds: float = Field(
        default=2.0, gt=0, le=600, description="How often a running attempt renews its lease."
    )
    outbox_sweep_seconds: int = Field(
        default=5,
        ge=1,
        le=3600,
        description=(
            "How often the worker hands over again jobs that are due but not started, and "
            "jobs whose lease lapsed."
        ),
    )
    outbox_grace_seconds: int = Field(
        default=10,
        ge=0,
        description=(
            "How long a pending job may wait, once due and handed over, before the sweep "
            "hands it over again."
        ),
    )
    public_base_url: str = Field(
        default="http://localhost:8000",
        description=(
            "Where other systems and people reach this API: the source of the events it "
            "sends and the base of the links in them and in reminder e-mails."
        ),
    )
    webhook_allowed_networks: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description=(
            "Private, loopback or link-local networks (CIDR, JSON list) webhooks may still "
            "target; every other such address is refused, at subscription and at delivery."
        ),
    )
    webhook_timeout_seconds: float = Field(
        default=10.0, gt=0, le=60, description="Longest one delivery may take, connection included."
    )
    webhook_retry_base_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="First retry delay of a failed delivery; doubled per attempt, with jitter.",
    )
    webhook_retry_max_delay_seconds: float = Field(
        default=6 * 3600.0, gt=0, description="Longest wait between two attempts of a delivery."
    )
    webhook_retry_window_seconds: float = Field(
        default=3 * 86_400.0,
        gt=0,
        description="How long a delivery is retried before it ends failed (three days).",
    )
    webhook_disable_after_seconds: float = Field(
        default=5 * 86_400.0,
        gt=0,
        description=(
            "An endpoint whose every attempt failed for this long is disabled, and operators "
            "hear of it (a webhook.disabled event)."
        ),
    )
    upstream_url: str | None = Field(
        default=None,
        description=(
            "Base URL of the national instance this (provincial) instance sends each "
            "published provincial rollup to (POST /v1/national-intake/...). Unset: nothing "
            "is sent upstream."
        ),
    )
    upstream_client_id: str | None = Field(
        default=None,
        description=(
            "Client of the national instance the pushes authenticate as (client credentials; "
            "role reporter, unit = the owner of the province's programme there)."
        ),
    )
    upstream_client_secret: SecretStr | None = Field(
        default=None, description="Secret of `upstream_client_id`."
    )
    upstream_programme: str | None = Field(
        default=None,
        description=(
            "Key of the province's programme on the national instance. Unset: the same key as here."
        ),
    )
    upstream_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="Longest one request to the national instance may take.",
    )
    schedule_tick_seconds: int = Field(
        default=15,
        ge=1,
        le=3600,
        description="How often the worker looks for schedules whose fire time has come.",
    )
    schedule_catch_up_seconds: int = Field(
        default=6 * 3600,
        ge=0,
        description=(
            "A fire time missed while no worker ran is made up once, for the most recent "
            "missed time only, if the worker is back within this many seconds of it."
        ),
    )
    token_ttl_seconds: int = Field(
        default=900, ge=60, le=86_400, description="Lifetime of issued access tokens."
    )
    auth_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        le=300,
        description="How long a verified caller is reused; a disabled client is refused after it.",
    )
    auth_failures_limit: int = Field(
        default=5,
        ge=1,
        description=(
            "Failed token requests for one client from one address before that address is "
            "held off for that client (other addresses are not)."
        ),
    )
    auth_failures_window_seconds: int = Field(
        default=900, ge=1, description="How long failed token requests are remembered."
    )
    auth_backoff_base_seconds: int = Field(
        default=2,
        ge=1,
        description=(
            "Hold-off after auth_failures_limit failures; each further failure doubles it."
        ),
    )
    auth_backoff_max_seconds: int = Field(
        default=300, ge=1, description="Longest hold-off of a client at one address."
    )
    auth_address_failures_limit: int = Field(
        default=20,
        ge=1,
        description=(
            "Failed (or unfinished) token requests from one address, whatever the client id, "
            "within auth_failures_window_seconds before the address is held off."
        ),
    )
    auth_usual_address_days: int = Field(
        default=30,
        ge=1,
        description=(
            "How long an address a client succeeded from counts as its usual one: from there "
            "the address and global limits do not hold it off."
        ),
    )
    token_rate_limit: int = Field(
        default=300,
        ge=1,
        description=(
            "Token requests per token_rate_window_seconds across all callers (not counting "
            "clients at their usual address)."
        ),
    )
    token_rate_window_seconds: int = Field(
        default=60, ge=1, le=3600, description="Window of token_rate_limit."
    )
    auth_hash_concurrency: int = Field(
        default=2,
        ge=1,
        le=64,
        description="Secret checks (Argon2) run at once in threads, per process.",
    )
    auth_hash_wait_seconds: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="How long a token request waits for a free secret check before a 503.",
    )
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description=(
            "Addresses or networks (CIDR) of reverse proxies whose X-Forwarded-For is "
            "believed (JSON list). Empty: the socket peer is the caller's address."
        ),
    )
    auth_redis_prefix: str = Field(
        default="nscl:auth", description="Prefix of the Redis keys of token-request limits."
    )
    key_ring_poll_seconds: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="How often a process checks for rotated or retired signing keys.",
    )
    seed_on_start: bool = Field(
        default=True, description="Load the built-in Bắc Kạn plan when the embedded default starts."
    )
    signing_key_passphrase: SecretStr | None = Field(
        default=None,
        description=(
            "Seals the token-signing private keys (encrypted PKCS#8) and the webhook signing "
            "secrets stored in the database. Unset: new ones are stored unsealed (refused in "
            "production)."
        ),
    )
    signing_key_previous_passphrases: list[SecretStr] = Field(
        default_factory=list,
        description="Older passphrases still accepted while `nscl keys reseal` runs (JSON list).",
    )

    smtp_host: str | None = Field(
        default=None,
        description="SMTP server deadline reminders are sent through. Unset: none are sent.",
    )
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = Field(default=None, description="Unset: no SMTP login.")
    smtp_password: SecretStr | None = None
    smtp_from: str = Field(default="nscl@localhost", description="Sender address of the reminders.")
    smtp_starttls: bool = Field(
        default=True, description="Upgrade the SMTP connection with STARTTLS before login."
    )
    smtp_timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    def refuse_unsafe_production(self, *, signs_tokens: bool) -> None:
        """In production, refuse to start on the embedded defaults or with unsealed keys.

        Checked by the processes that serve (the API, the worker), not by one-shot commands:
        the migration job needs neither Redis nor the keys' passphrase.
        """
        required: list[tuple[str, object]] = [
            ("NSCL_DATABASE_URL", self.database_url),
            ("NSCL_REDIS_URL", self.redis_url),
        ]
        if signs_tokens:
            required.append(("NSCL_SIGNING_KEY_PASSPHRASE", self.signing_key_passphrase))
        missing = [name for name, value in required if value is None]
        if self.environment == "production" and missing:
            raise RuntimeError(
                "NSCL_ENVIRONMENT=production refuses the embedded database, the in-memory "
                f"Redis and unsealed signing keys: set {', '.join(missing)}"
            )

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def owner_database_url(self) -> str | None:
        """The URL migrations run as: the owner's, else the service's (one role for both)."""
        url = self.migration_database_url or self.database_url
        return None if url is None else str(url)

    @property
    def service_role(self) -> str | None:
        """The role the service connects as, when migrations run as a different one."""
        if self.database_url is None or self.migration_database_url is None:
            return None
        service = _user_of(self.database_url)
        return service if service and service != _user_of(self.migration_database_url) else None

    @property
    def uses_embedded_redis(self) -> bool:
        return self.redis_url is None


def _user_of(url: PostgresDsn) -> str | None:
    hosts = url.hosts()
    return hosts[0]["username"] if hosts else None
