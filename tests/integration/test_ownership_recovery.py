"""Ownership recovered when the state store is restored from a backup or lost: memberships of
people granted the right in the HR input are the connector's again (and withdrawn when their
grant ends or they leave); members nobody granted stay someone else's."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connector import cli
from tests.integration.conftest import ScimTenants
from tests.integration.test_pg_restores import recovery_reason_now
from tests.integration.test_rights import RIGHT, Rights, person
from tests.postgres import StateBackend

pytestmark = pytest.mark.integration
D = dt.date


@pytest.fixture
def rights(scim_tenants: ScimTenants, tmp_path: Path, state_backend: StateBackend) -> Rights:
    """Three people at Scheldeveld, none holding the right yet, and a target of their own."""
    people = [person(n) for n in (1, 2, 3)]
    return Rights(scim_tenants.new(), tmp_path, people, state=state_backend)


def state(rights: Rights, *args: str) -> None:
    """`scim-connector state ...` with this test's configuration."""
    result = CliRunner().invoke(cli.app, ["state", *args, "--config", str(rights.write())])
    assert result.exit_code == 0, result.output


def warning(report: object, kind: str) -> str:
    messages = [w.message for w in report.warnings if w.kind == kind]  # type: ignore[attr-defined]
    assert len(messages) == 1, report.warnings  # type: ignore[attr-defined]
    return messages[0]


def test_after_a_restore_the_grants_made_since_the_backup_are_withdrawn_on_their_end(
    rights: Rights, tmp_path: Path
) -> None:
    rights.rows[0]["rights"] = RIGHT  # person 1 holds the right for good
    rights.rows.append(person(4, start_date="2026-12-02", end_date="2026-12-07", rights=RIGHT))
    rights.sync(D(2026, 12, 1))
    backup = tmp_path / "backups" / "state-2026-12-01.db"
    backup.parent.mkdir()  # `state backup` creates no folders
    state(rights, "backup", str(backup))

    rights.grant(2, begin="2026-12-02", end="2026-12-05")
    granted = rights.sync(D(2026, 12, 2))  # person 2 granted, person 4 joins with the right
    assert (granted.counts["grant"], granted.counts["create"]) == (2, 1)
    rights.add_by_hand(3)  # someone else's: person 3 has no grant of the right
    assert rights.members() == {1, 2, 3, 4}

    state(rights, "restore", str(backup))  # the store of the night before
    if rights.state.name == "postgresql":  # the next run is another replica's: no marker file
        (rights.directory / "state.db.last-run").unlink()
    recovered = rights.sync(D(2026, 12, 3))
    assert "older than the connector's last run" in warning(recovered, "ownership_recovered")
    assert "2 membership(s)" in warning(recovered, "ownership_recovered")
    assert "1 member(s) without such a grant" in warning(recovered, "ownership_recovered")
    assert sum(recovered.counts.values()) == 0  # person 4 found again, not created twice
    assert len(rights.users()) == 4

    ended = rights.sync(D(2026, 12, 6))
    assert ended.counts["withdraw"] == 1  # person 2's grant ended on the 5th
    assert "ownership_recovered" not in [w.kind for w in ended.warnings]
    left = rights.sync(D(2026, 12, 8))
    assert (left.counts["deactivate"], left.counts["withdraw"]) == (1, 1)  # person 4 left
    assert rights.members() == {1, 3}
    assert rights.sync(D(2026, 12, 9), full=True).counts["withdraw"] == 0
    assert rights.members() == {1, 3}


def test_after_the_store_is_lost_an_ended_grant_is_withdrawn_and_a_hand_made_member_stays(
    rights: Rights,
) -> None:
    rights.grant(1, begin="2026-12-01", end="2026-12-03")
    rights.grant(2)
    rights.sync(D(2026, 12, 1))
    rights.add_by_hand(3)
    rights.state.lose(rights.directory)  # lost; its secret was kept apart
    (rights.directory / "state.db.last-run").unlink()  # with the marker beside it

    recovered = rights.sync(D(2026, 12, 4))  # the grant of person 1 ended yesterday

    assert "the state store is new" in warning(recovered, "ownership_recovered")
    assert recovered.counts["withdraw"] == 1
    assert rights.members() == {2, 3}


