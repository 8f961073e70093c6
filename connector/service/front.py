"""The web application of a `serve` with several organisations (`organisations.py`).

Each organisation has a `Service` of its own (inbox, sync worker, scheduler, metrics), so one
organisation's failing target or bad export never delays or stops another's: their syncs run
on threads of their own. The front routes each request to its organisation:

POST /hr/events/{organisation}   that organisation's HR webhook, signed with its secret
GET  /readyz/{organisation}      that organisation's readiness, as a one-organisation service's
GET  /readyz                     200 while every organisation's state store answers and every
                                 worker runs; an organisation whose syncs fail is listed as
                                 `degraded` (taking the replica out of service would stop the
                                 webhooks of every other organisation too)
GET  /healthz, /metrics, /openapi.json
                                 over all: each organisation's series carry its name in the
                                 label `organisation`; the process's own series appear once

Logs carry the organisation too: its worker and its requests run with `organisation` bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connector.service.app import Service
from connector.service.metrics import add_process_metrics
from connector.service.openapi import WEBHOOK_PATH, openapi_document
from connector.service.organisations import Organisation

log = structlog.get_logger(__name__)

ORGANISATION_LABEL = "organisation"


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

    def __init__(self, services: Mapping[str, Service]) -> None:
        self.services = dict(services)
        self.registry = CollectorRegistry()
        add_process_metrics(self.registry)
        self.registry.register(OrganisationMetrics(self.services))

    async def start(self) -> None:
        """Start every organisation's service, its logs bound to its name."""
        for name, service in self.services.items():
            with structlog.contextvars.bound_contextvars(organisation=name):
                await service.start()  # its tasks keep the context they were created in
        log.info("service.organisations", organisations=list(self.services))

    async def stop(self) -> None:
        """Stop them all at once (each lets its sync in progress finish, within its grace)."""

        async def stop(name: str, service: Service) -> None:
            with structlog.contextvars.bound_contextvars(organisation=name):
                await service.stop()

        await asyncio.gather(*(stop(name, s) for name, s in self.services.items()))

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
        """GET /healthz: the process answers and every organisation's worker runs."""
        stopped = [name for name, service in self.services.items() if not service.runner.alive()]
        if stopped:
            reason = f"the sync worker stopped: {', '.join(stopped)}"
            return JSONResponse({"status": "unhealthy", "reason": reason}, 503)
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """GET /readyz: every organisation's state store answers and worker runs; the
        organisations whose syncs fail are listed as degraded."""
        names = list(self.services)
        found = await asyncio.gather(*(self.services[n].replica_problems() for n in names))
        organisations: dict[str, dict[str, object]] = {}
        reasons = []
        for name, replica in zip(names, found, strict=True):
            syncs = self.services[name].sync_problems()
            status = "not_ready" if replica else "degraded" if syncs else "ready"
            organisations[name] = {"status": status, "reasons": replica + syncs}
            reasons += [f"{name}: {problem}" for problem in replica]
        if reasons:
            body = {"status": "not_ready", "reasons": reasons, "organisations": organisations}
            return JSONResponse(body, 503)
        return JSONResponse({"status": "ready", "organisations": organisations})

    async def organisation_readyz(self, request: Request) -> Response:
        """GET /readyz/{organisation}: that organisation's readiness."""
        found = self._service(request)
        if isinstance(found, Response):
            return found
        return await found[1].readyz(request)

    async def metrics_page(self, request: Request) -> Response:
        """GET /metrics: every organisation's metrics, labelled, and the process's."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi(self, request: Request) -> Response:
        """GET /openapi.json: the OpenAPI description, with the organisations' names."""
        largest = max(s.settings.service.max_body_bytes for s in self.services.values())
        return JSONResponse(openapi_document(largest, list(self.services)))


def create_organisations_app(
    organisations: list[Organisation], webhook_secrets: Mapping[str, str | None]
) -> Starlette:
    """The ASGI application of a `serve` with several organisations."""
    services = {
        organisation.name: Service(
            organisation.settings,
            webhook_secret=webhook_secrets[organisation.name],
            process_metrics=False,
        )
        for organisation in organisations
    }
    front = Front(services)

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
