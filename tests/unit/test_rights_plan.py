"""Grants and withdrawals in the plan: one per person and right, with the dates that explain
them, shown by `plan` (terminal and JSON)."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import replace

from rich.console import Console

from connector.desired import desired_state
from connector.hr.records import GrantRecord, HrRecord, NationalId
from connector.keys import Keyring
from connector.known import KnownState
from connector.mapping import DesiredState, load_mapping
from connector.people import Person, merge_people
from connector.plan import MembershipOp, OpKind, Plan, make_plan, simulate
from connector.render import render_plan
from connector.report import Report

D = dt.date
GENT = "0207451227"
OCMW = "0212345668"
RIGHT = "Premiezoeker Gebruiker"
MAPPING = load_mapping()
KEYS = Keyring(b"test-secret")


def record(
    org: str = GENT, employee: str = "E1", end: dt.date | None = None, **kw: object
) -> HrRecord:
    return HrRecord(
        source="hr.csv",
        row=1,
        employee_id=employee,
        national_id=NationalId("85073003328", "nn"),
        given_name="An",
        family_name="Peeters",
        email=f"an.peeters@{org}.example.be",
        organisation_code=org,
        start_date=D(2020, 1, 1),
        end_date=end,
        **kw,  # type: ignore[arg-type]
    )


def grant(begin: dt.date | None, end: dt.date | None, org: str = GENT) -> GrantRecord:
    return GrantRecord("grants.csv", 1, org, "E1", RIGHT, begin, end)


def desired(ps: dict[str, Person], known: KnownState, day: dt.date) -> DesiredState:
    return desired_state(ps, MAPPING, known, KEYS, day)


def run(ps: dict[str, Person], known: KnownState, day: dt.date) -> tuple[Plan, KnownState]:
    """The plan for `day`, and the known state once it is applied."""
    plan = make_plan(desired(ps, known, day), known, day)
    return plan, simulate(plan, known)


def memberships(plan: Plan) -> list[MembershipOp]:
    return [op for op in plan.operations if isinstance(op, MembershipOp)]


def shown(plan: Plan) -> str:
    """What `plan` prints on a terminal."""
    out = io.StringIO()
    report = Report(run_id="r", command="plan", as_of=plan.as_of, dry_run=True, plan=plan)
    render_plan(Console(file=out, width=200, color_system=None), report)
    return out.getvalue()


def test_grant_carries_its_organisation_and_window() -> None:
    ps = merge_people([record()], [grant(D(2026, 12, 10), D(2027, 6, 30))])
    _, known = run(ps, KnownState(), D(2026, 12, 1))
    plan, _ = run(ps, known, D(2026, 12, 10))
    (op,) = memberships(plan)
    assert (op.kind, op.group, op.organisations) == (OpKind.GRANT, RIGHT, (GENT,))
    assert (op.begin, op.end) == (D(2026, 12, 10), D(2027, 6, 30))
    assert f"{RIGHT} via {GENT} (2026-12-10 → 2027-06-30)" in shown(plan)


def test_withdrawal_carries_the_last_day_the_grant_held() -> None:
    ps = merge_people([record()], [grant(D(2026, 12, 1), D(2026, 12, 31))])
    _, known = run(ps, KnownState(), D(2026, 12, 1))
    plan, _ = run(ps, known, D(2027, 1, 1))
    (op,) = memberships(plan)
    assert (op.kind, op.organisations, op.end) == (OpKind.WITHDRAW, (GENT,), D(2026, 12, 31))
    assert f"{RIGHT} via {GENT} (2026-12-01 → 2026-12-31)" in shown(plan)


def test_leavers_withdrawal_ends_with_the_last_working_day() -> None:
    ps = merge_people([record(end=D(2026, 12, 31), rights=(RIGHT,))])
    _, known = run(ps, KnownState(), D(2026, 12, 1))
    plan, _ = run(ps, known, D(2027, 1, 1))
    assert [op.kind for op in plan.operations] == [OpKind.WITHDRAW, OpKind.DEACTIVATE]
    (op,) = memberships(plan)
    assert (op.begin, op.end) == (D(2020, 1, 1), D(2026, 12, 31))  # the relation's window
    assert f"{RIGHT} via {GENT} (2020-01-01 → 2026-12-31)" in shown(plan)


def test_right_held_in_two_organisations_is_one_grant_naming_both() -> None:
    ps = merge_people([record(rights=(RIGHT,)), record(org=OCMW, employee="O1", rights=(RIGHT,))])
    plan, _ = run(ps, KnownState(), D(2026, 12, 1))
    (op,) = memberships(plan)
    assert op.organisations == (GENT, OCMW)


def test_right_still_held_through_another_organisation_is_not_withdrawn() -> None:
    ps = merge_people(
        [record(), record(org=OCMW, employee="O1", rights=(RIGHT,))],
        [grant(None, D(2026, 12, 31))],
    )
    _, known = run(ps, KnownState(), D(2026, 12, 1))
    plan, _ = run(ps, known, D(2027, 1, 1))
    assert memberships(plan) == []


def test_membership_found_already_there_is_neither_added_again_nor_withdrawn() -> None:
    ps = merge_people([record()], [grant(None, D(2026, 12, 31))])
    _, known = run(ps, KnownState(), D(2026, 12, 1))
    # What apply records when the person was a member already: someone else's membership.
    key, user = next(iter(known.users.items()))
    user = replace(user, memberships=frozenset(), foreign_memberships=frozenset({RIGHT}))
    theirs = KnownState(users={key: user}, groups=known.groups)
    assert memberships(run(ps, theirs, D(2026, 12, 2))[0]) == []
    assert memberships(run(ps, theirs, D(2027, 1, 1))[0]) == []


def test_plan_json_lists_grants_with_right_group_organisations_and_dates() -> None:
    ps = merge_people([record()], [grant(D(2026, 12, 1), D(2026, 12, 31))])
    plan, _ = run(ps, KnownState(), D(2026, 12, 1))
    report = Report(run_id="r", command="plan", as_of=plan.as_of, dry_run=True, plan=plan)
    report.name_people(ps.values(), names=True)
    (granted,) = [op for op in report.to_json()["operations"] if op["kind"] == "grant"]
    assert granted == {
        "kind": "grant",
        "person": f"{GENT}:E1 (85.07.30-***.**)",
        "employee_keys": [f"{GENT}:E1"],
        "name": "An Peeters",
        "right": RIGHT,
        "group": RIGHT,
        "organisations": [GENT],
        "begin": "2026-12-01",
        "end": "2026-12-31",
    }
