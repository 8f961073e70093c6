"""A rejected row holds only what it touches, against a real SCIM server (scim2-server on
loopback): the rest of the person is applied, and the report says what is held and why."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from connector.report import Report
from tests.factories import make_kbo
from tests.integration.conftest import ScimTenants
from tests.integration.test_rights import RIGHT, SCHELDEVELD, Rights, email, person
from tests.postgres import StateBackend

pytestmark = pytest.mark.integration

D = dt.date
IGS = make_kbo(2123458)


@pytest.fixture
def rights(scim_tenants: ScimTenants, tmp_path: Path, state_backend: StateBackend) -> Rights:
    """Three people at Scheldeveld, none holding the right yet, and a target of their own;
    the connector's state on SQLite, and on PostgreSQL."""
    people = [person(n) for n in (1, 2, 3)]
    return Rights(scim_tenants.new(), tmp_path, people, state=state_backend)


def held(report: Report) -> list[str]:
    return [w.message for w in report.warnings if w.kind == "held"]


def test_an_employee_converting_to_a_rejected_external_is_ended_on_the_day_after(
    rights: Rights,
) -> None:
    rights.rows[0].update(rights=RIGHT, end_date="2026-12-31")
    rights.sync(D(2026, 12, 1))
    assert rights.members() == {1}
    external = person(
        1,
        employee_id="X0001",
        organisation_code=IGS,
        relation="external",
        employer_code=IGS,
        email="person1@igs.example.be",
        start_date="2027-01-01",
        end_date="2028-01-01",  # 365 days: rejected by externals.max_days
    )
    rights.rows.append(external)
    report = rights.run(D(2027, 1, 3))
    assert report.exit_code == 1  # a row was rejected
    assert [(r.file, r.row, r.field) for r in report.rejected] == [("hr.csv", 4, "end_date")]
    assert (report.counts["deactivate"], report.counts["withdraw"]) == (1, 1)
    assert rights.users()[email(1)]["active"] is False
    assert rights.members() == set()
    assert not report.to_json()["held"]
    (note,) = held(report)
    assert f"work relation {IGS}:X0001 not applied (never pushed)" in note
    assert "hr.csv row 4" in note and "externals.max_days" in note


def test_a_joiner_with_one_rejected_relation_is_created_from_the_valid_one(rights: Rights) -> None:
    rights.rows[0]["rights"] = RIGHT
    rights.rows.append(person(1, employee_id="O0001", organisation_code=IGS, email="bad@"))
    report = rights.run(D(2026, 12, 1))
    assert report.exit_code == 1
    assert report.counts["create"] == 3 and report.counts["grant"] == 1
    assert rights.users()[email(1)]["active"] is True
    assert rights.members() == {1}


def test_a_rejected_relation_keeps_the_person_active_and_their_rights(rights: Rights) -> None:
    rights.rows[0]["rights"] = RIGHT
    rights.rows.append(person(1, employee_id="O0001", organisation_code=IGS))
    rights.sync(D(2026, 12, 1))
    rights.rows[0]["end_date"] = "2026-13-01"  # a typo in the relation that gives the right
    rights.rows[3]["end_date"] = "2026-12-15"  # the other relation ends, validly
    report = rights.run(D(2026, 12, 20))
    assert report.exit_code == 1
    assert (report.counts["deactivate"], report.counts["withdraw"]) == (0, 0)
    assert rights.users()[email(1)]["active"] is True
    assert rights.members() == {1}
    (note,) = held(report)
    assert f"work relation {SCHELDEVELD}:E0001 kept as last pushed" in note
    assert "hr.csv row 1" in note


def test_a_rejected_grant_row_holds_only_the_withdrawal_of_its_right(rights: Rights) -> None:
    rights.grant(1)
    rights.grant(2)
    rights.sync(D(2026, 12, 1))
    assert rights.members() == {1, 2}
    rights.grants[0]["end_date"] = "2026-02-30"  # person 1's grant row: a typo
    del rights.grants[1]  # person 2's grant: gone
    report = rights.run(D(2026, 12, 2))
    assert report.exit_code == 1
    assert rights.members() == {1}
    assert report.counts["withdraw"] == 1
    (note,) = held(report)
    assert f"withdrawals of right {RIGHT} through {SCHELDEVELD}:E0001 held" in note
    assert "grants.csv row 1" in note
