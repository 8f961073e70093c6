"""`scim-connector serve`: the service's web application on uvicorn, logging as structlog does.

uvicorn handles SIGTERM and SIGINT: it stops accepting connections, lets the requests in
progress finish, then shuts the application down (the sync in progress finishes or is
interrupted after `service.shutdown_grace_seconds`; see `runner.py`).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import structlog
import uvicorn
from starlette.applications import Starlette

from connector.config import Settings
from connector.errors import ConfigError
from connector.logs import configure_logging, mask_processor
from connector.nationalid import mask_national_ids
from connector.service.app import create_app
from connector.service.front import create_organisations_app
from connector.service.limits import MAX_HEADER_BYTES, RateLimitedFilter, bounded_protocol
from connector.service.organisations import (
    Organisation,
    check_stores_apart,
    identify_store,
    sharing_a_secret,
)
from connector.state import StateError, StateLock, StateStore, service_lock_path

EXIT_OK, EXIT_STARTUP_FAILED = 0, 2
GRACEFUL_REQUEST_SECONDS = 10  # how long requests in progress may take at shutdown


def configure_service_logging(settings: Settings) -> None:
    """structlog for `serve`: level `info` unless configured, JSON (console on a terminal),
    and uvicorn's own log records rendered the same way (no access log)."""
    logging_settings = settings.logging
    level = logging_settings.level if "level" in logging_settings.model_fields_set else "info"
    configure_logging(level, logging_settings.format)
    use_json = logging_settings.format == "json" or (
        logging_settings.format == "auto" and not sys.stderr.isatty()
    )
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_logger_name,
                structlog.stdlib.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                mask_processor,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(logging.getLevelNamesMapping()[level.upper()])
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True
    # uvicorn warns once per bad request: a flood of them is logged once a minute.
    uvicorn_errors = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, RateLimitedFilter) for f in uvicorn_errors.filters):
        uvicorn_errors.addFilter(RateLimitedFilter())
    # One line per HTTP request to the target, URLs with e-mail addresses in filters: debug only.
    for name in ("httpx", "httpx2", "httpcore", "httpcore2"):
        logging.getLogger(name).setLevel(max(root.level, logging.WARNING))


def service_lock(settings: Settings) -> AbstractContextManager[object]:
    """The lock `serve` holds for its whole life on a SQLite store, so that a second service on
    it refuses to start (LockedError on entering) instead of running every sync twice. On
    PostgreSQL none: replicas share the store (claimed events, claimed schedule slots, the
    advisory lock per sync)."""
    if settings.state.url is not None:
        return contextlib.nullcontext()
    store = settings.state.path
    return StateLock(
        service_lock_path(store),
        busy=f"another `scim-connector serve` is running on the state store {store} "
        f"(it holds {service_lock_path(store)}): one service per state store",
    )


def check_startup(settings: Settings) -> str | None:
    """What `serve` needs before it listens: the state store (created or migrated here) and the
    webhook secret (None: the webhook is off). Raises ConfigError or StateError."""
    StateStore.open(settings.state.location).close()
    settings.state_secret()
    return settings.service.resolve_webhook_secret()


@dataclass(frozen=True, slots=True)
class OrganisationsStartup:
    """What `serve` found of each organisation before it listens."""

    webhook_secrets: dict[str, str | None]
    store_ids: dict[str, str]  # the state stores opened, by their own names
    unavailable: dict[str, str]  # the organisations whose store could not be opened: why
    shared_webhook_secrets: list[tuple[str, str]]
    shared_state_secrets: list[tuple[str, str]]


def check_organisations_startup(organisations: list[Organisation]) -> OrganisationsStartup:
    """`check_startup` for several organisations: ConfigError naming the file for a bad
    secret or two organisations on one state store; a store that cannot be opened is not an
    error here (that organisation is started once it answers, the others go on)."""
    webhook_secrets: dict[str, str | None] = {}
    state_secrets: dict[str, str | None] = {}
    store_ids: dict[str, str] = {}
    unavailable: dict[str, str] = {}
    for organisation in organisations:
        name, settings = organisation.name, organisation.settings
        with naming(organisation.config_file):
            webhook_secrets[name] = settings.service.resolve_webhook_secret()
            state_secrets[name] = settings.state_secret().hex()
            try:
                store_ids[name] = identify_store(settings)
            except StateError as exc:
                unavailable[name] = mask_national_ids(str(exc))
    check_stores_apart(store_ids, {o.name: o.config_file for o in organisations})
    return OrganisationsStartup(
        webhook_secrets,
        store_ids,
        unavailable,
        sharing_a_secret(webhook_secrets),
        sharing_a_secret(state_secrets),
    )


@contextlib.contextmanager
def naming(config_file: Path) -> Iterator[None]:
    """A configuration error of one organisation, naming its file."""
    try:
        yield
    except ConfigError as exc:
        if exc.file is not None:
            raise
        raise ConfigError(exc.key, exc.message, file=str(config_file)) from None


def uvicorn_config(settings: Settings, app: Starlette) -> uvicorn.Config:
    """uvicorn's configuration for `serve`: h11 with the `[service]` limits (see `limits.py`),
    no access log, no server header."""
    service = settings.service
    return uvicorn.Config(
        app,
        http=bounded_protocol(
            service.max_connections, service.header_timeout_seconds, service.keep_alive_seconds
        ),
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        timeout_keep_alive=max(1, round(service.keep_alive_seconds)),  # the protocol's is exact
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_REQUEST_SECONDS,
    )


def run_service(settings: Settings, webhook_secret: str | None) -> int:
    """Serve until SIGTERM or SIGINT; the exit code (2 when the service could not start)."""
    return _serve(settings, create_app(settings, webhook_secret=webhook_secret))


def run_organisations(organisations: list[Organisation], startup: OrganisationsStartup) -> int:
    """Serve several organisations until SIGTERM or SIGINT; the exit code."""
    app = create_organisations_app(
        organisations, startup.webhook_secrets, startup.store_ids, startup.unavailable
    )
    return _serve(organisations[0].settings, app)  # they agree on the shared keys


def organisations_lock(organisations: list[Organisation]) -> AbstractContextManager[object]:
    """`service_lock` of every organisation, held together."""
    stack = contextlib.ExitStack()
    try:
        for organisation in organisations:
            stack.enter_context(service_lock(organisation.settings))
    except BaseException:
        stack.close()
        raise
    return stack


def _serve(settings: Settings, app: Starlette) -> int:
    """Serve `app` on the address and with the limits of `settings` until SIGTERM or SIGINT."""
    host, port = settings.service.listen_host_port()
    config = uvicorn_config(settings, app)
    config.host, config.port = host, port
    server = uvicorn.Server(config)
    # uvicorn raises the signal that stopped it again once it is done, with the handler it found
    # in place: with this one, a graceful stop ends the command with exit code 0.
    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        server.run()
    except SystemExit:
        return EXIT_STARTUP_FAILED if not server.started else EXIT_OK
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return EXIT_OK if server.started else EXIT_STARTUP_FAILED


def _stopped(signum: int, frame: FrameType | None) -> None:
    """The signal that stopped uvicorn, raised again after the graceful shutdown: done."""
