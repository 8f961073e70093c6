"""Writes whose outcome is unknown: what they touched is read back by the next run, whatever
kind of run it is, before it plans (answers lost through the fault proxy, a run killed while
its writes were in flight)."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from connector.hr.records import EmployeeKey
from connector.report import Report
from connector.state import StateStore
from connector.syncing import Selection
from tests.faultproxy import Fault, FaultKind, Gate, answering, fault_proxy, forward_all
from tests.integration.conftest import ScimServer, ScimTenants
from tests.integration.test_rights import SCHELDEVELD, Rights, person
from tests.postgres import StateBackend

pytestmark = pytest.mark.integration

D = dt.date


@pytest.fixture
def rights(scim_tenants: ScimTenants, tmp_path: Path, state_backend: StateBackend) -> Rights:
    """Three people at Scheldeveld, none holding the right yet, and a target of their own."""
    people = [person(n) for n in (1, 2, 3)]
    return Rights(scim_tenants.new(), tmp_path, people, state=state_backend)


FEW_RETRIES = """
[target.retry]
attempts = 2
initial_wait_seconds = 0.01
max_wait_seconds = 0.05
"""
NO_BULK = "[target.capabilities]\nbulk = false\n"
# HR's correction gives back 10 of 60 accounts at once (17%), above the default activations
# threshold (10%, which a human would approve); the safety guards are not what is tested here.
CORRECTION_ALLOWED = "[safety]\nmax_activations_percent = 20\n"
LOST = Fault(FaultKind.DROP_AFTER)  # forwarded, done by the server; the answer never comes
PEOPLE = 60
MISTAKEN = range(1, 11)  # the ten people HR ended by mistake


@pytest.fixture
def staff(scim_tenants: ScimTenants, tmp_path: Path, state_backend: StateBackend) -> Rights:
    """Sixty people at Scheldeveld, in a target of their own."""
    people = [person(n) for n in range(1, PEOPLE + 1)]
    return Rights(scim_tenants.new(), tmp_path, people, state=state_backend)


@contextmanager
def through_proxy(rights: Rights, rule: Any = None, plan: Any = forward_all) -> Iterator[Any]:
    """Point the connector at a fault proxy in front of its target for the enclosed runs."""
    server = rights.server
    parts = urlsplit(server.base_url)
    with fault_proxy(f"{parts.scheme}://{parts.netloc}", plan, rule) as proxy:
        rights.server = ScimServer(proxy.base_url(parts.path), server.log, server.acmidm)
        try:
            yield proxy
        finally:
            rights.server = server


def inactive(rights: Rights) -> set[int]:
    """The people (by number) whose user is inactive in the target."""
    return {
        int(name.removeprefix("person").split("@")[0])
        for name, user in rights.users().items()
        if not user["active"]
    }


def kinds(report: Report) -> list[str]:
    return [warning.kind for warning in report.warnings]


def uncertain_marks(rights: Rights) -> int:
    store = StateStore.open(rights.state.location(rights.directory))
    try:
        marks = store.uncertain()
    finally:
        store.close()
    return len(marks.users) + len(marks.memberships)


def end_by_mistake(rights: Rights) -> None:
    for n in MISTAKEN:
        rights.rows[n - 1]["end_date"] = "2026-12-01"


def correct_the_mistake(rights: Rights) -> None:
    for n in MISTAKEN:
        rights.rows[n - 1]["end_date"] = ""


@pytest.mark.parametrize("bulk", [False, True], ids=["single", "bulk"])
def test_people_deactivated_by_a_run_whose_answers_were_lost_are_reactivated_when_hr_corrects(
    staff: Rights, bulk: bool
) -> None:
    staff.extra_config = FEW_RETRIES + ("" if bulk else NO_BULK) + CORRECTION_ALLOWED
    staff.sync(D(2026, 12, 1))
    end_by_mistake(staff)
    lost = answering(r"^(PATCH \S*/Users/|POST \S*/Bulk)", "", LOST)
    with through_proxy(staff, lost) as proxy:
        mistaken = staff.run(D(2026, 12, 2))
    assert any(s.fault is FaultKind.DROP_AFTER for s in proxy.seen)
    assert mistaken.counts["deactivate"] == 0  # as far as the connector could tell
    assert inactive(staff) == set(MISTAKEN)  # but the target did it
    assert uncertain_marks(staff) == len(MISTAKEN)

    correct_the_mistake(staff)
    corrected = staff.sync(D(2026, 12, 3))  # a plain sync, not --full

    assert corrected.counts["activate"] == len(MISTAKEN)
    assert inactive(staff) == set()
    assert kinds(corrected).count("uncertain_resolved") == 1
    message = next(w.message for w in corrected.warnings if w.kind == "uncertain_resolved")
    assert message.startswith(f"{len(MISTAKEN)} write(s)") and "10 had taken effect" in message
    assert uncertain_marks(staff) == 0
    again = staff.sync(D(2026, 12, 4))
    assert sum(again.counts.values()) == 0 and "uncertain_resolved" not in kinds(again)


def test_a_one_day_grant_whose_addition_was_answered_into_the_void_is_withdrawn_after_it(
    rights: Rights,
) -> None:
    rights.extra_config = FEW_RETRIES
    rights.grant(2)  # someone holds the right for good: the group exists
    rights.sync(D(2026, 12, 1))
    rights.grant(1, begin="2026-12-02", end="2026-12-02")
    lost = answering(r"^PATCH \S*/Groups/", "", LOST)
    with through_proxy(rights, lost) as proxy:
        granted = rights.run(D(2026, 12, 2))
    assert [s.fault for s in proxy.faults()] == [FaultKind.DROP_AFTER] * 2  # tried, given up
    assert granted.counts["grant"] == 0 and granted.exit_code == 1
    assert rights.members() == {1, 2}  # the target added person 1 all the same

    after = rights.sync(D(2026, 12, 3))  # the day after the grant's end: a plain sync

    assert after.counts["withdraw"] == 1
    assert rights.members() == {2}
    assert kinds(after).count("uncertain_resolved") == 1


def test_a_resync_of_someone_else_also_reads_back_an_uncertain_membership_first(
    rights: Rights,
) -> None:
    rights.extra_config = FEW_RETRIES
    rights.grant(2)
    rights.sync(D(2026, 12, 1))
    rights.grant(1, begin="2026-12-02", end="2026-12-02")
    with through_proxy(rights, answering(r"^PATCH \S*/Groups/", "", LOST)):
        rights.run(D(2026, 12, 2))
    selection = Selection(employees=(EmployeeKey(SCHELDEVELD, "E0003"),))
    resynced = rights.sync(D(2026, 12, 2), selection=selection, command="resync")
    assert kinds(resynced).count("uncertain_resolved") == 1
    assert uncertain_marks(rights) == 0
    assert rights.sync(D(2026, 12, 3)).counts["withdraw"] == 1  # known to be the connector's
    assert rights.members() == {2}


def test_deactivations_a_killed_run_sent_are_read_back_and_undone_when_hr_corrects(
    staff: Rights,
) -> None:
    # One write at a time: the first deactivation is held, and no other is sent before the kill
    # (with several in flight, one the proxy reads after the gate opens would be let through
    # uncounted).
    staff.target_config = "concurrency = 1"
    staff.extra_config = NO_BULK
    staff.sync(D(2026, 12, 1))
    end_by_mistake(staff)
    gate = Gate(1, r"^PATCH \S*/Users/")  # every deactivation held at the proxy
    with through_proxy(staff, plan=gate.plan) as proxy:
        config = staff.write()
        command = [sys.executable, "-m", "connector", "sync", "--config", str(config)]
        command += ["--as-of", "2026-12-02"]
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            assert gate.held.wait(60), "the run never sent a deactivation"
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
        finally:
            gate.open()  # the held deactivations reach the server: done, answered to nobody
        held = sum(1 for s in proxy.seen if s.fault is FaultKind.HOLD)
        deadline = time.monotonic() + 30
        while len(inactive(staff)) < held and time.monotonic() < deadline:
            time.sleep(0.05)
    assert len(inactive(staff)) == held == 1
    assert uncertain_marks(staff) >= held  # marked before they were sent

    correct_the_mistake(staff)
    corrected = staff.sync(D(2026, 12, 3))

    assert corrected.counts["activate"] == held
    assert inactive(staff) == set()
    assert sorted(kinds(corrected)) == ["interrupted_run", "uncertain_resolved"]
    assert uncertain_marks(staff) == 0


def test_a_dry_run_reads_back_but_records_nothing(rights: Rights) -> None:
    rights.extra_config = FEW_RETRIES
    rights.grant(2)
    rights.sync(D(2026, 12, 1))
    rights.grant(1, begin="2026-12-02", end="2026-12-02")
    with through_proxy(rights, answering(r"^PATCH \S*/Groups/", "", LOST)):
        rights.run(D(2026, 12, 2))
    dry = rights.sync(D(2026, 12, 3), dry_run=True)
    assert dry.extra["planned"]["withdraw"] == 1 and "uncertain_resolved" in kinds(dry)
    assert uncertain_marks(rights) == 1  # still to be recorded by a run that writes
    assert rights.members() == {1, 2}
