"""Settings shared by every service: environment variables prefixed ``CHINWAG_``."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

SYNCHRONOUS_COMMIT = ("on", "off", "local", "remote_write", "remote_apply")


class Settings(BaseSettings):
    """Every chinwag setting; each field is read from ``CHINWAG_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="CHINWAG_", extra="ignore", frozen=True)

    database_url: SecretStr | None = Field(
        default=None, description="PostgreSQL URL; unset means the embedded server under data_dir."
    )
    nats_url: str | None = Field(
        default=None,
        description="NATS URL, or several comma-separated (a cluster); unset means the "
        "embedded nats-server under data_dir.",
    )
    data_dir: Path = Field(
        default=Path(".chinwag"), description="Where the embedded servers keep data."
    )
    http_host: str = Field(default="127.0.0.1", description="Address the gateway listens on.")
    http_port: int = Field(default=8080, ge=0, le=65535, description="Port the gateway listens on.")
    ops_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port of a worker's /livez, /readyz and /metrics (on http_host); 0 = none.",
    )
    server_name: str = Field(default="chinwag.local", description="This server's name.")
    motd: str = Field(default="Welcome to chinwag.", description="Message of the day.")
    max_history: int = Field(default=10_000, ge=1, description="Messages kept per target.")
    max_message_bytes: int = Field(
        default=4096, ge=64, description="Largest accepted command body, in bytes of JSON."
    )
    session_idle_timeout: float = Field(
        default=86_400.0, gt=0, description="Seconds before an idle session expires."
    )
    online_window: float = Field(
        default=90.0,
        gt=0,
        description="Seconds after its last poll that a client counts as online.",
    )
    command_rate: float = Field(default=10.0, gt=0, description="Commands per second per client.")
    command_burst: int = Field(default=50, ge=1, description="Command burst per client.")
    partitions: int = Field(
        default=4, ge=1, le=1024, description="Event stream partitions (fanout parallelism)."
    )
    fanout_partitions: str = Field(
        default="auto",
        description="Partitions this fanout worker prefers: 'auto' (p mod fanout_workers = "
        "fanout_ordinal), 'all' or e.g. '0,2'.",
    )
    fanout_workers: int = Field(
        default=1, ge=1, le=1024, description="Fanout workers the partitions are split between."
    )
    fanout_ordinal: int = Field(
        default=0, ge=0, description="This fanout worker's index, 0 … fanout_workers - 1."
    )
    fanout_lease_ttl: float = Field(
        default=10.0,
        ge=1.0,
        le=300.0,
        description="Seconds a partition lease outlives its worker before another takes over.",
    )
    fanout_batch: int = Field(
        default=256, ge=1, le=10_000, description="Events per fanout transaction."
    )
    subject_prefix: str = Field(default="chinwag", description="Prefix of every NATS subject.")
    stream_name: str = Field(default="CHINWAG_EVENTS", description="JetStream stream of record.")
    stream_replicas: int = Field(default=1, ge=1, le=5, description="JetStream stream replicas.")
    stream_max_age: float = Field(
        default=7 * 86_400.0, gt=0, description="Seconds the stream retains events."
    )
    duplicate_window: float = Field(
        default=120.0, gt=0, description="JetStream de-duplication window in seconds."
    )
    ack_wait: float = Field(
        default=30.0, gt=0, description="Seconds before an unacked event is resent."
    )
    max_deliver_attempts: int = Field(
        default=5, ge=1, description="Attempts at one event before it is parked as poison."
    )
    db_pool_size: int = Field(default=10, ge=1, description="PostgreSQL connections per process.")
    login_rate: float = Field(
        default=1.0, gt=0, description="Logins per second per source address."
    )
    login_burst: int = Field(default=5, ge=1, description="Login burst per source address.")
    session_pow_bits: int = Field(
        default=0,
        ge=0,
        le=32,
        description="Proof of work for a new session: leading zero bits of its stamp; 0 = off.",
    )
    idempotency_ttl: float = Field(
        default=86_400.0, gt=0, description="Seconds an idempotency key is remembered."
    )
    request_timeout: float = Field(
        default=5.0, gt=0, description="Seconds to wait on an internal call."
    )
    shutdown_grace: float = Field(
        default=20.0,
        gt=0,
        description="Seconds a service may take to stop after SIGTERM: it finishes and "
        "acknowledges what it holds, answers parked long-polls, drains NATS, closes its pool.",
    )
    idempotency_lease: float = Field(
        default=10.0,
        gt=0,
        description="Seconds an unanswered idempotency key refuses a retry (409) before "
        "the retry takes it over.",
    )
    nats_sync_interval: str = Field(
        default="default",
        description="JetStream fsync interval of the embedded nats-server: 'default' "
        "(the server's, 2 minutes), 'always', or a duration like '10s'.",
    )
    database_synchronous_commit: str = Field(
        default="on",
        description="PostgreSQL synchronous_commit of chinwag's connections (and of the "
        "embedded server): on, off, local, remote_write or remote_apply.",
    )
    log_format: str = Field(
        default="auto", description="'json', 'console' or 'auto' (tty → console)."
    )
    log_level: str = Field(default="info", description="Minimum log level.")

    @field_validator("fanout_partitions")
    @classmethod
    def _partitions_spec(cls, value: str) -> str:
        if value not in ("auto", "all"):
            for part in value.split(","):
                if not part.strip().isdigit():
                    raise ValueError("fanout_partitions must be 'auto', 'all' or a list like '0,2'")
        return value

    @model_validator(mode="after")
    def _ordinal_in_range(self) -> Settings:
        if self.fanout_ordinal >= self.fanout_workers:
            raise ValueError(
                f"fanout_ordinal {self.fanout_ordinal} is not below fanout_workers "
                f"{self.fanout_workers}"
            )
        return self

    @field_validator("nats_sync_interval")
    @classmethod
    def _sync_interval(cls, value: str) -> str:
        if value not in ("default", "always") and not re.fullmatch(r"\d+(ms|s|m|h)", value):
            raise ValueError("nats_sync_interval must be 'default', 'always' or like '10s'")
        return value

    @field_validator("database_synchronous_commit")
    @classmethod
    def _synchronous_commit(cls, value: str) -> str:
        if value not in SYNCHRONOUS_COMMIT:
            raise ValueError(f"database_synchronous_commit must be one of {SYNCHRONOUS_COMMIT}")
        return value

    @property
    def owned_partitions(self) -> list[int]:
        """The partitions this fanout worker prefers; it may take over others' when they die."""
        if self.fanout_partitions == "all":
            return list(range(self.partitions))
        if self.fanout_partitions == "auto":
            return [
                p for p in range(self.partitions) if p % self.fanout_workers == self.fanout_ordinal
            ]
        owned = sorted({int(p) for p in self.fanout_partitions.split(",")})
        return [p for p in owned if p < self.partitions]

    def dsn(self) -> str:
        """The database URL, or an error saying how to get one."""
        if self.database_url is None:
            raise RuntimeError(
                "CHINWAG_DATABASE_URL is not set; run `chinwag up` for the embedded default"
            )
        return self.database_url.get_secret_value()

    def nats(self) -> str:
        """The NATS URL, or an error saying how to get one."""
        if self.nats_url is None:
            raise RuntimeError(
                "CHINWAG_NATS_URL is not set; run `chinwag up` for the embedded default"
            )
        return self.nats_url
