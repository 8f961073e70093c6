"""A PostgreSQL state store restored behind the connector's back is noticed by every replica,
with no file beside it: loaded from a dump (pg_dump, pg_restore) it recovers by itself; restored
by means no signal shows, `scim-connector state restored` records it. And `state backup` /
`state restore` work on it: a consistent SQLite copy, loaded back under the sync lock, with
the webhook events received since kept.

Where PostgreSQL is not installed these are skipped with the reason (the `postgres_server`
fixture); `state restored` is also checked on SQLite.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector import cli
from connector.ownership import recovery_reason
from connector.state import InboxEvent, StateStore
from tests.integration.conftest import ScimTenants
from tests.integration.test_rights import RIGHT, SCHELDEVELD, Rights, person
from tests.postgres import PostgresServer, StateBackend, find_bin

pytestmark = pytest.mark.integration
D = dt.date


@pytest.fixture
def postgres(state_backend: StateBackend) -> StateBackend:
    if state_backend.name != "postgresql":
        pytest.skip("PostgreSQL's own tools and snapshots")
    return state_backend


@pytest.fixture
def rights(scim_tenants: ScimTenants, tmp_path: Path, state_backend: StateBackend) -> Rights:
    """Three people at Scheldeveld; person 1 holds the right for good."""
    people = [person(n) for n in (1, 2, 3)]
    people[0]["rights"] = RIGHT
    return Rights(scim_tenants.new(), tmp_path, people, state=state_backend)


def state(rights: Rights, *args: str) -> str:
    """`scim-connector state ...` with this test's configuration; its output."""
    result = CliRunner().invoke(cli.app, ["state", *args, "--config", str(rights.write())])
    assert result.exit_code == 0, result.output
    return result.stdout


def recovered(report: object) -> list[str]:
    return [w.message for w in report.warnings if w.kind == "ownership_recovered"]  # type: ignore[attr-defined]


def another_replica(rights: Rights) -> None:
    """The next run is another replica's (or a pod started again): no run marker file."""
    (rights.directory / "state.db.last-run").unlink(missing_ok=True)


def database_of(rights: Rights) -> str:
    return rights.state.location(rights.directory).url.rsplit("/", 1)[1]  # type: ignore[union-attr]


def pg_tool(server: PostgresServer, tool: str, *args: str) -> None:
    bin_dir = find_bin()
    assert bin_dir is not None
    command = [str(bin_dir / tool), "-h", str(server.socket_dir), "-p", str(server.port)]
    subprocess.run([*command, "-U", "postgres", *args], check=True, capture_output=True)


@pytest.mark.parametrize("into", ["same", "new"], ids=["pg_restore --clean", "into a new database"])
def test_a_database_loaded_from_a_dump_recovers_ownership_on_any_replica_by_itself(
    rights: Rights, postgres: StateBackend, tmp_path: Path, into: str
) -> None:
    assert postgres.server is not None
    rights.sync(D(2026, 12, 1))
    dump = tmp_path / "state.dump"
    pg_tool(postgres.server, "pg_dump", "-Fc", "-f", str(dump), database_of(rights))

    rights.grant(2, begin="2026-12-02", end="2026-12-05")
    assert rights.sync(D(2026, 12, 2)).counts["grant"] == 1
    rights.add_by_hand(3)  # someone else's: person 3 has no grant of the right
    assert recovered(rights.sync(D(2026, 12, 2))) == []  # the store is current: nothing to do

    if into == "same":
        pg_tool(postgres.server, "pg_restore", "--clean", "-d", database_of(rights), str(dump))
    else:  # a new database, to which the configuration is pointed
        database = postgres.server.new_database()
        pg_tool(postgres.server, "pg_restore", "--no-owner", "--role=connector", "-d", database,
                str(dump))  # fmt: skip
        postgres._databases[rights.directory] = database
    another_replica(rights)

    (message,) = recovered(rights.sync(D(2026, 12, 3)))
    assert "loaded from a dump or copied since that run" in message
    assert "1 membership(s)" in message and "1 member(s) without such a grant" in message
    assert recovered(rights.sync(D(2026, 12, 4))) == []  # recovered once
    assert rights.sync(D(2026, 12, 6)).counts["withdraw"] == 1  # person 2's grant ended
    assert rights.members() == {1, 3}