@pytest.mark.parametrize("full", [True, False], ids=["full", "plain"])
def test_a_joiner_whose_record_a_restore_with_its_run_marker_lost_is_linked_and_recovered(
    rights: Rights, tmp_path: Path, full: bool
) -> None:
    if rights.state.name == "postgresql":
        pytest.skip("a SQLite store's folder copied back by hand (PostgreSQL: test_pg_restores)")
    rights.rows[0]["rights"] = RIGHT  # person 1 holds the right for good: the group exists
    rights.sync(D(2026, 12, 1))
    saved = tmp_path / "saved"
    saved.mkdir()
    state(rights, "backup", str(saved / "state.db"))
    marker = rights.directory / "state.db.last-run"
    (saved / "state.db.last-run").write_bytes(marker.read_bytes())

    rights.rows.append(person(4, start_date="2026-12-02"))
    rights.grant(4, begin="2026-12-02", end="2026-12-05")
    joined = rights.sync(D(2026, 12, 2))
    assert (joined.counts["create"], joined.counts["grant"]) == (1, 1)
    rights.add_by_hand(3)  # someone else's: person 3 has no grant of the right

    # The folder restored whole, marker included: the store looks current, but knows nothing
    # of person 4 (nor of anything the run of the 2nd did).
    for name in ("state.db-wal", "state.db-shm"):
        (rights.directory / name).unlink(missing_ok=True)
    for name in ("state.db", "state.db.last-run"):
        (rights.directory / name).write_bytes((saved / name).read_bytes())

    if full:  # a dry run records nothing, and says so
        preview = warning(
            rights.sync(D(2026, 12, 3), full=full, dry_run=True), "ownership_recovered"
        )
        assert "would be linked again" in preview and "would be recovered" in preview
    found = rights.sync(D(2026, 12, 3), full=full)
    assert found.extra["adopted"] == 1 and len(rights.users()) == 4  # linked, not made twice
    assert found.counts["grant"] == (0 if full else 1)  # plain: found already there, the rule's
    if full:
        message = warning(found, "ownership_recovered")
        assert "1 user(s) the connector made" in message and "1 of their membership(s)" in message
        assert "would be" not in message and ": linked again" in message

    ended = rights.sync(D(2026, 12, 6))  # person 4's grant ended on the 5th: the connector's
    assert ended.counts["withdraw"] == 1
    assert rights.members() == {1, 3}
    assert sum(rights.sync(D(2026, 12, 7), full=True).counts.values()) == 0
    assert rights.members() == {1, 3}


def test_after_one_replica_recovered_a_restore_another_ones_older_marker_does_not_recover_again(
    rights: Rights, tmp_path: Path
) -> None:
    rights.rows[0]["rights"] = RIGHT
    rights.sync(D(2026, 12, 1))
    backup = tmp_path / "state-2026-12-01.db"
    state(rights, "backup", str(backup))
    rights.grant(2, begin="2026-12-02")
    rights.sync(D(2026, 12, 2))
    marker = rights.directory / "state.db.last-run"
    state(rights, "restore", str(backup))

    marker.unlink()  # machine B (another replica, or a new pod) runs first, and recovers
    recovered = rights.sync(D(2026, 12, 3))
    assert "ownership_recovered" in [w.kind for w in recovered.warnings]
    # Machine A's marker names its last run, a minute before B's (one the store lacks).
    a_minute_before = dt.datetime.strptime(recovered.run_id[:16], "%Y%m%dT%H%M%SZ")
    a_minute_before -= dt.timedelta(minutes=1)
    marker.write_text(f"{a_minute_before:%Y%m%dT%H%M%SZ}-a1a1a1\n")
    assert recovery_reason_now(rights) is None

    later = rights.sync(D(2026, 12, 4))

    assert "ownership_recovered" not in [w.kind for w in later.warnings]
    assert sum(later.counts.values()) == 0
    assert rights.members() == {1, 2}


def test_a_backup_that_cannot_be_written_is_one_line_and_exit_2(
    rights: Rights, tmp_path: Path
) -> None:
    rights.sync(D(2026, 12, 1))
    nowhere = Path("/proc/scim-connector-backup.db")  # a folder nobody may create files in

    arguments = ["state", "backup", str(nowhere), "--config", str(rights.write())]
    result = CliRunner().invoke(cli.app, arguments)

    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert str(nowhere) in result.output
