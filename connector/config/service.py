"""`[service]`: the long-running `serve` command."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import (
    Field,
    model_validator,
)

from connector.config.secret_sources import (
    random_enough,
    read_secret,
)
from connector.config.values import (
    ConfigPath,
    CronSchedule,
    EnvName,
    KeyProblems,
    ListenAddress,
    Section,
    one_of,
)


class ServiceSettings(Section):
    """`[service]`: the long-running `serve` command."""

    listen: ListenAddress = "127.0.0.1:8000"
    webhook_secret_env: EnvName | None = None
    webhook_secret_file: ConfigPath | None = None
    schedule: CronSchedule = "0 * * * *"
    midnight_sync: bool = True
    # Which scheduled syncs are `sync --full` (`service.schedule.Reconcile`).
    reconcile: Literal["nightly", "every", "never"] = "nightly"
    max_body_bytes: int = Field(default=1_048_576, ge=1)
    ready_max_failed_age_seconds: int = Field(default=7200, ge=0)
    ready_max_sync_seconds: float = Field(default=1800.0, gt=0)
    shutdown_grace_seconds: float = Field(default=20.0, ge=0, le=3600)
    max_connections: int = Field(default=100, ge=2, le=10_000)
    webhook_concurrency: int = Field(default=8, ge=1, le=1000)
    header_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    body_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    keep_alive_seconds: float = Field(default=5.0, gt=0, le=600)
    # Several replicas on one PostgreSQL store: how long an event a replica claimed stays its
    # own without renewal (renewed while it works); a dead replica's events are taken over after.
    event_lease_seconds: float = Field(default=60.0, ge=1, le=3600)

    @model_validator(mode="after")
    def _one_secret(self) -> Self:
        problems = one_of(self, "webhook_secret_env", "webhook_secret_file")
        if problems:
            raise KeyProblems(problems)
        return self

    def listen_host_port(self) -> tuple[str, int]:
        """`listen` split into host (IPv6 brackets removed) and port."""
        host, _, port = self.listen.rpartition(":")
        return host.strip("[]"), int(port)

    def resolve_webhook_secret(self) -> str | None:
        """The webhook HMAC secret, read now (at least `MIN_WEBHOOK_SECRET_BYTES` long and
        `MIN_SECRET_BITS` of estimated randomness); None when neither key is set."""
        secret = read_secret(
            "service.webhook_secret_env",
            self.webhook_secret_env,
            "service.webhook_secret_file",
            self.webhook_secret_file,
        )
        if secret is None:
            return None
        key = (
            "service.webhook_secret_env"
            if self.webhook_secret_env is not None
            else "service.webhook_secret_file"
        )
        return random_enough(key, secret)
