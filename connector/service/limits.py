"""What bounds `serve`'s HTTP server against slow or flooding clients, below the application.

uvicorn bounds a request's header size (h11: 16 KiB) and the idle time of a kept-alive
connection, but not the time a client takes to send its headers, nor the number of open
connections (its `limit_concurrency` answers 503 only once a request's headers are in). So the
HTTP protocol here adds, per connection:

- a header deadline: a connection that has not sent a whole request's headers within
  `service.header_timeout_seconds` of opening (or of its previous answer) is closed;
- a connection cap: beyond `service.max_connections` open connections, a new one is closed as
  soon as it is accepted, before it holds anything;
- the idle time of a kept-alive connection, `service.keep_alive_seconds`, as configured (uvicorn
  takes whole seconds).

The time to send a body is bounded by the application (`app.py`: 408). Floods are logged once a
minute with a count, never per connection, and the event loop's "out of file descriptors"
error on accept is logged the same way, without a traceback.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog
from uvicorn.protocols.http.h11_impl import H11Protocol

log = structlog.get_logger(__name__)

FLOOD_LOG_SECONDS = 60.0  # a flood of one kind is logged at most this often
MAX_HEADER_BYTES = 16 * 1024  # h11's limit on a request line and headers


@dataclass(slots=True)
class RateLimitedLog:
    """Logs an event at most once per `every` seconds, with how many were not logged."""

    every: float = FLOOD_LOG_SECONDS
    clock: Callable[[], float] = time.monotonic
    _last: dict[str, float] = field(default_factory=dict)
    _suppressed: dict[str, int] = field(default_factory=dict)

    def warn(self, event: str, **fields: Any) -> None:
        """Log `event` now unless it was logged less than `every` seconds ago (then count it)."""
        now = self.clock()
        last = self._last.get(event)
        if last is not None and now - last < self.every:
            self._suppressed[event] = self._suppressed.get(event, 0) + 1
            return
        self._last[event] = now
        suppressed = self._suppressed.pop(event, 0)
        log.warning(event, **fields, **({"since_last_logged": suppressed} if suppressed else {}))


FLOODS = RateLimitedLog()


def bounded_protocol(
    max_connections: int,
    header_timeout: float,
    keep_alive: float,
    floods: RateLimitedLog = FLOODS,
) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a header deadline, a cap on open connections and the idle
    time of a kept-alive connection in (fractions of) seconds."""

    class BoundedH11Protocol(H11Protocol):
        _header_timer: asyncio.TimerHandle | None = None

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.timeout_keep_alive = keep_alive  # type: ignore[assignment]

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            if len(self.connections) >= max_connections:
                floods.warn(
                    "service.too_many_connections",
                    max_connections=max_connections,
                    action="new connections are closed at once",
                )
                transport.abort()
                return
            super().connection_made(transport)
            self._await_headers()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_waiting()
            if self.transport is None:  # closed at accept: never counted
                return
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.cycle is not None and not self.cycle.response_complete:
                self._stop_waiting()  # a request's headers are in

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing():
                self._await_headers()  # the next request's headers, on a kept-alive connection

        def _await_headers(self) -> None:
            self._stop_waiting()
            self._header_timer = self.loop.call_later(header_timeout, self._headers_too_slow)

        def _stop_waiting(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if self.cycle is not None and not self.cycle.response_complete:
                return
            if not self.transport.is_closing():
                floods.warn("service.slow_headers", header_timeout_seconds=header_timeout)
                self.transport.close()

    return BoundedH11Protocol


def quiet_accept_errors(loop: asyncio.AbstractEventLoop, floods: RateLimitedLog = FLOODS) -> None:
    """Log the event loop's failures to accept a connection (out of file descriptors) once a
    minute without a traceback; every other loop error as before."""
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", ""))
        if message.startswith("socket.accept() out of system resource"):
            exc = context.get("exception")
            floods.warn("service.accept_failed", reason=str(exc) if exc else message)
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)


class RateLimitedFilter(logging.Filter):
    """A logging filter that lets one record per message through per minute (uvicorn's own
    warnings, e.g. one per invalid request)."""

    def __init__(self, every: float = FLOOD_LOG_SECONDS) -> None:
        super().__init__()
        self.every = every
        self._last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether to log this record: its message was not logged in the last minute."""
        if record.levelno < logging.WARNING:
            return True
        key = f"{record.name}:{record.msg}"
        now = time.monotonic()
        last = self._last.get(key)
        if last is not None and now - last < self.every:
            return False
        self._last[key] = now
        return True
