"""When `serve` runs a scheduled sync: the cron schedule and the run just after midnight, and
which of them reconcile against the target (pure).

Both are read in the configured time zone (`lifecycle.timezone`), so `0 2 * * *` means 02:00 in
Brussels, summer and winter. The midnight run is at 00:01 local time, so that end dates take
effect on the right day whatever the schedule says.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from zoneinfo import ZoneInfo

from cronsim import CronSim

MIDNIGHT_RUN_AT = dt.time(0, 1)


class Reconcile(StrEnum):
    """Which scheduled syncs reconcile against the target (`sync --full`): `service.reconcile`."""

    NIGHTLY = "nightly"  # the first scheduled sync of each day (the midnight run, by default)
    EVERY = "every"  # every scheduled sync
    NEVER = "never"  # none: scheduled syncs trust the state store


def reconciles(policy: Reconcile, today: dt.date, last_reconciled: dt.date | None) -> bool:
    """Whether the scheduled sync due on `today` is a full one (`last_reconciled`: the day of
    the service's last full sync that ran, None since it started)."""
    if policy is Reconcile.EVERY:
        return True
    if policy is Reconcile.NEVER:
        return False
    return last_reconciled != today


class Trigger(StrEnum):
    """Why a full sync runs."""

    SCHEDULE = "schedule"
    MIDNIGHT = "midnight"


def slot(trigger: Trigger, when: dt.datetime, zone: ZoneInfo) -> str:
    """The name of a scheduled sync's slot, the same on every replica: the midnight run's is
    its local day (a catch-up at start takes the same slot), a cron run's its moment (UTC)."""
    if trigger is Trigger.MIDNIGHT:
        return f"midnight:{when.astimezone(zone).date().isoformat()}"
    return f"schedule:{when.astimezone(dt.UTC).isoformat(timespec='seconds')}"


def slot_trigger(name: str) -> Trigger:
    """The trigger of the slot named `name` (by `slot`)."""
    return Trigger(name.partition(":")[0])


@dataclass(frozen=True, slots=True)
class Schedule:
    """The full syncs of the service: a cron expression (or none) and/or the midnight run."""

    cron: str | None
    zone: ZoneInfo
    midnight: bool = True

    def next_run(self, after: dt.datetime) -> tuple[dt.datetime, Trigger] | None:
        """The first full sync strictly after `after` (aware) and its trigger; None: never."""
        local = after.astimezone(self.zone)
        candidates: list[tuple[dt.datetime, Trigger]] = []
        if self.cron is not None:
            candidates.append((next(CronSim(self.cron, local)), Trigger.SCHEDULE))
        if self.midnight:
            candidates.append((self._next_midnight_run(local), Trigger.MIDNIGHT))
        if not candidates:
            return None
        when, trigger = min(candidates, key=lambda c: (c[0], c[1] != Trigger.SCHEDULE))
        return when.astimezone(dt.UTC), trigger

    def _next_midnight_run(self, local: dt.datetime) -> dt.datetime:
        day = local.date()
        today = dt.datetime.combine(day, MIDNIGHT_RUN_AT, tzinfo=self.zone)
        if today > local:
            return today
        return dt.datetime.combine(day + dt.timedelta(days=1), MIDNIGHT_RUN_AT, tzinfo=self.zone)
