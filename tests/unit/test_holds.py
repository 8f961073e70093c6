"""A rejected row holds only what it touches; the rest of the person is applied (pure core)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from connector.hr.records import (
    EmployeeKey,
    GrantRecord,
    Rejection,
    RowHold,
    mask_digits,
    rows_text,
)
from connector.known import KnownState, PushedRelation
from connector.mapping import ACMIDM, DesiredState
from connector.plan import OpKind, Plan, UserOp, make_plan, simulate
from tests.unit.test_plan import ORG, ORG_B, D, desire, people, plan_and_apply, rec

RIGHT = "Premiezoeker Gebruiker"
OTHER = "Premiezoeker Beheerder"
IGS = "0212345668"
DIGITS = f"{85000000001:011d}"
E1 = EmployeeKey(ORG, "E1")
TYPO = Rejection("hr.csv", 2, "end_date", "'2027-02-30' is not a date")
GRANT_TYPO = Rejection("grants.csv", 1, "begin_date", "'2026-13-01' is not a date")


def last_pushed(known: KnownState) -> object:
    def lookup(keys: frozenset[str]) -> Mapping[str, tuple[PushedRelation, ...]]:
        found = {k: known.users[k].pushed_relations for k in keys if k in known.users}
        return {k: v for k, v in found.items() if v is not None}

    return lookup


def relation_hold(key: EmployeeKey | None = E1, digits: str | None = DIGITS) -> RowHold:
    return RowHold(TYPO, digits, key)


def grant_hold(right: str | None = RIGHT, key: EmployeeKey = E1) -> RowHold:
    return RowHold(GRANT_TYPO, key=key, grant=True, right=right)


def planned(
    ps: dict, known: KnownState, day: dt.date, *holds: RowHold
) -> tuple[Plan, DesiredState]:
    desired = desire(ps, known, day, holds=list(holds), pushed=last_pushed(known))
    return make_plan(desired, known, day), desired


NAMES = {"name", "displayName"}  # test rows give each row its own name; the latest row names


def changed_paths(plan: Plan) -> set[str]:
    """The paths the plan's user operations change (nothing else may be planned)."""
    assert all(isinstance(op, UserOp) and op.kind is OpKind.UPDATE for op in plan.operations)
    return {c.path for op in plan.operations if isinstance(op, UserOp) for c in op.changes}


def kinds(plan: Plan) -> list[str]:
    return [op.kind.value for op in plan.operations]


def notes(plan: Plan) -> list[str]:
    return [note.what for _, found in plan.hold_notes.values() for note in found]


def test_a_joiner_with_one_valid_and_one_rejected_relation_is_created_from_the_valid_one() -> None:
    ps = people(rec(2, org=ORG_B, digits=DIGITS, rights=(RIGHT,)))  # row of E1 at ORG rejected
    plan, _ = planned(ps, KnownState(), D(2026, 12, 1), relation_hold())
    assert kinds(plan) == ["create", "grant"]
    assert not plan.held
    assert notes(plan) == [f"work relation {E1} not applied (never pushed)"]


def test_a_joiner_with_a_rejected_grant_row_is_created_with_the_rights_of_the_valid_rows() -> None:
    ps = people(rec(1, digits=DIGITS, rights=(RIGHT,)))
    plan, _ = planned(ps, KnownState(), D(2026, 12, 1), grant_hold(OTHER))
    assert kinds(plan) == ["create", "grant"]
    assert [op.right for op in plan.of_kind(OpKind.GRANT)] == [RIGHT]


def test_a_rejected_relation_keeps_its_activity_email_and_rights_as_last_pushed() -> None:
    both = people(
        rec(1, digits=DIGITS, rights=(RIGHT,), end=D(2027, 6, 30)),
        rec(2, org=ORG_B, digits=DIGITS, end=D(2026, 12, 31)),
    )
    _, known = plan_and_apply(both, KnownState(), D(2026, 12, 1))
    # Row 1 now has a typo; row 2 (the other organisation) ends on 31-12 as it said.
    ps = people(rec(2, org=ORG_B, digits=DIGITS, end=D(2026, 12, 31)))
    plan, desired = planned(ps, known, D(2027, 1, 5), relation_hold())
    (user,) = desired.users.values()
    assert user.active and user.right_names == {RIGHT}
    assert kinds(plan) == ["update"]  # the other relation ended; nothing deactivated or withdrawn
    (op,) = plan.operations
    assert isinstance(op, UserOp)
    work = {r["organizationCode"]: r for r in user.value(f"{ACMIDM}:workRelations")}
    assert work[ORG]["active"] is True and work[ORG]["validTo"] == "2027-06-30"
    assert work[ORG_B]["active"] is False
    assert [e["value"] for e in user.value("emails")] == [f"e1@{ORG}.example.be"]
    assert notes(plan) == [f"work relation {E1} kept as last pushed"]


def test_a_rejected_relation_is_not_ended_even_past_its_last_pushed_end_date() -> None:
    ps = people(rec(1, digits=DIGITS, end=D(2026, 12, 31)), rec(2, org=ORG_B, digits=DIGITS))
    _, known = plan_and_apply(ps, KnownState(), D(2026, 12, 1))
    plan, desired = planned(
        people(rec(2, org=ORG_B, digits=DIGITS)), known, D(2027, 1, 5), relation_hold()
    )
    work = {
        r["organizationCode"]: r
        for r in next(iter(desired.users.values())).value(f"{ACMIDM}:workRelations")
    }
    assert work[ORG]["active"] is True  # as last pushed: the typo may be a corrected end date
    assert changed_paths(plan) <= NAMES


