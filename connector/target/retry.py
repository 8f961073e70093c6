"""Retries for target calls (tenacity): 429/503 honour Retry-After; other 5xx and transport
errors back off exponentially with jitter; attempts and total time are capped (a wait that
would end past `max_seconds` is not begun: the call fails then instead)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

import structlog
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

from connector.target.errors import TargetUnavailable

T = TypeVar("T")
log = structlog.get_logger(__name__)


@dataclass(slots=True)
class RetryPolicy:
    """How hard to try one call; `retries` counts the retries made, for the report."""

    attempts: int = 6
    max_seconds: float = 120.0
    initial_wait: float = 0.5
    max_wait: float = 30.0
    retries: int = field(default=0)
    # How to wait between attempts (asyncio.sleep); a test passes one that moves a fake clock.
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def wait(self, state: RetryCallState) -> float:
        """Retry-After when the server gave one, else jittered exponential back-off."""
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TargetUnavailable) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), self.max_wait)
        backoff = wait_exponential_jitter(
            multiplier=self.initial_wait, max=self.max_wait, jitter=self.initial_wait
        )
        return float(backoff(state))

    async def call(self, what: str, fn: Callable[[], Awaitable[T]]) -> T:
        """Run `fn`, retrying TargetUnavailable within this policy's limits."""

        def before_sleep(state: RetryCallState) -> None:
            self.retries += 1
            exc = state.outcome.exception() if state.outcome else None
            log.info("target.retry", call=what, attempt=state.attempt_number, reason=str(exc))

        async def attempt() -> T:
            # tenacity would not await what a plain (non-async) callable returns.
            return await fn()

        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TargetUnavailable),
            # Never sleep past max_seconds: stop before a wait that would end after it.
            stop=stop_after_attempt(self.attempts) | stop_before_delay(self.max_seconds),
            wait=self.wait,
            before_sleep=before_sleep,
            reraise=True,
            sleep=self.sleep,
        )
        return await retrying(attempt)
