"""The webhook inbox, for the event loop: the state store's inbox methods on a thread of their own.

SQLite calls block, and a connection belongs to the thread that made it, so the inbox owns one
connection (opened with `durable=True`: an event is on disk before it is answered) used by one
worker thread; the event loop awaits the calls.

A call that fails on the database (a PostgreSQL server restarted, a network gone) drops the
connection; the next call opens a new one, so the service recovers by itself once the database
answers again (and `/readyz` says not ready meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from connector.state import InboxEvent, Location, StateError, StateStore

T = TypeVar("T")


class Inbox:
    """Async access to the inbox of one state store."""

    def __init__(self, path: Location) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbox")
        self._store: StateStore | None = None
        self._open = False  # between open() and close(): a lost connection is made again

    async def open(self) -> None:
        """Open the state store (creating or migrating it); raises StateError."""

        def open_store() -> None:
            self._store = StateStore.open(self._path, durable=True)
            self._open = True

        await self._call(open_store)

    async def close(self) -> None:
        """Close the connection and stop the thread."""

        def close_store() -> None:
            self._open = False
            if self._store is not None:
                self._store.close()
                self._store = None

        try:
            await self._call(close_store)
        finally:
            self._executor.shutdown(wait=False)

    def _in_thread(self, action: Callable[[StateStore], T]) -> Callable[[], T]:
        def run() -> T:
            if self._store is None and self._open:
                self._store = StateStore.open(self._path, durable=True)  # the lost one, again
            store = self._store
            if store is None:
                raise RuntimeError("the inbox is not open")
            try:
                return action(store)
            except StateError:
                self._drop(store)
                raise

        return run

    def _drop(self, store: StateStore) -> None:
        """Forget a connection that failed (the next call opens a new one)."""
        self._store = None
        with contextlib.suppress(Exception):  # a broken connection may not close; it is gone
            store.close()

    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def add(self, event: InboxEvent) -> bool:
        """Store a new event durably; False when its id is already in the inbox."""
        return await self._call(self._in_thread(lambda store: store.add_event(event)))

    async def get(self, event_id: str) -> InboxEvent | None:
        """One event by id."""
        return await self._call(self._in_thread(lambda store: store.event(event_id)))

    async def pending(self, limit: int = 100) -> list[InboxEvent]:
        """Unprocessed events, oldest first."""
        return await self._call(self._in_thread(lambda store: store.pending_events(limit)))

    async def pending_count(self) -> int:
        """How many events wait."""
        return await self._call(self._in_thread(lambda store: store.pending_event_count()))

    async def finish(self, event_ids: Iterable[str], outcome: str, run_id: str | None) -> None:
        """Mark events processed."""
        ids = list(event_ids)
        await self._call(self._in_thread(lambda store: store.finish_events(ids, outcome, run_id)))

    async def claim(self, token: str, now: float, lease: float, limit: int) -> list[InboxEvent]:
        """Claim the next employee's pending events for `lease` seconds (see `state.inbox`)."""
        return await self._call(
            self._in_thread(lambda store: store.claim_events(token, now, lease, limit))
        )

    async def renew(self, token: str, until: float) -> int:
        """Extend a claim's lease; how many of its events are still claimed."""
        return await self._call(self._in_thread(lambda store: store.renew_claim(token, until)))

    async def release(self, token: str | None = None) -> None:
        """Release a claim's pending events (None: every claim) for anyone to take at once."""
        await self._call(self._in_thread(lambda store: store.release_claims(token)))

    async def claim_slot(self, slot: str, replica: str, now: float, lease: float) -> bool:
        """Claim a scheduled sync's slot for `lease` seconds; False when another replica holds
        it, or it is done."""
        return await self._call(
            self._in_thread(lambda store: store.claim_schedule_slot(slot, replica, now, lease))
        )

    async def abandoned_slots(self, now: float) -> list[str]:
        """The slots whose replica died (or handed them back) before their sync ended."""
        return await self._call(self._in_thread(lambda store: store.abandoned_schedule_slots(now)))

    async def renew_slots(self, slots: Iterable[str], replica: str, until: float) -> int:
        """Extend the lease of this replica's slots; how many it still holds."""
        names = list(slots)
        return await self._call(
            self._in_thread(lambda store: store.renew_schedule_slots(names, replica, until))
        )

    async def finish_slots(self, slots: Iterable[str], replica: str) -> None:
        """Mark this replica's slots done (their sync ended)."""
        names = list(slots)
        await self._call(self._in_thread(lambda store: store.finish_schedule_slots(names, replica)))

    async def release_slots(self, slots: Iterable[str], replica: str) -> None:
        """Hand this replica's slots back for another replica to run."""
        names = list(slots)
        await self._call(
            self._in_thread(lambda store: store.release_schedule_slots(names, replica))
        )

    async def retry_later(
        self, event_ids: Iterable[str], error: str, not_before: float | None = None
    ) -> None:
        """Count a failed attempt; the events stay pending, not retried before `not_before`."""
        ids = list(event_ids)
        await self._call(self._in_thread(lambda store: store.retry_events(ids, error, not_before)))

    async def ping(self) -> None:
        """Raise unless the state store answers."""
        await self._call(self._in_thread(lambda store: store.ping()))

    async def full_sync_ran_on(self, day: str) -> bool:
        """Whether a full sync as of `day` (ISO date) ran to its end, by anyone."""

        def ran(store: StateStore) -> bool:
            return any(
                run.command == "sync" and run.as_of == day and not run.dry_run
                for run in store.runs(limit=100)
                if run.status in ("done", "failed")
            )

        return await self._call(self._in_thread(ran))

    async def interrupt_run(self, run_id: str) -> None:
        """Record that a run was stopped part-way."""
        await self._call(self._in_thread(lambda store: store.interrupt_run(run_id)))
