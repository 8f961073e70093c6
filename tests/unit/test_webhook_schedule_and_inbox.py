"""`serve`'s pure parts: when full syncs run, and the state store's webhook inbox."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from connector.hr.records import EmployeeKey
from connector.service.schedule import Schedule, Trigger, slot, slot_trigger
from connector.state import MIGRATIONS, InboxEvent, Location, StateStore

BRUSSELS = ZoneInfo("Europe/Brussels")


def local(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=BRUSSELS)


@pytest.mark.parametrize(
    ("cron", "midnight", "after", "expected"),
    [
        ("0 * * * *", False, local(2026, 11, 29, 10, 0), (local(2026, 11, 29, 11, 0), "schedule")),
        ("0 * * * *", False, local(2026, 11, 29, 10, 59), (local(2026, 11, 29, 11, 0), "schedule")),
        ("30 2 * * *", False, local(2026, 11, 29, 3, 0), (local(2026, 11, 30, 2, 30), "schedule")),
        (None, True, local(2026, 11, 29, 10, 0), (local(2026, 11, 30, 0, 1), "midnight")),
        (None, True, local(2026, 11, 29, 0, 0, 30), (local(2026, 11, 29, 0, 1), "midnight")),
        ("0 * * * *", True, local(2026, 11, 29, 23, 30), (local(2026, 11, 30, 0, 0), "schedule")),
        ("0 * * * *", True, local(2026, 11, 30, 0, 0), (local(2026, 11, 30, 0, 1), "midnight")),
        ("0 6 * * *", True, local(2026, 11, 29, 7, 0), (local(2026, 11, 30, 0, 1), "midnight")),
    ],
)
def test_the_next_full_sync(
    cron: str | None,
    midnight: bool,
    after: dt.datetime,
    expected: tuple[dt.datetime, str],
) -> None:
    upcoming = Schedule(cron, BRUSSELS, midnight).next_run(after)
    assert upcoming is not None
    when, trigger = upcoming
    assert (when, trigger.value) == expected
    assert when.tzinfo is dt.UTC


def test_the_schedule_is_read_in_local_time_across_daylight_saving() -> None:
    schedule = Schedule("0 2 * * *", BRUSSELS, midnight=False)
    # 2026-10-25: clocks go back at 03:00 CEST; 02:00 local is 00:00 UTC before, 01:00 after.
    before = schedule.next_run(local(2026, 10, 24, 12, 0))
    after = schedule.next_run(local(2026, 10, 26, 12, 0))
    assert before is not None and after is not None
    assert before[0].hour == 0 and after[0].hour == 1
    midnight = Schedule(None, BRUSSELS, midnight=True).next_run(local(2026, 3, 28, 12, 0))
    assert midnight is not None
    assert midnight[0].astimezone(BRUSSELS).time() == dt.time(0, 1)
    assert midnight[1] is Trigger.MIDNIGHT


def test_no_schedule_and_no_midnight_run_means_no_full_syncs() -> None:
    assert Schedule(None, BRUSSELS, midnight=False).next_run(local(2026, 11, 29, 10, 0)) is None


# ---------------------------------------------------------------------------- the inbox


def event(
    event_id: str, employee_id: str = "E1", at: str = "2026-11-29T08:00:00.000+00:00"
) -> InboxEvent:
    return InboxEvent(
        event_id=event_id,
        received_at=at,
        type="employee.updated",
        organisation_code="0207451227",
        employee_id=employee_id,
        record={"given_name": "An", "national_id": "85.07.30-***.**"},
    )


def test_an_event_is_stored_once_and_read_back(state_location: Location) -> None:
    store = StateStore.open(state_location, durable=True)
    assert store.add_event(event("ev-1")) is True
    assert store.add_event(event("ev-1", employee_id="E2")) is False
    stored = store.event("ev-1")
    assert stored == event("ev-1")
    assert stored is not None and stored.employee == EmployeeKey("0207451227", "E1")
    assert store.event("ev-2") is None


def test_pending_events_come_oldest_first_until_finished(state_location: Location) -> None:
    store = StateStore.open(state_location)
    store.add_event(event("b", at="2026-11-29T08:00:02.000+00:00"))
    store.add_event(event("a", at="2026-11-29T08:00:01.000+00:00"))
    store.add_event(event("c", employee_id="E2", at="2026-11-29T08:00:03.000+00:00"))
    assert [e.event_id for e in store.pending_events()] == ["a", "b", "c"]
    assert store.pending_event_count() == 3

    store.retry_events(["a"], "the target is unreachable")
    again = store.pending_events(limit=1)[0]
    assert (again.event_id, again.attempts, again.last_error) == (
        "a",
        1,
        "the target is unreachable",
    )

    store.finish_events(["a", "b"], "ok", "run-1")
    assert [e.event_id for e in store.pending_events()] == ["c"]
    done = store.event("a")
    assert done is not None
    assert (done.outcome, done.run_id, done.processed_at is not None) == ("ok", "run-1", True)
    store.finish_events(["a"], "error", "run-2")  # a processed event stays as it was
    assert store.event("a") == done


def test_an_interrupted_run_is_recorded_as_such(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.db")
    store.begin_run("run-1", "sync", dt.date(2026, 11, 29), dry_run=False)
    store.begin_run("run-2", "sync", dt.date(2026, 11, 29), dry_run=False)
    store.finish_run("run-2", "done", {}, 0)
    store.interrupt_run("run-1")
    store.interrupt_run("run-2")
    assert {run.run_id: run.status for run in store.runs()} == {
        "run-1": "interrupted",
        "run-2": "done",
    }


def test_a_store_of_the_first_schema_gets_the_inbox(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    db = sqlite3.connect(path)
    db.executescript(MIGRATIONS[0])
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    store = StateStore.open(path)
    assert store.pending_event_count() == 0
    store.ping()


# --- several replicas on one store: claimed events, claimed schedule slots -------------------


def test_a_claim_takes_the_oldest_employees_events_and_another_replica_takes_the_next(
    state_location: Location,
) -> None:
    first = StateStore.open(state_location)
    second = StateStore.open(state_location)  # another replica's connection
    first.add_event(event("a", at="2026-11-29T08:00:01.000+00:00"))
    first.add_event(event("b", employee_id="E2", at="2026-11-29T08:00:02.000+00:00"))
    first.add_event(event("c", at="2026-11-29T08:00:03.000+00:00"))
    taken = first.claim_events("replica-1/x", now=1000.0, lease_seconds=60)
    assert [e.event_id for e in taken] == ["a", "c"]  # every pending event of that employee
    assert [e.event_id for e in second.claim_events("replica-2/y", 1001.0, 60)] == ["b"]
    assert second.claim_events("replica-2/z", 1002.0, 60) == []  # all under a live lease
    first.finish_events(["a", "c"], "ok", "run-1")
    assert first.renew_claim("replica-1/x", 2000.0) == 0  # nothing left to hold
    first.close()
    second.close()


def test_the_events_of_a_replica_that_died_are_taken_over_once_its_lease_runs_out(
    state_location: Location,
) -> None:
    store = StateStore.open(state_location)
    store.add_event(event("a"))
    assert [e.event_id for e in store.claim_events("dead/x", 1000.0, 60)] == ["a"]
    assert store.renew_claim("dead/x", 1090.0) == 1  # renewed while it worked, then it died
    assert store.claim_events("alive/y", 1089.0, 60) == []
    assert [e.event_id for e in store.claim_events("alive/y", 1090.0, 60)] == ["a"]
    store.close()


def test_a_failed_event_is_not_claimed_again_before_its_retry_time(
    state_location: Location,
) -> None:
    store = StateStore.open(state_location)
    store.add_event(event("a"))
    store.claim_events("r/x", 1000.0, 60)
    store.retry_events(["a"], "the target is unreachable", not_before=1005.0)
    assert store.claim_events("r/y", 1004.0, 60) == []
    again = store.claim_events("r/y", 1005.0, 60)
    assert [(e.event_id, e.attempts) for e in again] == [("a", 1)]
    store.release_claims("r/y")
    assert [e.event_id for e in store.claim_events("r/z", 1006.0, 60)] == ["a"]
    store.release_claims()  # every claim (a SQLite service at start: it is the only one)
    assert [e.event_id for e in store.claim_events("r/w", 1007.0, 60)] == ["a"]
    store.close()


def test_a_schedule_slot_is_claimed_by_one_replica_only(state_location: Location) -> None:
    first = StateStore.open(state_location)
    second = StateStore.open(state_location)
    name = slot(Trigger.MIDNIGHT, local(2026, 11, 30, 0, 1), BRUSSELS)
    assert name == "midnight:2026-11-30"
    assert slot(Trigger.MIDNIGHT, local(2026, 11, 30, 13, 0), BRUSSELS) == name  # a catch-up
    assert slot_trigger(name) is Trigger.MIDNIGHT
    assert first.claim_schedule_slot(name, "replica-1", now=1000.0, lease_seconds=60) is True
    assert second.claim_schedule_slot(name, "replica-2", now=1001.0, lease_seconds=60) is False
    cron = slot(Trigger.SCHEDULE, local(2026, 11, 30, 2, 0), BRUSSELS)
    assert cron == "schedule:2026-11-30T01:00:00+00:00"
    assert slot_trigger(cron) is Trigger.SCHEDULE
    assert second.claim_schedule_slot(cron, "replica-2", now=1001.0, lease_seconds=60) is True
    first.close()
    second.close()


def test_a_slot_whose_replica_stopped_renewing_is_taken_over_once_and_a_slot_done_never_again(
    state_location: Location,
) -> None:
    dead, alive, late = (StateStore.open(state_location) for _ in range(3))
    name = "schedule:2026-11-30T01:00:00+00:00"
    assert dead.claim_schedule_slot(name, "dead", now=1000.0, lease_seconds=60)
    assert dead.renew_schedule_slots([name], "dead", until=1090.0) == 1  # then it died
    assert alive.abandoned_schedule_slots(now=1089.0) == []  # its lease still runs
    assert not alive.claim_schedule_slot(name, "alive", now=1089.0, lease_seconds=60)

    assert alive.abandoned_schedule_slots(now=1090.0) == [name]
    assert alive.claim_schedule_slot(name, "alive", now=1090.0, lease_seconds=60)
    assert not late.claim_schedule_slot(name, "late", now=1091.0, lease_seconds=60)  # once
    assert dead.renew_schedule_slots([name], "dead", until=2000.0) == 0  # it is not the dead's
    alive.finish_schedule_slots([name], "alive")

    assert late.abandoned_schedule_slots(now=9999.0) == []
    assert not late.claim_schedule_slot(name, "late", now=9999.0, lease_seconds=60)
    assert alive.renew_schedule_slots([name], "alive", until=10000.0) == 0  # done: nothing held
    for store in (dead, alive, late):
        store.close()


def test_a_slot_handed_back_at_shutdown_is_claimed_at_once_by_another_replica(
    state_location: Location,
) -> None:
    stopping, other = StateStore.open(state_location), StateStore.open(state_location)
    name = "midnight:2026-11-30"
    assert stopping.claim_schedule_slot(name, "stopping", now=1000.0, lease_seconds=60)
    stopping.release_schedule_slots([name], "stopping")
    assert other.abandoned_schedule_slots(now=1001.0) == [name]
    assert other.claim_schedule_slot(name, "other", now=1001.0, lease_seconds=60)
    stopping.close()
    other.close()
