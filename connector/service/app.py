"""The `serve` web application (Starlette): the HR webhook, health, readiness, metrics, OpenAPI.

POST /hr/events     an HR event, signed (see `webhook.py`): 202 stored, 200 duplicate,
                    400 bad body, 401 bad or stale signature, 409 event id reused for
                    another event, 413 body too large, 408 body too slow, 503 too many
                    webhook requests at once, 404 no webhook secret configured
GET  /healthz       200 while the process and its worker run
GET  /readyz        200 when the state store answers, syncs are not failing for longer
                    than `service.ready_max_failed_age_seconds` and the sync in progress
                    does not run far longer than usual; else 503 with the reasons
GET  /metrics       Prometheus text exposition
GET  /openapi.json  the OpenAPI 3.1 description of all of this
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import structlog
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector import __version__
from connector.config import Settings
from connector.errors import ConnectorError
from connector.keys import Keyring
from connector.service import webhook
from connector.service.inbox import Inbox
from connector.service.limits import RateLimitedLog, quiet_accept_errors
from connector.service.metrics import Metrics
from connector.service.openapi import WEBHOOK_PATH, openapi_document
from connector.service.runner import SyncRunner
from connector.service.webhook import Refused

log = structlog.get_logger(__name__)

READY_PING_SECONDS = 5.0


class Service:
    """Everything `serve` runs: inbox, runner, metrics; and the HTTP handlers over them."""

    def __init__(
        self,
        settings: Settings,
        *,
        webhook_secret: str | None,
        clock: Callable[[], float] = time.time,
        process_metrics: bool = True,
    ) -> None:
        self.settings = settings
        self._secret = webhook_secret
        self._clock = clock
        self._keyring = Keyring(settings.state_secret())  # for the digest of an event's record
        self.metrics = Metrics(clock, process=process_metrics)
        self.inbox = Inbox(settings.state.location)
        self.runner = SyncRunner(settings=settings, inbox=self.inbox, metrics=self.metrics)
        self.metrics.sync_running_seconds.set_function(self.runner.running_for)
        self.metrics.sync_overdue.set_function(lambda: float(self.runner.overdue() is not None))
        self._webhook_requests = 0  # in progress
        self._floods = RateLimitedLog()

    # --- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Open the inbox and start the worker (pending events are processed first)."""
        quiet_accept_errors(asyncio.get_running_loop())
        await self.inbox.open()
        await self.runner.start()
        service = self.settings.service
        log.info(
            "service.started",
            listen=service.listen,
            webhook=self._secret is not None,
            schedule=service.schedule or "",
            midnight_sync=service.midnight_sync,
            version=__version__,
        )
        if self._secret is None:
            log.warning(
                "service.webhook_disabled",
                reason="no service.webhook_secret_env or service.webhook_secret_file configured",
            )

    async def stop(self) -> None:
        """Stop the worker (letting the sync in progress finish or interrupting it), close."""
        log.info("service.stopping")
        await self.runner.stop()
        await self.inbox.close()
        log.info("service.stopped")

    # --- HTTP --------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        """The application's routes."""
        return [
            Route(WEBHOOK_PATH, self.hr_event, methods=["POST"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.metrics_page, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
        ]

    async def hr_event(self, request: Request) -> Response:
        """POST /hr/events: authenticate, validate, store durably, then answer (at most
        `service.webhook_concurrency` at once: more are answered 503 before their body)."""
        service = self.settings.service
        if self._webhook_requests >= service.webhook_concurrency:
            self.metrics.webhook_requests.labels("busy").inc()
            self._floods.warn("webhook.busy", webhook_concurrency=service.webhook_concurrency)
            return _error(503, "busy", "too many webhook requests at once; send it again")
        self._webhook_requests += 1
        try:
            return await self._hr_event(request)
        finally:
            self._webhook_requests -= 1

    async def _hr_event(self, request: Request) -> Response:
        try:
            if self._secret is None:
                raise Refused(404, "disabled", "the HR webhook is not configured")
            service = self.settings.service
            body = await _read_body(request, service.max_body_bytes, service.body_timeout_seconds)
            webhook.verify(
                self._secret,
                request.headers.get(webhook.TIMESTAMP_HEADER),
                request.headers.get(webhook.SIGNATURE_HEADER),
                body,
                self._clock(),
            )
            event = webhook.parse_event(body)
        except Refused as refused:
            self.metrics.webhook_requests.labels(refused.error).inc()
            if refused.status == 408:
                self._floods.warn("webhook.refused", status=408, reason=refused.reason)
            else:
                log.warning("webhook.refused", status=refused.status, reason=refused.reason)
            return _error(refused.status, refused.error, refused.reason)
        with structlog.contextvars.bound_contextvars(event_id=event.event_id):
            received_at = dt.datetime.fromtimestamp(self._clock(), dt.UTC)
            stored = event.to_inbox(received_at.isoformat(timespec="milliseconds"), self._keyring)
            try:
                new = await self.inbox.add(stored)
                existing = None if new else await self.inbox.get(event.event_id)
            except (ConnectorError, sqlite3.Error, OSError, RuntimeError) as exc:
                self.metrics.webhook_requests.labels("unavailable").inc()
                log.error("webhook.not_stored", error=str(exc))
                return _error(503, "unavailable", "the event could not be stored; send it again")
            if not new:
                same = existing is not None and webhook.same_event(existing, stored)
                outcome = "duplicate" if same else "conflict"
                self.metrics.webhook_requests.labels(outcome).inc()
                log.info(f"webhook.{outcome}")
                if not same:
                    return _error(409, "conflict", "this event_id was used for another event")
                return JSONResponse({"status": "duplicate", "event_id": event.event_id}, 200)
            self.metrics.webhook_requests.labels("accepted").inc()
            self.metrics.inbox_pending.inc()
            log.info("webhook.accepted", type=event.type, employee=str(stored.employee))
            self.runner.notify()
            return JSONResponse({"status": "accepted", "event_id": event.event_id}, 202)

    async def healthz(self, request: Request) -> Response:
        """GET /healthz: the process answers and its worker runs."""
        if not self.runner.alive():
            return JSONResponse({"status": "unhealthy", "reason": "the sync worker stopped"}, 503)
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """GET /readyz: the state store answers; syncs do not keep failing."""
        problems = await self.replica_problems() + self.sync_problems()
        if problems:
            return JSONResponse({"status": "not_ready", "reasons": problems}, 503)
        return JSONResponse({"status": "ready"})

    async def replica_problems(self) -> list[str]:
        """What keeps this process from serving at all: the state store does not answer, the
        worker stopped."""
        problems = []
        try:
            await asyncio.wait_for(self.inbox.ping(), READY_PING_SECONDS)
        except Exception:
            problems.append("the state store does not answer")
        if not self.runner.alive():
            problems.append("the sync worker stopped")
        return problems

    def sync_problems(self) -> list[str]:
        """What goes wrong with the syncs: failing for longer than allowed, or overdue."""
        problems = []
        health = self.runner.health
        max_age = self.settings.service.ready_max_failed_age_seconds
        if health.failing_since is not None and self._clock() - health.failing_since >= max_age:
            since = dt.datetime.fromtimestamp(health.failing_since, dt.UTC)
            problems.append(
                f"syncs have failed since {since.isoformat(timespec='seconds')}: "
                f"{health.last_error}"
            )
        overdue = self.runner.overdue()
        if overdue is not None:
            problems.append(overdue)
        return problems

    async def metrics_page(self, request: Request) -> Response:
        """GET /metrics: the Prometheus exposition."""
        return Response(self.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def openapi(self, request: Request) -> Response:
        """GET /openapi.json: the OpenAPI description."""
        return JSONResponse(openapi_document(self.settings.service.max_body_bytes))


def create_app(settings: Settings, *, webhook_secret: str | None) -> Starlette:
    """The ASGI application of `serve`: the service starts and stops with it."""
    service = Service(settings, webhook_secret=webhook_secret)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = Starlette(routes=service.routes(), lifespan=lifespan)
    app.state.service = service
    return app


async def _read_body(request: Request, limit: int, timeout: float) -> bytes:
    """The request body, refused (413) once it is larger than `limit` bytes, or (408) when it
    is not all in within `timeout` seconds."""
    length = request.headers.get("content-length")
    if length is not None:
        if not length.strip().isdigit():
            raise webhook.bad_request("Content-Length is not a number")
        if int(length) > limit:
            raise webhook.too_large(limit)
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise webhook.too_large(limit)
                chunks.append(chunk)
    except ClientDisconnect:
        raise webhook.bad_request("the client went away before the body was sent") from None
    except TimeoutError:
        raise webhook.too_slow(timeout) from None
    return b"".join(chunks)


# Answers given before the whole body was read: the connection cannot serve another request.
_CLOSING = frozenset({408, 413, 503})


def _error(status: int, error: str, reason: str) -> JSONResponse:
    headers = {"Connection": "close"} if status in _CLOSING else None
    return JSONResponse({"error": error, "reason": reason}, status, headers=headers)
