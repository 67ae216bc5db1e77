"""Service configuration, read once from the environment (prefix ``NSCL_``) at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, PostgresDsn, RedisDsn
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything the API and the worker need to know about their surroundings."""

    model_config = SettingsConfigDict(env_prefix="NSCL_", env_file=".env", extra="ignore")

    database_url: PostgresDsn | None = Field(
        default=None,
        description=(
            "PostgreSQL URL (postgresql+asyncpg://user@host:port/db). "
            "Unset: an embedded PostgreSQL is started under `data_dir`."
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
    environment: Literal["development", "test", "production"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = Field(default=True, description="Structured JSON logs (false: console).")

    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)

    max_body_bytes: int = Field(
        default=10 * 1024 * 1024, ge=1024, description="Largest request body accepted."
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
        default=5, ge=1, description="Failed token requests per client before it is held off."
    )
    auth_failures_window_seconds: int = Field(
        default=300, ge=1, description="Window of auth_failures_limit, and how long it holds off."
    )
    seed_on_start: bool = Field(
        default=True, description="Load the built-in Bắc Kạn plan when the embedded default starts."
    )

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def uses_embedded_redis(self) -> bool:
        return self.redis_url is None
