"""Retries for target calls (tenacity): 429/503 honour Retry-After; other 5xx and transport
errors back off exponentially with jitter; attempts and total time are capped (a wait that
would end past `max_seconds` is not begun: the call fails then instead, and a call, attempts
and waits together, never runs past `max_seconds`). A policy may carry the deadline of the run
it serves: past it, no call is begun, and no call runs past it."""

from __future__ import annotations

import asyncio
import time
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
    # The run's deadline (time.monotonic()) and its length in seconds, to say so; None: none.
    deadline: float | None = None
    run_seconds: float | None = None

    def with_run_deadline(self, seconds: float) -> RetryPolicy:
        """This policy, bounded by a run deadline `seconds` from now."""
        self.deadline = time.monotonic() + seconds
        self.run_seconds = seconds
        return self

    def seconds_left(self) -> float | None:
        """Seconds until the run's deadline (0 once passed); None without one."""
        if self.deadline is None:
            return None
        return max(self.deadline - time.monotonic(), 0.0)

    def deadline_passed(self) -> bool:
        """Whether the run's deadline has passed."""
        left = self.seconds_left()
        return left is not None and left <= 0

    def past_deadline(self, what: str) -> TargetUnavailable:
        """The error of a call not begun (or cut short) because the run passed its deadline."""
        return TargetUnavailable(
            what,
            f"not done: the run passed its deadline (target.run_max_seconds = "
            f"{self.run_seconds:g})",
        )

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

        limit = self.max_seconds
        left = self.seconds_left()
        if left is not None:
            if left <= 0:
                raise self.past_deadline(what)
            limit = min(limit, left)
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TargetUnavailable),
            # Never sleep past max_seconds: stop before a wait that would end after it.
            stop=stop_after_attempt(self.attempts) | stop_before_delay(self.max_seconds),
            wait=self.wait,
            before_sleep=before_sleep,
            reraise=True,
            sleep=self.sleep,
        )
        try:
            async with asyncio.timeout(limit):
                return await retrying(attempt)
        except TimeoutError:
            if self.deadline_passed():
                raise self.past_deadline(what) from None
            raise TargetUnavailable(
                what, f"no answer within target.retry.max_seconds = {self.max_seconds:g}"
            ) from None
