"""Connecting to the configured target: the authenticated httpx2 client and its discovery."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx2

from connector.config import Settings
from connector.errors import ConfigError
from connector.target.client import CapabilityOverrides, TargetClient

EventHooks = Mapping[str, list[Callable[..., Any]]]
"""httpx2 event hooks (`{"request": [...], "response": [...]}`), e.g. to observe requests."""


def _verify(settings: Settings) -> ssl.SSLContext | bool:
    target = settings.target
    if target.ca_bundle is not None:
        return ssl.create_default_context(cafile=str(target.ca_bundle))
    return target.verify_tls


def overrides(settings: Settings) -> CapabilityOverrides:
    """Capability corrections from `[target.capabilities]`."""
    caps = settings.target.capabilities
    return CapabilityOverrides(
        patch=caps.patch,
        bulk=caps.bulk,
        etag=caps.etag,
        filter=caps.filter,
        search=caps.search,
        acmidm_extension=caps.acmidm_extension,
    )


def http_client(settings: Settings, event_hooks: EventHooks | None = None) -> httpx2.AsyncClient:
    """An httpx2 client for the target with the configured authentication."""
    target = settings.target
    auth = target.auth
    headers = {"Accept": "application/scim+json"}
    if auth.method == "bearer":
        headers["Authorization"] = f"Bearer {auth.resolve_token()}"
    elif auth.method != "none":
        raise ConfigError(
            "target.auth.method", f"{auth.method!r} is not supported yet by this version"
        )
    return httpx2.AsyncClient(
        base_url=str(target.base_url).rstrip("/"),
        headers=headers,
        timeout=target.timeout_seconds,
        verify=_verify(settings),
        limits=httpx2.Limits(max_connections=max(target.concurrency, 1) * 2),
        event_hooks=event_hooks,
    )


@asynccontextmanager
async def connect(
    settings: Settings, event_hooks: EventHooks | None = None
) -> AsyncIterator[TargetClient]:
    """An open, discovered TargetClient for the configured target."""
    async with http_client(settings, event_hooks) as http:
        client = TargetClient(http)
        await client.discover(overrides(settings))
        yield client
