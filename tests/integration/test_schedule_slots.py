"""A scheduled sync is not lost with the replica that claimed it: the claim of a schedule slot is
a lease, renewed until the slot's sync has ended; a slot whose replica died (or stopped) before
that is run by another replica, once; a slot done is never run again.

The replicas are `SyncRunner`s on one PostgreSQL state store (the session's server), syncing to
a scim2-server tenant; a replica that "died" is a claim made in the store and never renewed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from connector.config import load_config
from connector.service.inbox import Inbox
from connector.service.metrics import Metrics
from connector.service.runner import SyncRunner
from connector.state import AdvisoryLock, PostgresAddress, StateStore
from tests.factories import HR_FIELDS, hr_row, write_csv
from tests.integration.conftest import ScimTenants
from tests.postgres import PASSWORD, PASSWORD_ENV, PostgresServer

pytestmark = pytest.mark.integration

SLOT = "schedule:2026-11-30T01:00:00+00:00"
LEASE_SECONDS = 1  # the shortest `service.event_lease_seconds` allowed


class CountingInbox(Inbox):
    """The real inbox, counting how often a replica looked for abandoned slots."""

    looks = 0

    async def abandoned_slots(self, now: float) -> list[str]:
        found = await super().abandoned_slots(now)
        self.looks += 1
        return found


class Replicas:
    """Replicas of one connector on one PostgreSQL store, started and stopped by the test."""

    def __init__(self, tenants: ScimTenants, server: PostgresServer, directory: Path) -> None:
        self.url = server.url(server.new_database())
        self.address = PostgresAddress(self.url, password=PASSWORD)
        self.base_url = tenants.new().base_url
        write_csv(directory / "hr.csv", [hr_row(n) for n in (1, 2, 3)], fields=HR_FIELDS)
        (directory / "state.secret").write_text("a state secret shared by the replicas\n")
        self.config = directory / "connector.toml"
        self.config.write_text(
            f"""
[source]
path = "hr.csv"

[target]
base_url = "{self.base_url}"

[state]
url = "{self.url}"
password_env = "{PASSWORD_ENV}"
secret_file = "state.secret"

[service]
schedule = "0 3 1 1 *"  # no slot of its own falls due during the test
midnight_sync = false
event_lease_seconds = {LEASE_SECONDS}
""",
            encoding="utf-8",
        )
        StateStore.open(self.address).close()

    async def start(self, name: str) -> tuple[SyncRunner, CountingInbox]:
        settings = load_config(self.config)
        inbox = CountingInbox(settings.state.location)
        await inbox.open()
        runner = SyncRunner(
            settings=settings,
            inbox=inbox,
            metrics=Metrics(time.time),
            replica=name,
            slot_poll_seconds=0.05,
            lock_poll_seconds=0.05,
        )
        await runner.start()
        return runner, inbox

    async def stop(self, runner: SyncRunner, inbox: Inbox) -> None:
        await runner.stop(grace=0)
        await inbox.close()

    def died_holding(self, slot: str) -> None:
        """A replica claimed `slot` and died before its sync: its lease is never renewed."""
        store = StateStore.open(self.address)
        try:
            assert store.claim_schedule_slot(slot, "dead", time.time(), LEASE_SECONDS)
        finally:
            store.close()

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, password=PASSWORD, autocommit=True) as db:
            return list(db.execute(sql).fetchall())

    def slot(self) -> tuple[str, float | None, str | None]:
        ((replica, until, done),) = self.query(
            f"SELECT replica, claimed_until, done_at FROM schedule_runs WHERE slot = '{SLOT}'"
        )
        return replica, until, done

    def full_syncs(self) -> list[str]:
        rows = self.query("SELECT status FROM runs WHERE command = 'sync'")
        return [status for (status,) in rows]


async def until(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def replicas(
    scim_tenants: ScimTenants,
    postgres_server: PostgresServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Replicas:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    return Replicas(scim_tenants, postgres_server, tmp_path)


def test_a_slot_whose_replica_died_before_its_sync_is_run_once_by_another_and_never_again(
    replicas: Replicas,
) -> None:
    replicas.died_holding(SLOT)

    async def scenario() -> None:
        survivor, inbox = await replicas.start("survivor")
        try:
            await until("the slot's sync to end", lambda: replicas.slot()[2] is not None)
            assert replicas.slot()[0] == "survivor"
            looked = inbox.looks
            await until("five more looks for abandoned slots", lambda: inbox.looks >= looked + 5)
        finally:
            await replicas.stop(survivor, inbox)

        late, late_inbox = await replicas.start("late")  # a replica started later
        try:
            await until("it looked for abandoned slots", lambda: late_inbox.looks >= 5)
        finally:
            await replicas.stop(late, late_inbox)

    asyncio.run(scenario())
    assert replicas.full_syncs() == ["done"]  # run once, by the survivor
    assert replicas.slot()[0] == "survivor"


def test_a_replica_that_stops_before_its_slots_sync_hands_it_back_and_another_runs_it(
    replicas: Replicas,
) -> None:
    replicas.died_holding(SLOT)

    async def scenario() -> None:
        with AdvisoryLock(replicas.address):  # a CLI sync runs: the replica's sync must wait
            stopping, inbox = await replicas.start("stopping")
            try:
                await until("it took the slot over", lambda: replicas.slot()[0] == "stopping")
                renewed = replicas.slot()[1]
                assert renewed is not None
                await until(
                    "its lease to be renewed while it waits",
                    lambda: (replicas.slot()[1] or 0) > renewed,
                )
            finally:
                await replicas.stop(stopping, inbox)
            assert replicas.slot() == ("stopping", None, None)  # handed back, not done
            assert replicas.full_syncs() == []
        other, other_inbox = await replicas.start("other")
        try:
            await until("the slot's sync to end", lambda: replicas.slot()[2] is not None)
        finally:
            await replicas.stop(other, other_inbox)

    asyncio.run(scenario())
    assert replicas.slot()[0] == "other"
    assert replicas.full_syncs() == ["done"]
