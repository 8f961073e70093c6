"""The web application of a `serve` with several organisations (`organisations.py`).

Each organisation has a `Service` of its own (inbox, sync worker, scheduler, metrics), so one
organisation's failing target or bad export never delays or stops another's: their syncs run
on threads of their own. The front routes each request to its organisation:

POST /hr/events/{organisation}   that organisation's HR webhook, signed with its secret
GET  /readyz/{organisation}      that organisation's readiness, as a one-organisation service's
GET  /readyz                     200 while at least one organisation is served: each one's
                                 status is listed (`ready`, `degraded`: its syncs fail,
                                 `not_ready`: its state store does not answer or its worker
                                 stopped); 503 when none is. Taking the replica out of service
                                 for one organisation would stop every other one's webhooks,
                                 and the other replicas share that organisation's trouble
GET  /healthz, /metrics, /openapi.json
                                 over all: each organisation's series carry its name in the
                                 label `organisation`; the process's own series appear once

Logs carry the organisation too: its worker and its requests run with `organisation` bound.

An organisation whose state store cannot be opened at start (its database down) does not keep
the others from starting: it is started once the store answers, tried again with a back-off;
meanwhile its webhook answers 503 and its readiness says why.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.errors import ConfigError
from connector.nationalid import mask_national_ids
from connector.service.app import Service
from connector.service.metrics import add_process_metrics
from connector.service.openapi import WEBHOOK_PATH, openapi_document
from connector.service.organisations import (
    Organisation,
    check_stores_apart,
    identify_store,
)
from connector.state import StateError

log = structlog.get_logger(__name__)

ORGANISATION_LABEL = "organisation"
START_RETRY_SECONDS = (5.0, 300.0)  # an organisation's start tried again: first, most


class OrganisationMetrics(Collector):
    """Every organisation's metrics as one exposition: each series labelled with its
    organisation, the series of one name from all organisations in one family."""

    def __init__(self, services: Mapping[str, Service]) -> None:
        self._services = services

    def collect(self) -> Iterator[Metric]:
        """Each metric family once, with the samples of every organisation."""
        families: dict[str, Metric] = {}
        for name, service in self._services.items():
            for family in service.metrics.registry.collect():
                merged = families.get(family.name)
                if merged is None:
                    merged = families[family.name] = Metric(
                        family.name, family.documentation, family.type, family.unit
                    )
                merged.samples.extend(
                    sample._replace(labels={ORGANISATION_LABEL: name, **sample.labels})
                    for sample in family.samples
                )
        yield from families.values()


class Front:
    """The services of several organisations behind one web application."""

    def __init__(
        self,
        services: Mapping[str, Service],
        files: Mapping[str, Path],
        store_ids: Mapping[str, str],
        unavailable: Mapping[str, str] | None = None,
        retry_seconds: tuple[float, float] = START_RETRY_SECONDS,
    ) -> None:
        self.services = dict(services)
        self._files = dict(files)  # their configuration files, for messages
        self.store_ids = dict(store_ids)  # each organisation's state store, by its own name
        self.registry = CollectorRegistry()
        add_process_metrics(self.registry)
        self.registry.register(OrganisationMetrics(self.services))
        self._retry_seconds = retry_seconds
        self._unavailable = dict(unavailable or {})  # stores that could not be opened at start
        self._waiting: dict[str, str] = {}  # organisation -> why it is not started yet
        self._starting: dict[str, asyncio.Task[None]] = {}

    async def start(self) -> None:
        """Start every organisation's service, its logs bound to its name; one whose state
        store does not answer is started later, in the background."""
        for name, service in self.services.items():
            with structlog.contextvars.bound_contextvars(organisation=name):
                if name in self._unavailable:
                    self._wait_for_store(name, service, self._unavailable[name])
                    continue
                try:
                    await service.start()  # its tasks keep the context they were created in
                except StateError as exc:
                    self._wait_for_store(name, service, mask_national_ids(str(exc)))
        log.info("service.organisations", organisations=list(self.services))

    def _wait_for_store(self, name: str, service: Service, error: str) -> None:
        self._waiting[name] = f"not started: {error}"
        log.error(
            "service.organisation_waiting", error=error, retry_in_seconds=self._retry_seconds[0]
        )
        self._starting[name] = asyncio.create_task(
            self._start_later(name, service), name=f"start-{name}"
        )

    async def _start_later(self, name: str, service: Service) -> None:
        """Try to start an organisation's service until its state store answers."""
        delay, most = self._retry_seconds
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, most)
            try:
                store_id = await asyncio.to_thread(identify_store, service.settings)
                self.store_ids[name] = store_id
                check_stores_apart(self.store_ids, self._files)
                await service.start()
            except StateError as exc:
                self._waiting[name] = f"not started: {mask_national_ids(str(exc))}"
                log.warning("service.organisation_waiting", error=self._waiting[name])
                continue
            except ConfigError as exc:  # it shares its store with another organisation
                self._waiting[name] = f"not served: {exc}"
                log.error("service.organisation_refused", error=str(exc))
                return
            del self._waiting[name]
            log.info("service.organisation_started")
            return

    async def stop(self) -> None:
        """Stop them all at once (each lets its sync in progress finish, within its grace)."""
        for task in self._starting.values():
            task.cancel()
        await asyncio.gather(*self._starting.values(), return_exceptions=True)

        async def stop(name: str, service: Service) -> None:
            with structlog.contextvars.bound_contextvars(organisation=name):
                await service.stop()

        await asyncio.gather(
            *(stop(name, s) for name, s in self.services.items() if name not in self._waiting)
        )

    def routes(self) -> list[Route]:
        """The application's routes."""
        return [
            Route(WEBHOOK_PATH + "/{organisation}", self.hr_event, methods=["POST"]),
            Route(WEBHOOK_PATH, self.no_organisation, methods=["POST"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/readyz/{organisation}", self.organisation_readyz, methods=["GET"]),
            Route("/metrics", self.metrics_page, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
        ]

    def _service(self, request: Request) -> tuple[str, Service] | Response:
        name = request.path_params["organisation"]
        service = self.services.get(name)
        if service is None:
            known = ", ".join(self.services)
            return _error(404, "unknown_organisation", f"no organisation {name!r} (known: {known})")
        return name, service

    async def hr_event(self, request: Request) -> Response:
        """POST /hr/events/{organisation}: the organisation's webhook."""
        found = self._service(request)
        if isinstance(found, Response):
            return found
        name, service = found
        with structlog.contextvars.bound_contextvars(organisation=name):
            return await service.hr_event(request)

    async def no_organisation(self, request: Request) -> Response:
        """POST /hr/events without an organisation: say where to send it."""
        return _error(
            404,
            "unknown_organisation",
            f"this service serves several organisations: POST to {WEBHOOK_PATH}/{{organisation}} "
            f"({', '.join(self.services)})",
        )

    async def healthz(self, request: Request) -> Response:
        """GET /healthz: the process answers and every organisation's worker runs (or waits to
        start: a restart would not help it)."""
        stopped = [
            name
            for name, service in self.services.items()
            if name not in self._waiting and not service.runner.alive()
        ]
        if stopped:
            reason = f"the sync worker stopped: {', '.join(stopped)}"
            return JSONResponse({"status": "unhealthy", "reason": reason}, 503)
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """GET /readyz: 200 while at least one organisation is served, each one's status
        listed; 503 when none is."""
        names = list(self.services)
        found = await asyncio.gather(*(self._replica_problems(name) for name in names))
        organisations: dict[str, dict[str, object]] = {}
        reasons = []
        for name, replica in zip(names, found, strict=True):
            syncs = self.services[name].sync_problems() if not replica else []
            status = "not_ready" if replica else "degraded" if syncs else "ready"
            organisations[name] = {"status": status, "reasons": replica + syncs}
            reasons += [f"{name}: {problem}" for problem in replica]
        if all(o["status"] == "not_ready" for o in organisations.values()):
            body = {"status": "not_ready", "reasons": reasons, "organisations": organisations}
            return JSONResponse(body, 503)
        return JSONResponse({"status": "ready", "organisations": organisations})

    async def _replica_problems(self, name: str) -> list[str]:
        waiting = self._waiting.get(name)
        if waiting is not None:
            return [waiting]
        return await self.services[name].replica_problems()

    async def organisation_readyz(self, request: Request) -> Response:
        """GET /readyz/{organisation}: that organisation's readiness."""
        found = self._service(request)
        if isinstance(found, Response):
            return found
        name, service = found
        waiting = self._waiting.get(name)
        if waiting is not None:
            return JSONResponse({"status": "not_ready", "reasons": [waiting]}, 503)
        return await service.readyz(request)

    async def metrics_page(self, request: Request) -> Response:
        """GET /metrics: every organisation's metrics, labelled, and the process's."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi(self, request: Request) -> Response:
        """GET /openapi.json: the OpenAPI description, with the organisations' names."""
        largest = max(s.settings.service.max_body_bytes for s in self.services.values())
        return JSONResponse(openapi_document(largest, list(self.services)))


def create_organisations_app(
    organisations: list[Organisation],
    webhook_secrets: Mapping[str, str | None],
    store_ids: Mapping[str, str],
    unavailable: Mapping[str, str],
) -> Starlette:
    """The ASGI application of a `serve` with several organisations (`store_ids`: the state
    stores opened at start, by organisation; the others are tried again once started)."""
    services = {
        organisation.name: Service(
            organisation.settings,
            webhook_secret=webhook_secrets[organisation.name],
            process_metrics=False,
        )
        for organisation in organisations
    }
    files = {organisation.name: organisation.config_file for organisation in organisations}
    front = Front(services, files, store_ids, unavailable)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await front.start()
        try:
            yield
        finally:
            await front.stop()

    app = Starlette(routes=front.routes(), lifespan=lifespan)
    app.state.front = front
    return app


def _error(status: int, error: str, reason: str) -> JSONResponse:
    return JSONResponse({"error": error, "reason": reason}, status)
