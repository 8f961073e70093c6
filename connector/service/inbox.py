"""The webhook inbox, for the event loop: the state store's inbox methods on a thread of their own.

SQLite calls block, and a connection belongs to the thread that made it, so the inbox owns one
connection (opened with `durable=True`: an event is on disk before it is answered) used by one
worker thread; the event loop awaits the calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from connector.state import InboxEvent, Location, StateStore

T = TypeVar("T")


class Inbox:
    """Async access to the inbox of one state store."""

    def __init__(self, path: Location) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbox")
        self._store: StateStore | None = None

    async def open(self) -> None:
        """Open the state store (creating or migrating it); raises StateError."""

        def open_store() -> None:
            self._store = StateStore.open(self._path, durable=True)

        await self._call(open_store)

    async def close(self) -> None:
        """Close the connection and stop the thread."""

        def close_store() -> None:
            if self._store is not None:
                self._store.close()
                self._store = None

        try:
            await self._call(close_store)
        finally:
            self._executor.shutdown(wait=False)

    def _in_thread(self, action: Callable[[StateStore], T]) -> Callable[[], T]:
        def run() -> T:
            if self._store is None:
                raise RuntimeError("the inbox is not open")
            return action(self._store)

        return run

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

    async def retry_later(self, event_ids: Iterable[str], error: str) -> None:
        """Count a failed attempt; the events stay pending."""
        ids = list(event_ids)
        await self._call(self._in_thread(lambda store: store.retry_events(ids, error)))

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
