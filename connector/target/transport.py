"""An httpx2 transport that bounds every request and retries reads (GET, `POST .search`).

Every attempt, read or write, must have its whole answer (headers and body) within the
attempt time (`target.timeout_seconds`): httpx2's own time-outs are per network read, so a
target that trickles one byte at a time would never trip them. No request is begun once the
run's deadline (`RetryPolicy.deadline`) has passed, and none runs past it.

Reads are safe to repeat, so they are retried right where they fail, one request at a time;
discovery and lookups thus survive a flaky target without starting over. Writes are never
retried here: a write whose answer was lost may have happened, so `apply` decides (it looks the
person up before trying a create again).
"""

from __future__ import annotations

import asyncio
import json

import httpx2

from connector.target.errors import TargetUnavailable, parse_retry_after
from connector.target.retry import RetryPolicy

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# A response extension: the JSON body of a read, as the transport decoded it to check it.
DECODED = "scim_connector.json"
# A request extension: False sends a read once (an optional probe: a failure is an answer).
NO_RETRY = {"scim_connector.retry": False}


def is_read(request: httpx2.Request) -> bool:
    """True for requests that change nothing: GET, HEAD, and POST to a `.search` endpoint."""
    if request.method in ("GET", "HEAD"):
        return True
    return request.method == "POST" and request.url.path.endswith("/.search")


class RetryingTransport(httpx2.AsyncBaseTransport):
    """Retries reads on transport errors, 429, 5xx and 2xx answers that are not JSON (a
    truncated body, a proxy's HTML page), within a RetryPolicy's limits."""

    def __init__(
        self,
        inner: httpx2.AsyncBaseTransport,
        policy: RetryPolicy,
        attempt_seconds: float | None = None,
    ) -> None:
        self.inner = inner
        self.policy = policy
        self.attempt_seconds = attempt_seconds

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        """Send `request` within the attempt time; if it is a read, retry it while the target
        is unavailable."""
        if not is_read(request) or request.extensions.get("scim_connector.retry") is False:
            return await self._bounded(request)

        async def attempt() -> httpx2.Response:
            try:
                response = await self._bounded(request)
            except httpx2.TransportError as exc:
                raise TargetUnavailable(request.method, f"{type(exc).__name__}: {exc}") from None
            if response.status_code in RETRY_STATUSES:
                raise _Unavailable(response)
            if 200 <= response.status_code < 300 and not _decoded(response):
                raise _Unavailable(
                    response, "a 2xx answer that is not JSON (garbled, or a proxy's page)"
                )
            return response

        try:
            return await self.policy.call(f"{request.method} {request.url.path}", attempt)
        except _Unavailable as exc:
            return exc.response  # out of retries: let the caller see the last answer
        except TargetUnavailable as exc:
            raise httpx2.ConnectError(str(exc), request=request) from None

    async def _bounded(self, request: httpx2.Request) -> httpx2.Response:
        """One attempt, its whole answer read within the attempt time and the run's deadline."""
        limits = [self.attempt_seconds, self.policy.seconds_left()]
        limit = min((each for each in limits if each is not None), default=None)
        if limit is not None and limit <= 0:
            raise RunDeadlinePassed(str(self.policy.past_deadline(request.method)), request=request)
        response: httpx2.Response | None = None
        try:
            async with asyncio.timeout(limit):
                response = await self.inner.handle_async_request(request)
                await response.aread()
        except TimeoutError:
            if response is not None:
                await response.aclose()
            if self.policy.deadline_passed():
                message = str(self.policy.past_deadline(request.method))
                raise RunDeadlinePassed(message, request=request) from None
            raise httpx2.ReadTimeout(
                f"no whole answer within target.timeout_seconds = {limit:g}", request=request
            ) from None
        return response

    async def aclose(self) -> None:
        """Close the wrapped transport."""
        await self.inner.aclose()


def _decoded(response: httpx2.Response) -> bool:
    """Whether a body is empty or whole JSON (a truncated or HTML answer is not); what it
    decodes to is kept with the response (`DECODED`), so that it is not decoded twice."""
    if not response.content.strip():
        return True
    try:
        response.extensions[DECODED] = json.loads(response.content)
    except ValueError:
        return False
    return True


class RunDeadlinePassed(httpx2.TransportError):
    """A request not sent, or cut short, because the run passed its deadline."""


class _Unavailable(TargetUnavailable):
    """A retryable answer, kept so that the last one can be returned when retries run out."""

    def __init__(self, response: httpx2.Response, detail: str | None = None) -> None:
        self.response = response
        super().__init__(
            "read",
            detail or f"{response.status_code}",
            status=response.status_code,
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )
