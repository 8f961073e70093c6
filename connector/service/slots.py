"""The schedule slots one `serve` replica holds: claimed for a lease, renewed until their full
sync has ended, then marked done; handed back at shutdown (see `state.inbox`).

A slot whose replica died before its sync ended (its lease run out, not done) is abandoned: any
replica may claim it and run it. A slot done is never claimed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

import structlog

from connector.nationalid import mask_national_ids
from connector.service.inbox import Inbox

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class ScheduleSlots:
    """This replica's claims on schedule slots, and the task renewing their lease."""

    inbox: Inbox
    replica: str
    lease: float  # seconds (`service.event_lease_seconds`)
    _held: set[str] = field(default_factory=set)
    _keeper: asyncio.Task[None] | None = None

    def held(self) -> set[str]:
        """The slots claimed whose sync has not ended yet."""
        return set(self._held)

    async def claim(self, name: str) -> bool:
        """Whether this replica runs the scheduled sync of slot `name` (False: another one
        does, it is done, or the store cannot say: the sync could not run now either)."""
        try:
            claimed = await self.inbox.claim_slot(name, self.replica, time.time(), self.lease)
        except Exception as exc:
            log.warning("schedule.slot_not_claimed", slot=name, error=mask_national_ids(str(exc)))
            return False
        if not claimed:
            log.info("schedule.slot_taken", slot=name, reason="another replica runs it")
            return False
        self._held.add(name)
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.create_task(self._keep(), name="slot-lease")
        return True

    async def take_abandoned(self) -> list[str]:
        """Claim the slots whose replica died before their sync ended (or handed them back);
        the ones this replica now runs."""
        try:
            abandoned = await self.inbox.abandoned_slots(time.time())
        except Exception as exc:
            log.warning("schedule.slots_not_read", error=mask_national_ids(str(exc)))
            return []
        taken = []
        for name in abandoned:
            if await self.claim(name):
                log.info("schedule.slot_taken_over", slot=name)
                taken.append(name)
        return taken

    async def ended(self, slots: set[str]) -> None:
        """The full sync of these slots has ended (ran, failed, or was not needed): done."""
        self._held -= slots
        if not slots:
            return
        try:
            await self.inbox.finish_slots(slots, self.replica)
        except Exception as exc:  # their lease runs out: another replica runs them again
            log.warning("schedule.slot_not_finished", error=mask_national_ids(str(exc)))

    async def hand_back(self) -> None:
        """At shutdown: the slots whose sync did not end, for another replica to run now."""
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
        slots, self._held = self._held, set()
        if slots:
            with contextlib.suppress(Exception):  # else their lease runs out by itself
                await self.inbox.release_slots(slots, self.replica)

    async def _keep(self) -> None:
        """Renew the lease of the slots held, until none is."""
        while self._held:
            await asyncio.sleep(self.lease / 3)
            try:
                await self.inbox.renew_slots(self._held, self.replica, time.time() + self.lease)
            except Exception as exc:
                log.warning("schedule.lease_not_renewed", error=mask_national_ids(str(exc)))
