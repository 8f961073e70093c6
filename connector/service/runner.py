"""The service's syncs: webhook events and scheduled syncs, one at a time.

The first scheduled sync of each day (by default; `service.reconcile`) is a `sync --full`: it
reconciles against what the target holds, so drift and writes of unknown outcome are repaired
without a human. The others trust the state store (and read back what is marked uncertain).

One worker task takes the work in order: a full sync that fell due (the cron schedule or the
midnight run), then the inbox's pending events, one employee at a time (every pending event of
that employee is handled by one targeted resync). Each sync runs `jobs.sync` on a thread of its
own with its own event loop, so the web server's loop stays responsive however long the HR file
takes to read. `jobs.sync` takes the state store's file lock; when another process (a CLI
`sync`) holds it, the worker waits for it, polling, instead of failing. After each piece of
work the worker gives the garbage collector what the sync froze (`connector.collector`), so the
service's memory stays flat however many events it processes.

Several replicas may share one PostgreSQL store. A replica claims the events it processes
for `service.event_lease_seconds`, renewed while it works (`state.inbox`): an event is
processed by one replica, and when that replica dies another takes it over once the lease has
run out. Claims are released at shutdown; a SQLite store has one service only (its lock file),
so at start every claim left by a killed predecessor is released. The worker also looks at the
inbox every `INBOX_POLL_SECONDS` when idle, for events another replica received. Each scheduled
sync (and the midnight catch-up at start) runs on the one replica that claims its slot, for the
same lease, renewed until that sync has ended; the slot is then marked done (`service.slots`).
The scheduler looks for slots whose replica died before their sync ended (lease run out, not
done) at least every `SCHEDULER_TICK_SECONDS`, and takes them over; a replica that stops hands
its slots back.

On shutdown the worker takes no new work and the sync in progress may finish for
`service.shutdown_grace_seconds`; after that it is interrupted (its requests in flight are
abandoned: they are journalled as begun, and the next run redoes them) and the run is recorded
as `interrupted`. Events not processed stay in the inbox and are processed at the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import socket
import statistics
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from connector import jobs
from connector.collector import collect_after_job
from connector.config import Settings
from connector.errors import ConnectorError, LockedError
from connector.nationalid import mask_national_ids
from connector.report import Report
from connector.service.inbox import Inbox
from connector.service.limits import RateLimitedLog
from connector.service.metrics import Metrics
from connector.service.schedule import (
    Reconcile,
    Schedule,
    Trigger,
    reconciles,
    slot,
    slot_trigger,
)
from connector.service.slots import ScheduleSlots
from connector.state import InboxEvent, StateError

log = structlog.get_logger(__name__)

EVENT_BATCH = 100  # pending events read at once (grouped by employee)
MAX_EVENT_ATTEMPTS = 5  # for unexpected errors; a ConnectorError (target down...) retries forever
EVENT_RETRY_SECONDS = (5.0, 900.0)  # back-off after a failed event run: first, most
SCHEDULER_TICK_SECONDS = 60.0  # the scheduler re-reads the clock at least this often
OVERDUE_FACTOR = 5.0  # a sync running this many times its usual duration is overdue
USUAL_RUNS = 20  # the usual duration of a kind of sync: the median of its last runs
INBOX_POLL_SECONDS = 2.0  # an idle worker looks at the inbox this often (other replicas' events)


class Interrupted(Exception):
    """The sync in progress was interrupted at shutdown."""


class _Stopped(Exception):
    """The service stops: leave the work for the next start."""


Clock = Callable[[], dt.datetime]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def replica_name() -> str:
    """This process's name among the replicas of a service: host, process id, a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(slots=True)
class Health:
    """What readiness is judged on: since when syncs fail, and why."""

    failing_since: float | None = None  # unix time of the first failure of the current streak
    last_error: str | None = None
    last_success: float | None = None

    def failed(self, error: str, now: float) -> None:
        """A sync could not be carried out."""
        if self.failing_since is None:
            self.failing_since = now
        self.last_error = mask_national_ids(error)

    def succeeded(self, now: float) -> None:
        """A sync ran (whatever it found)."""
        self.failing_since = None
        self.last_error = None
        self.last_success = now


@dataclass(slots=True)
class _ThreadRun:
    """The sync running on its own thread: its loop and task, to interrupt it."""

    loop: asyncio.AbstractEventLoop | None = None
    task: asyncio.Task[Any] | None = None
    interrupted: bool = False

    def interrupt(self) -> None:
        """Cancel the sync's task from another thread (it stops at its next await)."""
        self.interrupted = True
        if self.loop is not None and self.task is not None:
            self.loop.call_soon_threadsafe(self.task.cancel)


