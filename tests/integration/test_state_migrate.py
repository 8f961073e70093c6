"""`scim-connector state migrate --to postgresql://...`: a SQLite store moved into an empty
PostgreSQL database, every row, verified; the connector then carries on from it as if nothing
happened (people keyed the same, nothing pushed again)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector import cli
from connector.state import InboxEvent, StateStore
from tests.integration.conftest import ScimTenants
from tests.integration.test_rights import RIGHT, Rights, person
from tests.postgres import PASSWORD, PASSWORD_ENV, PostgresServer, StateBackend

pytestmark = pytest.mark.integration
D = dt.date


@pytest.fixture
def rights(scim_tenants: ScimTenants, tmp_path: Path) -> Rights:
    """Three people at Scheldeveld on a SQLite store, one holding the right."""
    people = [person(n) for n in (1, 2, 3)]
    people[0]["rights"] = RIGHT
    return Rights(scim_tenants.new(), tmp_path, people)


def migrate(rights: Rights, url: str) -> tuple[int, str]:
    arguments = ["state", "migrate", "--to", url, "--password-env", PASSWORD_ENV]
    result = CliRunner().invoke(cli.app, [*arguments, "--config", str(rights.write())])
    return result.exit_code, result.output


def test_a_migrated_store_carries_on_on_postgresql_with_nothing_pushed_again(
    rights: Rights, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    first = rights.sync(D(2026, 12, 1))
    assert (first.counts["create"], first.counts["grant"]) == (3, 1)
    sqlite = StateStore.open(rights.directory / "state.db")
    for n in (1, 2):  # two webhook events waiting, received in the same millisecond
        sqlite.add_event(InboxEvent(f"e{n}", "2026-12-01T10:00:00.000+00:00", "x", "O", f"E{n}"))
    sqlite.close()
    database = postgres_server.new_database()

    code, output = migrate(rights, postgres_server.url(database))

    assert code == 0, output
    assert "users 3" in output and "memberships 1" in output and "counts verified" in output
    assert 'secret_file = "' + str(rights.directory / "state.db.secret") in output
    assert PASSWORD not in output
    # the SQLite store's secret (generated beside it) keys the same people on PostgreSQL
    on_postgres = StateBackend("postgresql", postgres_server, secret_file="state.db.secret")
    on_postgres._databases[rights.directory] = database
    rights.state = on_postgres
    again = rights.sync(D(2026, 12, 1))
    assert sum(again.counts.values()) == 0, again.counts  # same keys, same digests
    store = StateStore.open(on_postgres.location(rights.directory))
    assert [e.event_id for e in store.pending_events()] == ["e1", "e2"]  # arrival order kept
    assert len(store.runs()) == 2 and store.history(run_id=first.run_id)
    store.journal("r", "note", "note")  # ids go on after the copied ones
    store.close()

    code, output = migrate(rights, postgres_server.url(database))  # into a store: refused
    assert code != 0 and "in PostgreSQL already" in output
    rights.state = StateBackend()
    code, output = migrate(rights, postgres_server.url(database))
    assert code != 0 and "is not empty" in output


def test_migrate_names_the_option_at_fault(rights: Rights) -> None:
    code, output = migrate(rights, "mysql://db.example.be/state")
    assert code != 0 and "--to" in output and "postgresql://" in output
    code, output = migrate(rights, "postgresql://svc:hunter2@db.example.be/state")
    assert code != 0 and "must not contain a password" in output and "hunter2" not in output