def test_an_employee_who_converts_to_a_rejected_external_is_deactivated_after_the_last_day() -> (
    None
):
    employee = rec(1, digits=DIGITS, rights=(RIGHT,), end=D(2026, 12, 31))
    _, known = plan_and_apply(people(employee), KnownState(), D(2026, 12, 1))
    # The IGS external row (2027-01-01..2028-01-01, 365 days) is rejected by externals.max_days.
    igs = RowHold(TYPO, DIGITS, EmployeeKey(IGS, "X1"))
    plan, _ = planned(people(employee), known, D(2027, 1, 3), igs)
    assert kinds(plan) == ["withdraw", "deactivate"]
    assert not plan.held


def test_a_row_with_an_unreadable_key_holds_the_relations_no_valid_row_gives() -> None:
    ps = people(rec(1, digits=DIGITS, rights=(RIGHT,)), rec(2, org=ORG_B, digits=DIGITS))
    _, known = plan_and_apply(ps, KnownState(), D(2026, 12, 1))
    plan, desired = planned(
        people(rec(2, org=ORG_B, digits=DIGITS)), known, D(2026, 12, 2), relation_hold(key=None)
    )
    assert changed_paths(plan) <= NAMES
    assert next(iter(desired.users.values())).right_names == {RIGHT}


def test_a_rejected_grant_row_holds_only_withdrawals_of_the_right_it_names() -> None:
    g = (
        GrantRecord("grants.csv", 1, ORG, "E1", RIGHT),
        GrantRecord("grants.csv", 2, ORG, "E1", OTHER),
    )
    ps = people(rec(1, digits=DIGITS), grants=g)
    _, known = plan_and_apply(ps, KnownState(), D(2026, 12, 1))
    # Both grant rows are gone: row 1 has a typo (naming RIGHT); row 2 was deleted.
    plan, _ = planned(people(rec(1, digits=DIGITS)), known, D(2026, 12, 2), grant_hold(RIGHT))
    assert [op.right for op in plan.of_kind(OpKind.WITHDRAW)] == [OTHER]
    assert notes(plan) == [f"withdrawals of right {RIGHT} through {E1} held"]


def test_a_rejected_grant_row_whose_right_is_unreadable_holds_all_of_the_relations_rights() -> None:
    ps = people(rec(1, digits=DIGITS, rights=(RIGHT,)))
    _, known = plan_and_apply(ps, KnownState(), D(2026, 12, 1))
    plan, _ = planned(people(rec(1, digits=DIGITS)), known, D(2026, 12, 2), grant_hold(None))
    assert not plan.of_kind(OpKind.WITHDRAW)
    assert notes(plan) == [f"withdrawals of every right through {E1} held"]


def test_a_rejected_grant_row_never_blocks_the_end_date_of_its_relation() -> None:
    ps = people(rec(1, digits=DIGITS, rights=(RIGHT,), end=D(2026, 12, 31)))
    _, known = plan_and_apply(ps, KnownState(), D(2026, 12, 1))
    plan, _ = planned(ps, known, D(2027, 1, 1), grant_hold(RIGHT))
    assert kinds(plan) == ["withdraw", "deactivate"]


def test_without_a_record_of_what_was_pushed_the_whole_person_is_held() -> None:
    ps = people(rec(1, digits=DIGITS), rec(2, org=ORG_B, digits=DIGITS))
    _, known = plan_and_apply(ps, KnownState(), D(2026, 12, 1))
    desired = desire(
        people(rec(2, org=ORG_B, digits=DIGITS)), known, D(2027, 1, 5), holds=[relation_hold()]
    )
    plan = make_plan(desired, known, D(2027, 1, 5))
    assert plan.empty and list(plan.held.values()) == ["0212345668:E2 (85.00.00-***.**)"]
    assert notes(plan) == [f"left unchanged: no record of work relation {E1} as last pushed"]


def test_held_values_stay_held_run_after_run() -> None:
    ps = people(rec(1, digits=DIGITS, rights=(RIGHT,)), rec(2, org=ORG_B, digits=DIGITS))
    _, known = plan_and_apply(ps, KnownState(), D(2026, 12, 1))
    rest = people(rec(2, org=ORG_B, digits=DIGITS, end=D(2026, 12, 15)))
    plan, _ = planned(rest, known, D(2026, 12, 2), relation_hold())
    known = simulate(plan, known)
    again, desired = planned(rest, known, D(2026, 12, 20), relation_hold())
    assert not again.of_kind(OpKind.WITHDRAW) and not again.of_kind(OpKind.DEACTIVATE)
    assert next(iter(desired.users.values())).active


def test_a_person_whose_rows_were_all_rejected_is_named_by_the_keys_of_those_rows() -> None:
    shifted = Rejection("hr.csv", 5, "email", "must contain exactly one @")
    other_key = EmployeeKey(IGS, "X9")
    holds = [relation_hold(), RowHold(shifted, DIGITS, other_key), RowHold(TYPO, DIGITS, E1)]

    plan, desired = planned({}, KnownState(), D(2026, 12, 1), *holds)

    (label,) = plan.held.values()
    assert label == f"{E1}, {other_key} ({mask_digits(DIGITS)})"
    (rows,) = desired.held_rows.values()
    assert [(r.file, r.row) for r in rows] == [("hr.csv", 2), ("hr.csv", 5)]  # each row once
    assert rows_text(rows) == "hr.csv rows 2, 5"


def test_where_rejected_rows_are_is_said_per_file() -> None:
    assert rows_text([TYPO]) == "hr.csv row 2"
    assert rows_text([TYPO, GRANT_TYPO, TYPO]) == "hr.csv row 2; grants.csv row 1"