@dataclass(slots=True)
class SyncRunner:
    """Runs every sync of the service, one at a time (see the module's description)."""

    settings: Settings
    inbox: Inbox
    metrics: Metrics
    clock: Clock = _utc_now
    lock_poll_seconds: float = 1.0
    event_retry_seconds: tuple[float, float] = EVENT_RETRY_SECONDS
    inbox_poll_seconds: float = INBOX_POLL_SECONDS
    slot_poll_seconds: float = SCHEDULER_TICK_SECONDS  # looking for abandoned schedule slots
    replica: str = field(default_factory=replica_name)
    health: Health = field(default_factory=Health)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _stopping: bool = False
    _full_due: Trigger | None = None
    _last_full_day: dt.date | None = None
    _last_reconciled_day: dt.date | None = None  # of the last scheduled `sync --full` that ran
    _events_not_before: float = 0.0  # monotonic time
    _event_failures: int = 0
    _current: _ThreadRun | None = None
    _worker: asyncio.Task[None] | None = None
    _scheduler: asyncio.Task[None] | None = None
    _slots: ScheduleSlots | None = None  # the schedule slots this replica holds
    _running: tuple[str, float] | None = None  # the sync in progress: command, monotonic start
    _durations: dict[str, deque[float]] = field(default_factory=dict)
    _store_trouble: RateLimitedLog = field(default_factory=RateLimitedLog)  # once a minute

    # --- life cycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the worker and the scheduler; pending events are processed first."""
        schedule = self.schedule()
        if self.settings.state.url is None:
            await self.inbox.release()  # the only service on this store: claims are stale
        if (
            schedule.midnight
            and not await self.inbox.full_sync_ran_on(self._today().isoformat())
            and await self._claim_slot(slot(Trigger.MIDNIGHT, self.clock(), schedule.zone))
        ):
            self._full_due = Trigger.MIDNIGHT  # catch up: the service was down at midnight
        await self._count_pending()
        self._worker = asyncio.create_task(self._work(), name="sync-worker")
        self._scheduler = asyncio.create_task(self._schedule(schedule), name="scheduler")

    async def stop(self, grace: float | None = None) -> None:
        """Take no new work; let the sync in progress finish for `grace` seconds, then interrupt."""
        grace = self.settings.service.shutdown_grace_seconds if grace is None else grace
        self._stopping = True
        self._wake.set()
        if self._scheduler is not None:
            self._scheduler.cancel()
            await asyncio.gather(self._scheduler, return_exceptions=True)
        if self._worker is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._worker), grace)
        except TimeoutError:
            current = self._current
            if current is not None:
                log.warning("service.interrupting_sync", grace_seconds=grace)
                current.interrupt()
            await asyncio.gather(self._worker, return_exceptions=True)
        await self._schedule_slots().hand_back()

    def alive(self) -> bool:
        """Whether the worker and the scheduler still run (they only end at shutdown)."""
        if self._stopping:
            return True
        worker, scheduler = self._worker, self._scheduler
        if worker is None or worker.done() or scheduler is None:
            return False
        # The scheduler ends by itself when there is nothing to schedule.
        return not scheduler.done() or (not scheduler.cancelled() and not scheduler.exception())

    def running_for(self) -> float:
        """Seconds the sync in progress has run; 0 when none runs."""
        return 0.0 if self._running is None else time.monotonic() - self._running[1]

    def overdue(self) -> str | None:
        """Why the sync in progress runs far longer than usual (longer than
        `service.ready_max_sync_seconds` and than 5 times the median of its kind's last runs);
        None when it does not, or none runs."""
        running = self._running
        if running is None:
            return None
        command, started = running
        elapsed = time.monotonic() - started
        past = self._durations.get(command)
        usual = statistics.median(past) if past else 0.0
        limit = max(self.settings.service.ready_max_sync_seconds, OVERDUE_FACTOR * usual)
        if elapsed <= limit:
            return None
        return (
            f"a {command} sync has been running for {elapsed:.0f} s, far longer than usual "
            f"(usual {usual:.0f} s; limit {limit:.0f} s)"
        )

    def notify(self) -> None:
        """Tell the worker that an event was stored."""
        self._wake.set()

    def schedule(self) -> Schedule:
        """The full-sync schedule from configuration."""
        service = self.settings.service
        return Schedule(service.schedule, self.settings.lifecycle.zone(), service.midnight_sync)

    # --- the scheduler -----------------------------------------------------------------------

    async def _schedule(self, schedule: Schedule) -> None:
        while True:
            upcoming = schedule.next_run(self.clock())
            if upcoming is None:
                return
            when, trigger = upcoming
            log.info("schedule.next", at=when.isoformat(), trigger=trigger.value)
            while (delay := (when - self.clock()).total_seconds()) > 0:
                await asyncio.sleep(min(delay, self.slot_poll_seconds))
                await self._take_abandoned_slots()
            if await self._claim_slot(slot(trigger, when, schedule.zone)):
                self._due(trigger)

    def _due(self, trigger: Trigger) -> None:
        """A full sync falls due (one for several slots claimed before it starts)."""
        if self._full_due is None or trigger is Trigger.SCHEDULE:
            self._full_due = trigger
        self._wake.set()

    async def _claim_slot(self, name: str) -> bool:
        """Whether this replica runs the scheduled sync of slot `name` (`service.slots`)."""
        return await self._schedule_slots().claim(name)

    async def _take_abandoned_slots(self) -> None:
        """Claim and run the slots another replica claimed and died holding (or handed back)."""
        for name in await self._schedule_slots().take_abandoned():
            self._due(slot_trigger(name))

    def _schedule_slots(self) -> ScheduleSlots:
        if self._slots is None:
            lease = self.settings.service.event_lease_seconds
            self._slots = ScheduleSlots(self.inbox, self.replica, lease)
        return self._slots

    # --- the worker --------------------------------------------------------------------------

    async def _work(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                worked = await self._step()
            except _Stopped:
                return
            except StateError as exc:  # the state store does not answer: try again soon
                self._store_trouble.warn(
                    "service.state_store_unavailable", error=mask_national_ids(str(exc))
                )
                worked = False
                await asyncio.sleep(1.0)
            except Exception:  # a bug: keep serving, try again later
                log.exception("service.worker_error")
                worked = False
                await asyncio.sleep(1.0)
            if worked:
                collect_after_job()  # the job's garbage is freed (see `connector.collector`)
            if worked or self._stopping:
                continue
            timeout = self.inbox_poll_seconds  # events another replica received
            if self._events_not_before > time.monotonic():
                timeout = max(timeout, self._events_not_before - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _step(self) -> bool:
        """Do the next piece of work; False when there was none."""
        if self._full_due is not None:
            trigger, self._full_due = self._full_due, None
            slots = self._schedule_slots().held()  # claimed so far: this sync runs them
            if trigger is Trigger.MIDNIGHT and self._last_full_day == self._today():
                log.info("sync.skipped", trigger=trigger.value, reason="a full sync ran today")
                await self._schedule_slots().ended(slots)
                return True
            if await self._full_sync(trigger):
                await self._schedule_slots().ended(slots)
            return True
        if self._events_not_before > time.monotonic():
            return False
        token = f"{self.replica}/{uuid.uuid4().hex[:12]}"
        lease = self.settings.service.event_lease_seconds
        claimed = await self.inbox.claim(token, time.time(), lease, EVENT_BATCH)
        if not claimed:
            return False
        async with self._holding(token, lease):
            await self._process(claimed)  # the events of one employee
        return True

    @contextlib.asynccontextmanager
    async def _holding(self, token: str, lease: float) -> AsyncIterator[None]:
        """Keep the claim `token` alive while the enclosed work runs; release what is left."""

        async def renew() -> None:
            while True:
                await asyncio.sleep(lease / 3)
                try:
                    if not await self.inbox.renew(token, time.time() + lease):
                        return  # processed, or lost to another replica
                except Exception as exc:
                    log.warning("event.lease_not_renewed", error=mask_national_ids(str(exc)))

        renewing = asyncio.create_task(renew(), name="lease")
        try:
            yield
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
            with contextlib.suppress(Exception):  # else the lease runs out by itself
                await self.inbox.release(token)

    async def _full_sync(self, trigger: Trigger) -> bool:
        """Run a scheduled full sync; False when it was interrupted at shutdown."""
        run_id = jobs.new_run_id()
        policy = Reconcile(self.settings.service.reconcile)
        full = reconciles(policy, self._today(), self._last_reconciled_day)
        with structlog.contextvars.bound_contextvars(run_id=run_id):
            log.info("sync.started", command="sync", trigger=trigger.value, full=full)
            try:
                report = await self._run(run_id, "sync", None, full=full)
            except Interrupted:
                log.warning("sync.interrupted", command="sync")
                return False
            except ConnectorError as exc:
                self._failed("sync", exc)
                return True
            except _Stopped:
                raise
            except Exception as exc:
                log.exception("sync.crashed")
                self._failed("sync", exc)
                return True
            self._last_full_day = report.as_of
            if full:
                self._last_reconciled_day = report.as_of
            self._finished("sync", report)
            return True

    async def _process(self, events: list[InboxEvent]) -> None:
        """One targeted resync for the pending events of one employee."""
        employee = events[0].employee
        ids = [event.event_id for event in events]
        run_id = jobs.new_run_id()
        context = {"run_id": run_id, "event_id": ids[-1]}
        if len(ids) > 1:
            context["event_ids"] = ",".join(ids)
        with structlog.contextvars.bound_contextvars(**context):
            log.info("event.processing", employee=str(employee), types=[e.type for e in events])
            selection = jobs.Selection(employees=(employee,))
            try:
                report = await self._run(run_id, "event", selection)
            except jobs.SelectionError:
                log.warning("event.unknown_employee", employee=str(employee))
                await self._finish_events(ids, "unknown_employee", None)
                return
            except Interrupted:
                log.warning("sync.interrupted", command="event")  # the events stay pending
                raise _Stopped from None
            except _Stopped:
                raise
            except Exception as exc:
                await self._event_failed(events, exc)
                return
            outcome = self._finished("event", report)
            self._event_failures = 0
            await self._finish_events(ids, outcome, run_id)

    async def _event_failed(self, events: list[InboxEvent], exc: Exception) -> None:
        ids = [event.event_id for event in events]
        if not isinstance(exc, ConnectorError):
            log.error("event.crashed", exc_info=exc)
        self._failed("event", exc)
        attempts = max(event.attempts for event in events) + 1
        if not isinstance(exc, ConnectorError) and attempts >= MAX_EVENT_ATTEMPTS:
            log.error("event.given_up", attempts=attempts)
            await self._finish_events(ids, "error", None)
            return
        first, most = self.event_retry_seconds
        delay = min(first * 2**self._event_failures, most)
        await self.inbox.retry_later(ids, mask_national_ids(str(exc)), time.time() + delay)
        self._event_failures += 1
        self._events_not_before = time.monotonic() + delay
        log.info("event.retry_later", in_seconds=delay)

    async def _finish_events(self, ids: list[str], outcome: str, run_id: str | None) -> None:
        await self.inbox.finish(ids, outcome, run_id)
        self.metrics.events.labels(outcome).inc(len(ids))
        await self._count_pending()
        log.info("event.processed", outcome=outcome)

    async def _count_pending(self) -> None:
        self.metrics.inbox_pending.set(await self.inbox.pending_count())

    # --- running one sync --------------------------------------------------------------------

    async def _run(
        self, run_id: str, command: str, selection: jobs.Selection | None, *, full: bool = False
    ) -> Report:
        """`jobs.sync` on a thread of its own, once the state store's lock is free."""
        waiting = False
        while True:
            if self._stopping:
                raise _Stopped
            as_of = self._today()
            current = _ThreadRun()
            self._current = current
            self.metrics.sync_running.set(1)
            self._running = (command, time.monotonic())
            try:
                report = await asyncio.to_thread(
                    self._sync_in_thread, current, run_id, as_of, command, selection, full
                )
                self._ran(command)
                return report
            except LockedError:
                if not waiting:
                    log.info("sync.waiting_for_lock")
                    waiting = True
            except Interrupted:
                await self.inbox.interrupt_run(run_id)
                raise
            finally:
                self._current = None
                self._running = None
                self.metrics.sync_running.set(0)
            await self._sleep_unless_stopping(self.lock_poll_seconds)

    def _ran(self, command: str) -> None:
        """Remember how long a sync of this kind took (what is usual)."""
        if self._running is not None:
            durations = self._durations.setdefault(command, deque(maxlen=USUAL_RUNS))
            durations.append(time.monotonic() - self._running[1])

    def _sync_in_thread(
        self,
        current: _ThreadRun,
        run_id: str,
        as_of: dt.date,
        command: str,
        selection: jobs.Selection | None,
        full: bool = False,
    ) -> Report:
        async def main() -> Report:
            current.loop = asyncio.get_running_loop()
            current.task = asyncio.current_task()
            if current.interrupted:
                raise Interrupted("interrupted at shutdown")
            try:
                return await jobs.sync(
                    self.settings, run_id, as_of, selection=selection, command=command, full=full
                )
            except asyncio.CancelledError:
                raise Interrupted("interrupted at shutdown") from None

        return asyncio.run(main())

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)
        if self._stopping:
            raise _Stopped

    # --- outcomes ----------------------------------------------------------------------------

    def _finished(self, command: str, report: Report) -> str:
        outcome = self.metrics.record_run(command, report)
        self.health.succeeded(time.time())
        log.info(
            "sync.finished",
            command=command,
            outcome=outcome,
            counts={k: v for k, v in report.counts.items() if v},
            rejected=len(report.rejected),
            failures=len(report.failures),
            exit_code=report.exit_code,
        )
        return outcome

    def _failed(self, command: str, exc: BaseException) -> None:
        self.metrics.record_error(command)
        self.health.failed(str(exc) or type(exc).__name__, time.time())
        log.warning("sync.failed", command=command, error=mask_national_ids(str(exc)))

    def _today(self) -> dt.date:
        return self.clock().astimezone(self.settings.lifecycle.zone()).date()
