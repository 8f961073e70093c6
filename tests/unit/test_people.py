"""People: merging HR rows per national number, and the active-on-day rules at their edges."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from connector.hr.records import EmployeeKey, GrantRecord, HrRecord, NationalId, RelationType
from connector.people import (
    Grant,
    WorkRelation,
    grant_holds_on,
    merge_people,
    person_active_on,
    person_in_provisioning_window,
    relation_active_on,
    rights_held_on,
)

D = dt.date
ORG_A = "0216293766"
ORG_B = "0212345668"


def record(
    employee_id: str = "E1",
    digits: str = "85073003328",
    org: str = ORG_A,
    start: dt.date = D(2020, 1, 1),
    end: dt.date | None = None,
    given_name: str = "An",
    family_name: str = "Peeters",
    rights: tuple[str, ...] = (),
    row: int = 1,
) -> HrRecord:
    return HrRecord(
        source="hr.csv",
        row=row,
        employee_id=employee_id,
        national_id=NationalId(digits, "nn"),
        given_name=given_name,
        family_name=family_name,
        email=f"{employee_id.lower()}@example.be",
        organisation_code=org,
        start_date=start,
        end_date=end,
        rights=rights,
    )


def relation(start: dt.date, end: dt.date | None) -> WorkRelation:
    return WorkRelation(EmployeeKey(ORG_A, "E1"), "e1@example.be", start, end)


def test_relation_is_active_from_its_first_working_day() -> None:
    r = relation(D(2026, 3, 1), None)
    assert not relation_active_on(r, D(2026, 2, 28))
    assert relation_active_on(r, D(2026, 3, 1))


def test_relation_is_active_on_its_last_working_day_and_not_the_day_after() -> None:
    r = relation(D(2020, 1, 1), D(2026, 12, 31))
    assert relation_active_on(r, D(2026, 12, 31))
    assert not relation_active_on(r, D(2027, 1, 1))


@given(
    start=st.dates(D(2000, 1, 1), D(2040, 1, 1)),
    length=st.integers(0, 4000),
    day=st.dates(D(1999, 1, 1), D(2052, 1, 1)),
)
def test_relation_is_active_exactly_between_start_and_end_inclusive(
    start: dt.date, length: int, day: dt.date
) -> None:
    end = start + dt.timedelta(days=length)
    assert relation_active_on(relation(start, end), day) == (start <= day <= end)


def test_one_person_per_national_number_with_all_work_relations() -> None:
    people = merge_people(
        [
            record("E1", org=ORG_A, start=D(2015, 1, 1)),
            record("E2", org=ORG_B, start=D(2019, 6, 1), row=2),
            record("E3", digits="92031411857", row=3),
        ]
    )
    assert len(people) == 2
    assert {r.key for r in people["85073003328"].relations} == {
        EmployeeKey(ORG_A, "E1"),
        EmployeeKey(ORG_B, "E2"),
    }


def test_the_row_with_the_latest_start_date_gives_the_name() -> None:
    people = merge_people(
        [
            record("E1", start=D(2010, 1, 1), family_name="Peeters"),
            record("E2", org=ORG_B, start=D(2020, 1, 1), family_name="Peeters-Maes", row=2),
        ]
    )
    assert people["85073003328"].family_name == "Peeters-Maes"


def test_person_is_active_while_any_relation_is() -> None:
    people = merge_people(
        [
            record("E1", start=D(2010, 1, 1), end=D(2026, 6, 30)),
            record("E2", org=ORG_B, start=D(2026, 9, 1), row=2),
        ]
    )
    person = people["85073003328"]
    assert person_active_on(person, D(2026, 6, 30))
    assert not person_active_on(person, D(2026, 7, 1))  # the gap between two jobs
    assert person_active_on(person, D(2026, 9, 1))


def test_future_starter_is_in_the_provisioning_window_only_days_before_start() -> None:
    person = merge_people([record(start=D(2027, 1, 4))])["85073003328"]
    assert not person_in_provisioning_window(person, D(2027, 1, 1), 0)
    assert person_in_provisioning_window(person, D(2027, 1, 1), 3)
    assert not person_in_provisioning_window(person, D(2027, 1, 1), 2)


def test_leaver_is_outside_the_provisioning_window_after_the_last_working_day() -> None:
    person = merge_people([record(end=D(2026, 10, 31))])["85073003328"]
    assert not person_in_provisioning_window(person, D(2026, 11, 1), 0)
    assert not person_in_provisioning_window(person, D(2026, 11, 1), 30)


def test_grant_holds_within_its_window_and_its_relation() -> None:
    r = relation(D(2020, 1, 1), D(2026, 12, 31))
    g = Grant("Premiezoeker Gebruiker", r.key, begin=D(2026, 12, 1), end=D(2026, 12, 20))
    assert not grant_holds_on(g, r, D(2026, 11, 30))
    assert grant_holds_on(g, r, D(2026, 12, 1))
    assert grant_holds_on(g, r, D(2026, 12, 20))
    assert not grant_holds_on(g, r, D(2026, 12, 21))


def test_grant_ends_with_its_work_relation() -> None:
    r = relation(D(2020, 1, 1), D(2026, 12, 31))
    g = Grant("Premiezoeker Gebruiker", r.key)
    assert grant_holds_on(g, r, D(2026, 12, 31))
    assert not grant_holds_on(g, r, D(2027, 1, 1))


@given(
    begin=st.dates(D(2020, 1, 1), D(2030, 1, 1)),
    length=st.integers(0, 800),
    day=st.dates(D(2019, 1, 1), D(2033, 1, 1)),
)
def test_grant_holds_exactly_between_begin_and_end_inclusive(
    begin: dt.date, length: int, day: dt.date
) -> None:
    end = begin + dt.timedelta(days=length)
    r = relation(D(2000, 1, 1), None)
    assert grant_holds_on(Grant("R", r.key, begin, end), r, day) == (begin <= day <= end)


def test_rights_come_from_the_rights_column_and_the_grants_file() -> None:
    people = merge_people(
        [record("E1", rights=("Premiezoeker Gebruiker",)), record("E2", org=ORG_B, row=2)],
        [
            GrantRecord("grants.csv", 1, ORG_B, "E2", "Premiezoeker Gebruiker", D(2027, 1, 1)),
        ],
    )
    person = people["85073003328"]
    held_now = rights_held_on(person, D(2026, 12, 1))
    assert [g.relation for g in held_now["Premiezoeker Gebruiker"]] == [EmployeeKey(ORG_A, "E1")]
    held_later = rights_held_on(person, D(2027, 1, 1))
    assert len(held_later["Premiezoeker Gebruiker"]) == 2


def test_grant_for_an_unknown_employee_is_ignored_by_the_merge() -> None:
    people = merge_people(
        [record("E1")], [GrantRecord("grants.csv", 1, ORG_A, "NOPE", "Premiezoeker Gebruiker")]
    )
    assert people["85073003328"].grants == ()


def test_external_relation_type_is_kept() -> None:
    rec = record()
    external = replace(rec, relation=RelationType.EXTERNAL)
    person = merge_people([external])["85073003328"]
    assert person.relations[0].relation is RelationType.EXTERNAL


def test_people_come_in_the_order_of_their_first_row_with_relations_by_start() -> None:
    people = merge_people(
        [
            record("E1", digits="92031411857", start=D(2018, 1, 1)),
            record("E2", start=D(2019, 1, 1), row=2),
            record("E3", digits="92031411857", org=ORG_B, start=D(2010, 1, 1), row=3),
            record("E4", org=ORG_B, start=D(2015, 1, 1), row=4),
        ]
    )
    assert list(people) == ["92031411857", "85073003328"]
    assert [r.key.employee_id for r in people["92031411857"].relations] == ["E3", "E1"]
    assert [r.key.employee_id for r in people["85073003328"].relations] == ["E4", "E2"]


def test_grants_follow_the_rights_column_by_relation_then_the_grants_file_order() -> None:
    right, other = "Premiezoeker Gebruiker", "Premiezoeker Beheerder"
    people = merge_people(
        (
            r
            for r in [
                record("E1", start=D(2020, 1, 1), rights=(right, other)),
                record("E2", org=ORG_B, start=D(2010, 1, 1), rights=(other,), row=2),
            ]
        ),
        (
            g
            for g in [
                GrantRecord("grants.csv", 1, ORG_A, "E1", other, D(2027, 1, 1)),
                GrantRecord("grants.csv", 2, ORG_B, "E2", right, None, D(2027, 6, 30)),
                GrantRecord("grants.csv", 3, ORG_A, "E1", right),
            ]
        ),
    )
    grants = people["85073003328"].grants
    assert [(g.right, g.relation.employee_id, g.origin) for g in grants] == [
        (other, "E2", "hr"),
        (right, "E1", "hr"),
        (other, "E1", "hr"),
        (other, "E1", "grants"),
        (right, "E2", "grants"),
        (right, "E1", "grants"),
    ]
    assert (grants[4].begin, grants[4].end) == (None, D(2027, 6, 30))


def test_a_grant_goes_to_the_last_row_with_its_key() -> None:
    # The reader rejects duplicate keys; merging on its own gives the grant to the last row.
    people = merge_people(
        [record("E1"), record("E1", digits="92031411857", row=2)],
        [GrantRecord("grants.csv", 1, ORG_A, "E1", "Premiezoeker Gebruiker")],
    )
    assert people["85073003328"].grants == ()
    assert [g.origin for g in people["92031411857"].grants] == ["grants"]


def test_relations_and_grants_share_their_rows_keys_and_values() -> None:
    rec = replace(record("E1", rights=("Premiezoeker Gebruiker",)), department="ICT")
    people = merge_people(
        [rec], [GrantRecord("grants.csv", 1, ORG_A, "E1", "Premiezoeker Beheerder")]
    )
    person = people["85073003328"]
    (relation_,) = person.relations
    assert relation_.key is rec.key
    assert all(g.relation is rec.key for g in person.grants)
    assert relation_.email is rec.email and relation_.department is rec.department
    assert person.national_id is rec.national_id