def test_a_restore_no_signal_shows_is_recorded_with_state_restored_and_recovered_once(
    rights: Rights, tmp_path: Path
) -> None:
    rights.sync(D(2026, 12, 1))
    saved = copy_of_the_files(rights, tmp_path)
    rights.grant(2, begin="2026-12-02", end="2026-12-05")
    assert rights.sync(D(2026, 12, 2)).counts["grant"] == 1
    rights.add_by_hand(3)  # someone else's: person 3 has no grant of the right

    put_back(rights, saved)  # the store of the 1st, looking current: nothing tells
    another_replica(rights)  # (PostgreSQL: this machine's marker file would tell this machine)
    assert recovery_reason_now(rights) is None
    assert "Recorded that the state store was restored" in state(rights, "restored")

    (message,) = recovered(rights.sync(D(2026, 12, 3)))
    assert "recorded as restored with `scim-connector state restored`" in message
    assert "1 membership(s)" in message and "1 member(s) without such a grant" in message
    assert recovered(rights.sync(D(2026, 12, 4))) == []  # recovered once
    assert rights.sync(D(2026, 12, 6)).counts["withdraw"] == 1  # person 2's grant ended
    assert rights.members() == {1, 3}


def recovery_reason_now(rights: Rights) -> str | None:
    """Why the next run would recover ownership (None: it would not)."""
    store = StateStore.open(rights.state.location(rights.directory))
    try:
        return recovery_reason(store, rights.directory / "state.db")
    finally:
        store.close()


def copy_of_the_files(rights: Rights, tmp_path: Path) -> str | Path:
    """A copy of the store's files as they are (PostgreSQL: a database copied file by file,
    as a disk snapshot would; SQLite: the store's folder, run marker included)."""
    if rights.state.server is not None:
        name = f"{database_of(rights)}_saved"
        with rights.state.server.admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{database_of(rights)}"')
        return name
    saved = tmp_path / "saved"
    saved.mkdir()
    for name in ("state.db", "state.db.last-run"):
        (saved / name).write_bytes((rights.directory / name).read_bytes())
    return saved


def put_back(rights: Rights, saved: str | Path) -> None:
    if isinstance(saved, str):
        assert rights.state.server is not None
        with rights.state.server.admin() as admin:
            admin.execute(f'DROP DATABASE "{database_of(rights)}"')
            admin.execute(f'CREATE DATABASE "{database_of(rights)}" TEMPLATE "{saved}"')
        return
    for name in ("state.db-wal", "state.db-shm"):
        (rights.directory / name).unlink(missing_ok=True)
    for name in ("state.db", "state.db.last-run"):
        (rights.directory / name).write_bytes((saved / name).read_bytes())


def test_a_postgresql_backup_is_a_sqlite_store_restored_with_the_events_received_since(
    rights: Rights, postgres: StateBackend, tmp_path: Path
) -> None:
    rights.sync(D(2026, 12, 1))
    where = rights.state.location(rights.directory)
    store = StateStore.open(where)
    store.add_event(event("before", "E0001"))
    store.close()
    backup = tmp_path / "state-2026-12-01.db"
    assert "backed up" in state(rights, "backup", str(backup))
    assert backup.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(backup) as db:  # a SQLite state store, row for row
        assert db.execute("SELECT count(*) FROM users").fetchone() == (3,)
        assert db.execute("SELECT event_id FROM inbox").fetchall() == [("before",)]

    rights.grant(2, begin="2026-12-02")
    rights.sync(D(2026, 12, 2))
    store = StateStore.open(where)
    store.add_event(event("waiting", "E0002"))  # answered 202, not processed yet
    store.add_event(event("handled", "E0003"))
    store.finish_events(["handled"], "ok", "run-x")
    store.close()

    assert "restored from" in state(rights, "restore", str(backup))
    another_replica(rights)
    store = StateStore.open(where)
    try:
        assert [e.event_id for e in store.pending_events()] == ["before", "waiting"]
        assert store.event("handled") is None  # processed since the backup: its run did it
    finally:
        store.close()
    (message,) = recovered(rights.sync(D(2026, 12, 3)))
    assert "restored from state-2026-12-01.db with `scim-connector state restore`" in message
    assert rights.members() == {1, 2}
    assert sum(rights.sync(D(2026, 12, 3), full=True).counts.values()) == 0


def event(event_id: str, employee_id: str) -> InboxEvent:
    return InboxEvent(
        event_id=event_id,
        received_at=dt.datetime.now(dt.UTC).isoformat(timespec="microseconds"),
        type="employee.updated",
        organisation_code=SCHELDEVELD,
        employee_id=employee_id,
    )
