"""Safety checks: mass deactivations and withdrawals are stopped; back-up gaps are shown."""

from __future__ import annotations

import datetime as dt

from connector.hr.records import EmployeeKey
from connector.known import Digests, KnownState, KnownUser
from connector.mapping import DesiredState, DesiredUser, HeldRight
from connector.plan import Change, MembershipOp, OpKind, Plan, UserOp
from connector.safety import Thresholds, backup_gaps, check_plan

DAY = dt.date(2026, 12, 1)


def known(n: int, memberships: int = 0) -> KnownState:
    users = {
        f"p{i}": KnownUser(
            f"p{i}",
            f"label{i}",
            f"id{i}",
            f"u{i}@x.be",
            True,
            {},
            memberships=frozenset({"R"}) if i < memberships else frozenset(),
        )
        for i in range(n)
    }
    return KnownState(users=users)


def deactivations(n: int) -> Plan:
    ops = tuple(
        UserOp(OpKind.DEACTIVATE, f"p{i}", f"label{i}", f"id{i}", (Change("active", False),))
        for i in range(n)
    )
    return Plan(DAY, ops)


def withdrawals(n: int) -> Plan:
    ops = tuple(MembershipOp(OpKind.WITHDRAW, f"p{i}", f"label{i}", "R", "R") for i in range(n))
    return Plan(DAY, ops)


def test_deactivating_more_than_20_percent_of_managed_people_trips() -> None:
    trips = check_plan(deactivations(9), known(40), Thresholds())
    assert [t.what for t in trips] == ["deactivations and deletions"]
    assert "20% of 40" in trips[0].message


def test_deactivating_exactly_20_percent_does_not_trip() -> None:
    assert check_plan(deactivations(8), known(40), Thresholds()) == []


def test_percentage_does_not_apply_below_ten_managed_people() -> None:
    assert check_plan(deactivations(5), known(9), Thresholds()) == []


def test_count_threshold_trips_whatever_the_percentage() -> None:
    thresholds = Thresholds(max_deactivations_count=3, max_deactivations_percent=None)
    assert check_plan(deactivations(4), known(1000), thresholds)


def test_mass_withdrawal_trips() -> None:
    trips = check_plan(withdrawals(5), known(20, memberships=20), Thresholds())
    assert [t.what for t in trips] == ["withdrawals"]


def desired_with_holders(holders: dict[str, list[str]]) -> DesiredState:
    users = {}
    for org, people in holders.items():
        for person in people:
            users[person] = DesiredUser(
                key=person,
                label=person,
                national_digits="",
                active=True,
                user_name=f"{person}@x.be",
                attributes={},
                digests=Digests(),
                rights=(HeldRight("Premiezoeker Gebruiker", org, None, None),),
                employee_keys=frozenset({EmployeeKey(org, person)}),
            )
    return DesiredState(users=users, groups={}, held={})


def test_backup_warning_for_an_organisation_with_one_holder_and_not_for_two() -> None:
    desired = desired_with_holders({"0216293766": ["a"], "0212345668": ["b", "c"]})
    gaps = backup_gaps(desired, min_holders=2)
    assert [(g.organisation_code, g.right, g.holders) for g in gaps] == [
        ("0216293766", "Premiezoeker Gebruiker", 1)
    ]
    assert "a" not in gaps[0].message.split()
