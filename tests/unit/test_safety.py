"""Safety checks: mass deactivations and withdrawals are stopped; back-up gaps are shown."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from connector.hr.records import EmployeeKey
from connector.known import Digests, KnownState, KnownUser
from connector.mapping import DesiredState, DesiredUser, HeldRight
from connector.plan import Change, MembershipOp, OpKind, Plan, UserOp
from connector.safety import Thresholds, Trip, backup_gaps, check_plan

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


# ---------------------------------------------------------------------------- additions (kind 3)

GENT = "0207451227"
BRUGGE = "0207529227"
ORGS = (GENT, BRUGGE)


def staff(per_org: dict[str, int], *, inactive: int = 0, memberships: bool = False) -> KnownState:
    """Managed people, `per_org[org]` in each organisation (the first `inactive` not active)."""
    users = {}
    n = 0
    for org, count in per_org.items():
        for _ in range(count):
            users[f"p{n}"] = KnownUser(
                f"p{n}",
                f"label{n}",
                f"id{n}",
                f"u{n}@x.be",
                n >= inactive,
                Digests(),
                memberships=frozenset({"R"}) if memberships else frozenset(),
                employee_keys=frozenset({EmployeeKey(org, f"E{n}")}),
            )
            n += 1
    return KnownState(users=users)


def user_ops(kind: OpKind, people: list[str]) -> Plan:
    ops = tuple(
        UserOp(kind, p, p, p, (Change("active", kind is not OpKind.DEACTIVATE),)) for p in people
    )
    return Plan(DAY, ops)


def desired_people(orgs: dict[str, str]) -> DesiredState:
    users = {
        person: DesiredUser(
            key=person,
            label=person,
            national_digits="",
            active=True,
            user_name=f"{person}@x.be",
            attributes={},
            digests=Digests(),
            rights=(),
            employee_keys=frozenset({EmployeeKey(org, person)}),
        )
        for person, org in orgs.items()
    }
    return DesiredState(users=users, groups={}, held={})


def thresholds_tripped(trips: list[Trip]) -> list[tuple[str | None, str]]:
    return [(t.organisation, t.threshold) for t in trips]


def test_reactivating_every_leaver_at_once_trips_the_activations_threshold() -> None:
    known = staff({GENT: 20}, inactive=5)  # five leavers, deactivated earlier
    trips = check_plan(user_ops(OpKind.ACTIVATE, [f"p{i}" for i in range(5)]), known, Thresholds())
    assert ("safety.max_activations_percent") in [t.threshold for t in trips]
    assert any("5 activations, more than 10% of 20 managed people" in t.message for t in trips)


def test_one_rehire_among_twenty_people_does_not_trip() -> None:
    known = staff({GENT: 20}, inactive=5)
    assert check_plan(user_ops(OpKind.ACTIVATE, ["p0"]), known, Thresholds()) == []


def test_activations_have_a_count_threshold_whatever_the_percentage() -> None:
    known = staff({GENT: 1000}, inactive=101)
    plan = user_ops(OpKind.ACTIVATE, [f"p{i}" for i in range(101)])
    trips = check_plan(plan, known, Thresholds(max_activations_percent=None))
    assert thresholds_tripped(trips) == [(None, "safety.max_activations_count")]


def test_mass_creates_trip_once_people_are_managed() -> None:
    known = staff({GENT: 10})
    new = {f"n{i}": GENT for i in range(3)}
    plan = user_ops(OpKind.CREATE, list(new))
    trips = check_plan(plan, known, Thresholds(), desired=desired_people(new))
    assert (None, "safety.max_creates_percent") in thresholds_tripped(trips)


def test_the_first_sync_into_an_empty_store_is_an_initial_load_not_a_mass_create() -> None:
    new = {f"n{i}": GENT for i in range(800)}
    plan = user_ops(OpKind.CREATE, list(new))
    assert check_plan(plan, KnownState(), Thresholds(), desired=desired_people(new)) == []


def test_mass_grants_trip_the_grants_threshold() -> None:
    known = staff({GENT: 20}, memberships=True)
    ops = tuple(
        MembershipOp(OpKind.GRANT, f"p{i}", f"p{i}", "S", "S", organisations=(GENT,))
        for i in range(5)
    )
    trips = check_plan(Plan(DAY, ops), known, Thresholds())
    assert (None, "safety.max_grants_percent") in thresholds_tripped(trips)
    assert (GENT, "safety.max_grants_percent") in thresholds_tripped(trips)


def test_an_addition_limit_can_be_switched_off() -> None:
    known = staff({GENT: 20}, inactive=5)
    plan = user_ops(OpKind.ACTIVATE, [f"p{i}" for i in range(5)])
    assert check_plan(plan, known, Thresholds(max_activations_percent=None)) == []


# ---------------------------------------------------------------- organisations and empty input


def test_a_header_only_export_always_stops_even_with_four_managed_people() -> None:
    known = staff({GENT: 4})
    trips = check_plan(
        user_ops(OpKind.DEACTIVATE, ["p0", "p1", "p2", "p3"]), known, Thresholds(), hr_rows=0
    )
    assert "an HR input without data rows" in [t.threshold for t in trips]
    assert any(
        "no accepted data rows while the connector manages 4 people" in t.message for t in trips
    )


def test_an_export_without_data_rows_does_not_stop_the_first_sync() -> None:
    assert check_plan(Plan(DAY, ()), KnownState(), Thresholds(), hr_rows=0) == []


def test_losing_one_organisation_of_several_stops_even_at_4_percent_of_the_total() -> None:
    known = staff({GENT: 96, BRUGGE: 4})
    brugge = [
        k
        for k, u in known.users.items()
        if BRUGGE in {e.organisation_code for e in u.employee_keys}
    ]
    trips = check_plan(user_ops(OpKind.DEACTIVATE, brugge), known, Thresholds())
    assert thresholds_tripped(trips) == [(BRUGGE, "an organisation losing all its people")]
    assert trips[0].message.startswith(f"organisation {BRUGGE}: the run would remove all 4")


def test_the_percentage_applies_per_organisation_as_well_as_in_total() -> None:
    known = staff({GENT: 90, BRUGGE: 30})
    brugge = [
        k
        for k, u in known.users.items()
        if BRUGGE in {e.organisation_code for e in u.employee_keys}
    ]
    trips = check_plan(user_ops(OpKind.DEACTIVATE, brugge[:10]), known, Thresholds())  # 8% of all
    assert thresholds_tripped(trips) == [(BRUGGE, "safety.max_deactivations_percent")]
    assert (
        "10 deactivations and deletions, more than 20% of its 30 managed people" in trips[0].message
    )


def test_an_organisation_whose_rows_are_gone_is_emptied_even_if_its_people_stay_active() -> None:
    known = staff({GENT: 10, BRUGGE: 0})
    # Two people who worked for both: their Brugge rows vanish, their Gent rows remain.
    both = {
        f"p{i}": replace(
            known.users[f"p{i}"],
            employee_keys=frozenset({EmployeeKey(GENT, f"E{i}"), EmployeeKey(BRUGGE, f"B{i}")}),
        )
        for i in range(2)
    }
    known = KnownState(users={**known.users, **both})
    desired = desired_people({k: GENT for k in known.users})
    trips = check_plan(Plan(DAY, ()), known, Thresholds(), desired=desired)
    assert thresholds_tripped(trips) == [(BRUGGE, "an organisation losing all its people")]


def test_one_leaver_in_a_one_person_organisation_does_not_stop() -> None:
    known = staff({GENT: 20, BRUGGE: 1})
    assert check_plan(user_ops(OpKind.DEACTIVATE, ["p20"]), known, Thresholds()) == []


def test_a_person_held_back_is_not_removed_from_their_organisation() -> None:
    known = staff({GENT: 10, BRUGGE: 2})
    # p10 is deactivated, p11 is held (absent from the desired state, no operation).
    desired = desired_people({k: GENT for k in known.users if k not in {"p10", "p11"}})
    assert (
        check_plan(user_ops(OpKind.DEACTIVATE, ["p10"]), known, Thresholds(), desired=desired) == []
    )


def test_an_initial_load_resumed_after_an_interruption_is_not_a_mass_create() -> None:
    known = staff({GENT: 100})  # created before the first sync was killed
    new = {f"n{i}": GENT for i in range(200)}
    plan = user_ops(OpKind.CREATE, list(new))
    desired = desired_people(new)
    assert check_plan(plan, known, Thresholds(), desired=desired, initial_load=True) == []
    assert check_plan(plan, known, Thresholds(), desired=desired)  # once a sync has applied
