"""The plan: desired vs known state, as a pure function of its inputs and the date."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.desired import desired_state
from connector.hr.records import (
    EmployeeKey,
    GrantRecord,
    HrRecord,
    NationalId,
    Rejection,
    RowHold,
)
from connector.keys import Keyring
from connector.known import KnownState
from connector.mapping import ACMIDM, ENTERPRISE, DesiredState, load_mapping
from connector.people import Person, merge_people
from connector.plan import OnMissing, OpKind, Plan, UserOp, make_plan, simulate

D = dt.date
ORG = "0216293766"
ORG_B = "0212345668"
RIGHT = "Premiezoeker Gebruiker"
MAPPING = load_mapping()
KEYS = Keyring(b"test-secret")
WHY = Rejection("hr.csv", 1, "end_date", "not a date")


def rec(
    n: int,
    start: dt.date = D(2020, 1, 1),
    end: dt.date | None = None,
    org: str = ORG,
    department: str | None = "ICT",
    rights: tuple[str, ...] = (),
    email: str | None = None,
    digits: str | None = None,
) -> HrRecord:
    return HrRecord(
        source="hr.csv",
        row=n,
        employee_id=f"E{n}",
        national_id=NationalId(digits or f"{85000000000 + n:011d}", "nn"),
        given_name=f"Given{n}",
        family_name=f"Family{n}",
        email=email or f"e{n}@{org}.example.be",
        organisation_code=org,
        start_date=start,
        end_date=end,
        department=department,
        rights=rights,
    )


def people(*records: HrRecord, grants: tuple[GrantRecord, ...] = ()) -> dict[str, Person]:
    return merge_people(records, grants)


def desire(ps: dict[str, Person], known: KnownState, day: dt.date, **kw: object) -> DesiredState:
    return desired_state(ps, MAPPING, known, KEYS, day, **kw)  # type: ignore[arg-type]


def plan_and_apply(
    ps: dict[str, Person],
    known: KnownState,
    day: dt.date,
    provision_days_before_start: int = 0,
    on_missing: OnMissing = OnMissing.DEACTIVATE,
    delete_after_days: int | None = None,
) -> tuple[Plan, KnownState]:
    desired = desire(ps, known, day, provision_days_before_start=provision_days_before_start)
    plan = make_plan(
        desired, known, day, on_missing=on_missing, delete_after_days=delete_after_days
    )
    return plan, simulate(plan, known)


def kinds(plan: Plan) -> list[str]:
    return [op.kind.value for op in plan.operations]


def test_first_run_creates_everyone_active_today() -> None:
    plan, _ = plan_and_apply(people(rec(1), rec(2)), KnownState(), D(2026, 12, 1))
    assert kinds(plan) == ["create", "create"]


def test_future_starter_is_not_created_before_the_start_date() -> None:
    ps = people(rec(1, start=D(2027, 1, 4)))
    plan, known = plan_and_apply(ps, KnownState(), D(2027, 1, 3))
    assert plan.empty
    plan, _ = plan_and_apply(ps, known, D(2027, 1, 4))
    assert kinds(plan) == ["create"]


def test_future_starter_is_created_inactive_within_provision_days_before_start() -> None:
    ps = people(rec(1, start=D(2027, 1, 4)))
    plan, known = plan_and_apply(ps, KnownState(), D(2027, 1, 1), provision_days_before_start=5)
    create = plan.operations[0]
    assert isinstance(create, UserOp) and create.resource is not None
    assert create.resource["active"] is False
    plan, _ = plan_and_apply(ps, known, D(2027, 1, 4), provision_days_before_start=5)
    assert kinds(plan) == ["activate"]


def test_person_whose_relations_ended_before_first_seen_is_not_created() -> None:
    plan, _ = plan_and_apply(people(rec(1, end=D(2026, 10, 31))), KnownState(), D(2026, 12, 1))
    assert plan.empty


def test_leaver_is_deactivated_the_day_after_last_working_day() -> None:
    ps = people(rec(1, end=D(2026, 12, 31)))
    _, known = plan_and_apply(ps, KnownState(), D(2026, 12, 1))
    plan, known = plan_and_apply(ps, known, D(2026, 12, 31))
    assert plan.empty
    plan, known = plan_and_apply(ps, known, D(2027, 1, 1))
    assert kinds(plan) == ["deactivate"]
    only = known.users[KEYS.person_key(f"{85000000001:011d}")]
    assert only.active is False and only.deactivated_on == D(2027, 1, 1)


def test_rehire_reactivates_the_same_user() -> None:
    _, known = plan_and_apply(people(rec(1, end=D(2026, 6, 30))), KnownState(), D(2026, 6, 1))
    _, known = plan_and_apply(people(rec(1, end=D(2026, 6, 30))), known, D(2026, 7, 1))
    rehired = people(rec(1, start=D(2026, 9, 1)))
    plan, _ = plan_and_apply(rehired, known, D(2026, 9, 1))
    assert kinds(plan) == ["activate"]
    op = plan.operations[0]
    assert isinstance(op, UserOp) and op.scim_id is not None


def test_job_change_updates_only_the_changed_attributes() -> None:
    _, known = plan_and_apply(people(rec(1), rec(2)), KnownState(), D(2026, 12, 1))
    plan, _ = plan_and_apply(people(rec(1, department="Financiën"), rec(2)), known, D(2026, 12, 2))
    assert kinds(plan) == ["update"]
    op = plan.operations[0]
    assert isinstance(op, UserOp)
    assert [c.path for c in op.changes] == [f"{ENTERPRISE}:department"]


def test_removed_value_becomes_a_removal() -> None:
    _, known = plan_and_apply(people(rec(1)), KnownState(), D(2026, 12, 1))
    plan, _ = plan_and_apply(people(rec(1, department=None)), known, D(2026, 12, 2))
    op = plan.operations[0]
    assert isinstance(op, UserOp)
    removal = [c for c in op.changes if c.path == f"{ENTERPRISE}:department"]
    assert removal and removal[0].value is None


def test_person_missing_from_input_is_deactivated_and_loses_managed_rights() -> None:
    ps = people(rec(1, rights=(RIGHT,)), rec(2))
    _, known = plan_and_apply(ps, KnownState(), D(2026, 12, 1))
    plan, _ = plan_and_apply(people(rec(2)), known, D(2026, 12, 2))
    assert kinds(plan) == ["withdraw", "deactivate"]


def test_person_missing_from_input_is_left_alone_with_on_missing_ignore() -> None:
    _, known = plan_and_apply(people(rec(1), rec(2)), KnownState(), D(2026, 12, 1))
    plan, _ = plan_and_apply(people(rec(2)), known, D(2026, 12, 2), on_missing=OnMissing.IGNORE)
    assert plan.empty


def test_delete_comes_delete_after_days_after_deactivation() -> None:
    ps = people(rec(1, end=D(2026, 12, 31)))
    _, known = plan_and_apply(ps, KnownState(), D(2026, 12, 1), delete_after_days=30)
    _, known = plan_and_apply(ps, known, D(2027, 1, 1), delete_after_days=30)
    plan, _ = plan_and_apply(ps, known, D(2027, 1, 30), delete_after_days=30)
    assert plan.empty
    plan, known = plan_and_apply(ps, known, D(2027, 1, 31), delete_after_days=30)
    assert kinds(plan) == ["delete"]
    assert known.users == {}


def test_held_person_gets_no_operation_at_all() -> None:
    ps = people(rec(1, rights=(RIGHT,)))
    _, known = plan_and_apply(ps, KnownState(), D(2026, 12, 1))
    digits = f"{85000000001:011d}"
    desired = desire({}, known, D(2027, 1, 1), holds=[RowHold(WHY, digits)])
    plan = make_plan(desired, known, D(2027, 1, 1))
    assert plan.empty
    assert list(plan.held.values()) == [f"{ORG}:E1 (85.00.00-***.**)"]  # as in every report


def test_held_by_employee_key_when_the_national_number_itself_was_bad() -> None:
    _, known = plan_and_apply(people(rec(1)), KnownState(), D(2026, 12, 1))
    desired = desire({}, known, D(2026, 12, 2), holds=[RowHold(WHY, key=EmployeeKey(ORG, "E1"))])
    assert make_plan(desired, known, D(2026, 12, 2)).empty


def test_person_in_two_organisations_is_one_user_with_two_work_relations() -> None:
    ps = people(rec(1), rec(2, org=ORG_B, digits=f"{85000000001:011d}"))
    plan, _ = plan_and_apply(ps, KnownState(), D(2026, 12, 1))
    assert kinds(plan) == ["create"]
    op = plan.operations[0]
    assert isinstance(op, UserOp) and op.resource is not None
    assert len(op.resource[ACMIDM]["workRelations"]) == 2
    assert len(op.resource["emails"]) == 2


def test_user_name_is_kept_while_its_address_belongs_to_an_active_relation() -> None:
    first = rec(1, start=D(2010, 1, 1), end=D(2026, 12, 31), email="a@a.be")
    second = rec(2, org=ORG_B, start=D(2015, 1, 1), email="b@b.be", digits=f"{85000000001:011d}")
    _, known = plan_and_apply(people(first, second), KnownState(), D(2026, 12, 1))
    user = next(iter(known.users.values()))
    assert user.user_name == "a@a.be"
    _, known = plan_and_apply(people(first, second), known, D(2027, 1, 1))
    assert next(iter(known.users.values())).user_name == "b@b.be"


def test_grant_with_a_future_begin_date_is_granted_on_that_day() -> None:
    grants = (GrantRecord("grants.csv", 1, ORG, "E1", RIGHT, D(2027, 1, 2)),)
    ps = people(rec(1), grants=grants)
    plan, known = plan_and_apply(ps, KnownState(), D(2027, 1, 1))
    assert kinds(plan) == ["create"]
    plan, known = plan_and_apply(ps, known, D(2027, 1, 2))
    assert kinds(plan) == ["update", "grant"]  # the ACM/IDM rights[] attribute, and the group


def test_grant_ending_on_day_e_is_withdrawn_in_the_run_of_e_plus_one() -> None:
    grants = (GrantRecord("grants.csv", 1, ORG, "E1", RIGHT, None, D(2026, 12, 20)),)
    ps = people(rec(1), grants=grants)
    _, known = plan_and_apply(ps, KnownState(), D(2026, 12, 1))
    plan, known = plan_and_apply(ps, known, D(2026, 12, 20))
    assert plan.empty
    plan, _ = plan_and_apply(ps, known, D(2026, 12, 21))
    assert OpKind.WITHDRAW.value in kinds(plan)


def test_plan_is_deterministic() -> None:
    ps = people(*(rec(n, rights=(RIGHT,) if n % 3 == 0 else ()) for n in range(1, 40)))
    a = make_plan(desire(ps, KnownState(), D(2026, 12, 1)), KnownState(), D(2026, 12, 1))
    b = make_plan(desire(ps, KnownState(), D(2026, 12, 1)), KnownState(), D(2026, 12, 1))
    assert a == b


# --- properties ------------------------------------------------------------------------------

days = st.dates(D(2025, 1, 1), D(2028, 12, 31))


@st.composite
def hr_records(draw: st.DrawFn) -> list[HrRecord]:
    count = draw(st.integers(1, 12))
    out = []
    for n in range(1, count + 1):
        start = draw(days)
        end = draw(st.one_of(st.none(), days.filter(lambda d, s=start: d >= s)))
        person = draw(st.integers(1, max(1, count - 2)))  # some people get two relations
        out.append(
            rec(
                n,
                start=start,
                end=end,
                org=draw(st.sampled_from([ORG, ORG_B])),
                department=draw(st.sampled_from([None, "ICT", "Welzijn"])),
                rights=draw(st.sampled_from([(), (RIGHT,)])),
                digits=f"{85000000000 + person:011d}",
            )
        )
    return out


@settings(max_examples=150, deadline=None)
@given(records=hr_records(), first=days, gap=st.integers(0, 400))
def test_plan_of_an_unchanged_input_is_empty(
    records: list[HrRecord], first: dt.date, gap: int
) -> None:
    ps = people(*records)
    _, known = plan_and_apply(ps, KnownState(), first)
    later = first + dt.timedelta(days=gap)
    _, known = plan_and_apply(ps, known, later)
    again, _ = plan_and_apply(ps, known, later)
    assert again.empty, again.operations


@settings(max_examples=150, deadline=None)
@given(records=hr_records(), day=days)
def test_every_planned_user_is_active_exactly_when_a_relation_is(
    records: list[HrRecord], day: dt.date
) -> None:
    ps = people(*records)
    desired = desire(ps, KnownState(), day)
    for person in ps.values():
        user = desired.users.get(KEYS.person_key(person.national_id.digits))
        active = any(
            r.start_date <= day and (r.end_date is None or day <= r.end_date)
            for r in person.relations
        )
        assert (user is not None and user.active) == active


@st.composite
def grant_records(draw: st.DrawFn, records: list[HrRecord]) -> tuple[GrantRecord, ...]:
    grants = []
    for n, record in enumerate(draw(st.lists(st.sampled_from(records), max_size=4)), start=1):
        begin = draw(st.one_of(st.none(), days))
        end = draw(st.one_of(st.none(), days.filter(lambda d, b=begin: b is None or d >= b)))
        grants.append(
            GrantRecord(
                "grants.csv", n, record.organisation_code, record.employee_id, RIGHT, begin, end
            )
        )
    return tuple(grants)


@st.composite
def two_days(draw: st.DrawFn) -> tuple[dict[str, Person], dict[str, Person], dt.date, dt.date]:
    """People on a first run, the same people with some rows changed later, and both days."""
    first = draw(hr_records())
    later = [
        draw(
            st.sampled_from(
                [
                    record,
                    replace(record, department="Burgerzaken"),
                    replace(
                        record, end_date=draw(days.filter(lambda d, s=record.start_date: d >= s))
                    ),
                    replace(record, rights=()),
                ]
            )
        )
        for record in first
    ]
    grants = draw(grant_records(first))
    day = draw(days)
    return people(*first, grants=grants), people(*later, grants=grants), day, draw(days)


@settings(max_examples=200, deadline=None)
@given(case=two_days())
def test_people_not_mapped_again_get_the_plan_of_a_full_mapping(
    case: tuple[dict[str, Person], dict[str, Person], dt.date, dt.date],
) -> None:
    """The shortcut for people whose HR data and window are those last mapped changes nothing."""
    before, after, first, second = case
    _, known = plan_and_apply(before, KnownState(), first)
    for day in sorted({first, second}):
        lean = make_plan(desire(after, known, day, keep_values=False), known, day)
        full = make_plan(desire(after, known, day, keep_values=True), known, day)
        assert lean.operations == full.operations
        known = simulate(full, known)


def test_unchanged_person_in_the_same_window_is_not_mapped_again() -> None:
    ps = people(rec(1, end=D(2027, 3, 31)))
    _, known = plan_and_apply(ps, KnownState(), D(2026, 12, 1))
    lean = desire(ps, known, D(2027, 1, 4), keep_values=False)
    (user,) = lean.users.values()
    assert user.attributes is None
    assert user.digests is next(iter(known.users.values())).digests


def test_crossing_a_date_of_the_person_maps_them_again() -> None:
    ps = people(rec(1, end=D(2027, 3, 31)))
    _, known = plan_and_apply(ps, KnownState(), D(2026, 12, 1))
    plan, _ = plan_and_apply(ps, known, D(2027, 4, 1))
    assert kinds(plan) == ["deactivate"]


def test_a_changed_mapping_maps_everyone_again() -> None:
    ps = people(rec(1))
    _, known = plan_and_apply(ps, KnownState(), D(2026, 12, 1))
    other = MAPPING.model_copy(
        update={
            "user": MAPPING.user.model_copy(update={"display_name": "{family_name}, {given_name}"})
        }
    )
    desired = desired_state(ps, other, known, KEYS, D(2026, 12, 2), keep_values=False)
    plan = make_plan(desired, known, D(2026, 12, 2))
    assert [c.path for op in plan.operations if isinstance(op, UserOp) for c in op.changes] == [
        "displayName"
    ]
