"""Retries of target calls never wait past `max_seconds` in all (tenacity, a fake clock)."""

from __future__ import annotations

import asyncio
import types

import pytest
import tenacity

from connector.target.errors import TargetUnavailable
from connector.target.retry import RetryPolicy


class FakeClock:
    """A monotonic clock that only the fake sleep moves."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(tenacity, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    return fake


def failing(retry_after: float | None = None) -> TargetUnavailable:
    return TargetUnavailable("GET", "busy", status=503, retry_after=retry_after)


def run(policy: RetryPolicy, error: TargetUnavailable) -> int:
    calls = 0

    async def call() -> None:
        nonlocal calls
        calls += 1
        raise error

    with pytest.raises(TargetUnavailable):
        asyncio.run(policy.call("GET /Users", call))
    return calls


def test_the_waits_of_a_failing_call_never_add_up_past_max_seconds(clock: FakeClock) -> None:
    policy = RetryPolicy(attempts=50, max_seconds=20, initial_wait=1, max_wait=8, sleep=clock.sleep)
    calls = run(policy, failing())
    assert sum(clock.slept) <= 20
    assert calls == len(clock.slept) + 1 and calls > 3


def test_a_retry_after_longer_than_what_is_left_is_not_waited_for(clock: FakeClock) -> None:
    policy = RetryPolicy(attempts=6, max_seconds=20, max_wait=30, sleep=clock.sleep)
    assert run(policy, failing(retry_after=25)) == 1
    assert clock.slept == []


def test_attempts_still_cap_a_call_that_fails_fast(clock: FakeClock) -> None:
    policy = RetryPolicy(attempts=3, max_seconds=120, initial_wait=0.01, sleep=clock.sleep)
    assert run(policy, failing()) == 3
