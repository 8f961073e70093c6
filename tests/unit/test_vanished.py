"""A person who vanishes from the HR input is planned like a leaver: the pure core."""

from __future__ import annotations

from collections.abc import Mapping

from connector.known import KnownState, PushedRelation
from connector.mapping import ACMIDM
from connector.plan import OnMissing, OpKind, UserOp, make_plan
from tests.unit.test_plan import D, desire, people, plan_and_apply, rec

RIGHT = "Premiezoeker Gebruiker"
WORK = f"{ACMIDM}:workRelations"


def last_pushed(known: KnownState) -> object:
    def lookup(keys: frozenset[str]) -> Mapping[str, tuple[PushedRelation, ...]]:
        found = {k: known.users[k].pushed_relations for k in keys}
        return {k: v for k, v in found.items() if v is not None}

    return lookup


def test_a_vanished_person_is_ended_the_day_before_the_run_that_noticed() -> None:
    _, known = plan_and_apply(people(rec(1, rights=(RIGHT,)), rec(2)), KnownState(), D(2026, 12, 1))
    desired = desire(people(rec(2)), known, D(2027, 1, 5), pushed=last_pushed(known))
    (vanished,) = desired.vanished.values()
    assert vanished.value(WORK)[0]["validTo"] == "2027-01-04"
    assert vanished.value(WORK)[0]["active"] is False
    assert vanished.value(f"{ACMIDM}:rights")[0]["validTo"] == "2027-01-04"
    plan = make_plan(desired, known, D(2027, 1, 5))
    (deactivate,) = plan.of_kind(OpKind.DEACTIVATE)
    assert isinstance(deactivate, UserOp)
    assert {c.path for c in deactivate.changes} == {"active", WORK, f"{ACMIDM}:rights"}
    assert [op.right for op in plan.of_kind(OpKind.WITHDRAW)] == [RIGHT]


def test_a_vanished_person_keeps_an_earlier_last_day() -> None:
    ps = people(rec(1, end=D(2026, 12, 20)))
    _, known = plan_and_apply(ps, KnownState(), D(2026, 12, 1))
    desired = desire({}, known, D(2027, 1, 5), pushed=last_pushed(known))
    (vanished,) = desired.vanished.values()
    assert vanished.value(WORK)[0]["validTo"] == "2026-12-20"


def test_a_vanished_person_is_left_alone_with_on_missing_ignore() -> None:
    _, known = plan_and_apply(people(rec(1)), KnownState(), D(2026, 12, 1))
    desired = desire({}, known, D(2027, 1, 5), pushed=last_pushed(known))
    assert make_plan(desired, known, D(2027, 1, 5), on_missing=OnMissing.IGNORE).empty


def test_without_relations_on_record_a_vanished_person_is_only_deactivated() -> None:
    _, known = plan_and_apply(people(rec(1)), KnownState(), D(2026, 12, 1))
    plan = make_plan(desire({}, known, D(2027, 1, 5)), known, D(2027, 1, 5))
    (deactivate,) = plan.operations
    assert isinstance(deactivate, UserOp) and [c.path for c in deactivate.changes] == ["active"]


def test_a_relation_that_had_not_begun_ends_the_day_before_its_first() -> None:
    _, known = plan_and_apply(people(rec(1, start=D(2027, 2, 1))), KnownState(), D(2026, 12, 1), 90)
    desired = desire({}, known, D(2027, 1, 5), pushed=last_pushed(known))
    (vanished,) = desired.vanished.values()
    relation = vanished.value(WORK)[0]
    assert (relation["validFrom"], relation["validTo"]) == ("2027-02-01", "2027-01-31")
    assert relation["active"] is False
