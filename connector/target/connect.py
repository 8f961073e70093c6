"""Connecting to the configured target: the authenticated httpx2 client and its discovery."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx2

from connector.config import Settings
from connector.target.auth import OAUTH_METHODS, oauth2_client, static_auth
from connector.target.client import TargetClient
from connector.target.discovery import CapabilityOverrides
from connector.target.retry import RetryPolicy
from connector.target.transport import RetryingTransport

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


def retry_policy(settings: Settings) -> RetryPolicy:
    """The retry policy from `[target.retry]`."""
    r = settings.target.retry
    return RetryPolicy(
        attempts=r.attempts,
        max_seconds=r.max_seconds,
        initial_wait=r.initial_wait_seconds,
        max_wait=r.max_wait_seconds,
    )


def run_policy(settings: Settings) -> RetryPolicy:
    """The retry policy of a run that starts now: `[target.retry]`, and the run's deadline
    `target.run_max_seconds` from now."""
    return retry_policy(settings).with_run_deadline(settings.target.run_max_seconds)


def target_key(settings: Settings) -> str:
    """The name under which the state store keeps what it learned about the target."""
    return str(settings.target.base_url).rstrip("/")


def http_client(
    settings: Settings, event_hooks: EventHooks | None = None, retry: RetryPolicy | None = None
) -> httpx2.AsyncClient:
    """An httpx2 client for the target with the configured authentication.

    OAuth2 methods get an `OAuth2TargetClient` (authlib: token on first use, renewed before
    expiry and once on a 401); "bearer" and "none" a plain client whose 401s are AuthErrors.
    TLS settings (verify_tls, ca_bundle) apply to the token endpoint too. Reads (GET and
    `POST .search`) are retried where they fail, by the transport; writes are not.
    """
    target = settings.target
    auth = target.auth
    options: dict[str, Any] = {
        "base_url": str(target.base_url).rstrip("/"),
        "headers": {"Accept": "application/scim+json"},
        "timeout": target.timeout_seconds,
        "transport": RetryingTransport(
            httpx2.AsyncHTTPTransport(
                verify=_verify(settings),
                limits=httpx2.Limits(max_connections=max(target.concurrency, 1) * 2),
            ),
            retry or RetryPolicy(),
            attempt_seconds=target.timeout_seconds,
        ),
        "event_hooks": event_hooks,
    }
    if auth.method in OAUTH_METHODS:
        return oauth2_client(auth, **options)
    return httpx2.AsyncClient(auth=static_auth(auth), **options)


@asynccontextmanager
async def connect(
    settings: Settings,
    event_hooks: EventHooks | None = None,
    retry: RetryPolicy | None = None,
) -> AsyncIterator[TargetClient]:
    """An open, discovered TargetClient for the configured target (discovery retried)."""
    retry = retry or RetryPolicy()
    async with http_client(settings, event_hooks, retry) as http:
        client = TargetClient(http)
        corrections = overrides(settings)
        await retry.call("discover", lambda: client.discover(corrections))
        yield client
