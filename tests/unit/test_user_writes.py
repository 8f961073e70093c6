"""How a user's changes are written: PATCH or PUT per path, the body of a PUT, and what is
recorded of changes written in part (connector.apply.user_writes, pure)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from connector.apply.context import blocks_person
from connector.apply.user_writes import (
    UNWRITTEN,
    merged,
    partly_written,
    refuses_patch,
    split,
)
from connector.known import KnownState
from connector.mapping import ENTERPRISE
from connector.plan import Change, UserOp, make_plan
from connector.target.errors import (
    Conflict,
    NotFound,
    PreconditionFailed,
    Rejected,
    TargetRequestError,
    TargetUnavailable,
)
from tests.unit.test_plan import desire, people, plan_and_apply, rec

D = dt.date
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
PERSON = "4f1c0d3e9a8b7c6d5e4f3a2b1c0d9e8f"


# --- PATCH or PUT ------------------------------------------------------------------------------


def test_changes_of_refused_paths_go_by_put_the_others_by_patch() -> None:
    changes = [Change("active", False), Change("displayName", "A B"), Change("name", {"a": 1})]
    by_patch, by_put = split(changes, frozenset({"displayName", "name"}))
    assert [c.path for c in by_patch] == ["active"]
    assert [c.path for c in by_put] == ["displayName", "name"]


def test_with_nothing_refused_everything_goes_by_patch() -> None:
    changes = [Change("displayName", "A B")]
    assert split(changes, frozenset()) == (tuple(changes), ())


def test_with_everything_refused_everything_goes_by_put() -> None:
    changes = [Change("displayName", "A B"), Change("externalId", PERSON)]
    assert split(changes, frozenset({"displayName", "externalId"})) == ((), tuple(changes))


@pytest.mark.parametrize(
    "error",
    [
        Rejected("patch user", "Not Implemented", status=501),
        Rejected("patch user", "Method Not Allowed", status=405),
        Rejected("patch user", "no such path", status=400, scim_type="invalidPath"),
        Rejected("patch user", "nothing there", status=400, scim_type="noTarget"),
        Rejected("patch user", "read-only", status=400, scim_type="mutability"),
        Rejected("patch user", "any case", status=400, scim_type="INVALIDPATH"),
        # A 500 still there after the retries: the server fails on that form of PATCH.
        TargetUnavailable("patch user", "'str' object has no attribute", status=500),
    ],
)
def test_a_refusal_of_the_patch_itself_sends_it_by_put(error: TargetRequestError) -> None:
    assert refuses_patch(error)


@pytest.mark.parametrize(
    "error",
    [
        Rejected("patch user", "Invalid email value", status=400),
        Rejected("patch user", "bad value", status=400, scim_type="invalidValue"),
        Rejected("patch user", "not an attribute of the schema"),  # refused before sending
        Rejected("patch user", "Forbidden", status=403),
        NotFound("patch user", "gone", status=404),
        Conflict("patch user", "taken", status=409),
        PreconditionFailed("patch user", "changed", status=412),
        TargetUnavailable("patch user", "slow down", status=429),
        TargetUnavailable("patch user", "down", status=503),
        TargetUnavailable("patch user", "ConnectError"),
    ],
)
def test_other_failures_are_not_a_refusal_of_the_patch(error: TargetRequestError) -> None:
    assert not refuses_patch(error)


# --- the body of a PUT -------------------------------------------------------------------------


def held(**extra: Any) -> dict[str, Any]:
    """A user as a target answers a GET of it."""
    user: dict[str, Any] = {
        "schemas": [CORE],
        "id": "7",
        "externalId": PERSON,
        "userName": "person1@gent.be",
        "name": {"givenName": "Given1", "familyName": "Family1", "middleName": "M"},
        "displayName": "Given1 Family1",
        "nickName": "set by hand",
        "active": True,
        "groups": [{"value": "g1", "display": "Readers"}],
        "meta": {"resourceType": "User", "version": 'W/"1"'},
    }
    user.update(extra)
    return user


def test_a_put_carries_the_changes_and_everything_else_the_target_holds() -> None:
    body = merged(held(), [Change("displayName", "Given1 Renamed")], PERSON)
    assert body["displayName"] == "Given1 Renamed"
    unchanged = {k: v for k, v in held().items() if k not in ("displayName", "meta", "groups")}
    assert {k: v for k, v in body.items() if k != "displayName"} == unchanged


def test_a_put_leaves_out_the_read_only_meta_and_groups() -> None:
    body = merged(held(), [Change("displayName", "X")], PERSON)
    assert "meta" not in body and "groups" not in body


def test_a_put_never_drops_the_external_id() -> None:
    without = held()
    del without["externalId"]
    assert merged(without, [Change("displayName", "X")], PERSON)["externalId"] == PERSON
    reset = held(externalId="")
    assert merged(reset, [Change("displayName", "X")], PERSON)["externalId"] == PERSON


def test_a_put_keeps_an_external_id_the_target_holds_unless_it_is_changed() -> None:
    other = held(externalId="someone-elses")
    assert merged(other, [Change("displayName", "X")], PERSON)["externalId"] == "someone-elses"
    changed = merged(other, [Change("externalId", PERSON)], PERSON)
    assert changed["externalId"] == PERSON


def test_a_complex_value_is_replaced_as_patch_replace_does_other_sub_attributes_kept() -> None:
    change = Change("name", {"givenName": "Given1", "familyName": "Renamed"})
    body = merged(held(), [change], PERSON)
    assert body["name"] == {"givenName": "Given1", "familyName": "Renamed", "middleName": "M"}


def test_a_multi_valued_attribute_is_replaced_whole() -> None:
    emails = [{"value": "new@gent.be", "type": "work", "primary": True}]
    old = [{"value": "old@gent.be", "primary": True}, {"value": "x@gent.be"}]
    assert merged(held(emails=old), [Change("emails", emails)], PERSON)["emails"] == emails


def test_a_removal_leaves_the_attribute_out() -> None:
    body = merged(held(title="Boss"), [Change("title", None)], PERSON)
    assert "title" not in body


def test_an_extension_attribute_is_set_in_its_extension_and_the_schema_declared() -> None:
    body = merged(held(), [Change(f"{ENTERPRISE}:department", "ICT")], PERSON)
    assert body[ENTERPRISE] == {"department": "ICT"}
    assert body["schemas"] == [CORE, ENTERPRISE]


def test_an_extension_keeps_the_attributes_the_connector_does_not_own() -> None:
    user = held(**{ENTERPRISE: {"department": "ICT", "costCenter": "42"}})
    user["schemas"] = [CORE, ENTERPRISE]
    body = merged(user, [Change(f"{ENTERPRISE}:department", "HR")], PERSON)
    assert body[ENTERPRISE] == {"department": "HR", "costCenter": "42"}
    gone = merged(user, [Change(f"{ENTERPRISE}:department", None)], PERSON)
    assert gone[ENTERPRISE] == {"costCenter": "42"}


def test_removing_from_an_extension_the_user_does_not_have_adds_nothing() -> None:
    body = merged(held(), [Change(f"{ENTERPRISE}:department", None)], PERSON)
    assert ENTERPRISE not in body and body["schemas"] == [CORE]


def test_the_user_as_read_is_left_as_it_was() -> None:
    user = held()
    merged(user, [Change("name", {"givenName": "Z"}), Change("nickName", None)], PERSON)
    assert user == held()


# --- what a failure holds up ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["update", "activate", "deactivate"])
def test_a_failed_change_of_a_user_in_place_holds_up_nothing_else(kind: str) -> None:
    assert not blocks_person(kind, Rejected("patch user", "Not Implemented", status=501))
    assert not blocks_person(kind, TargetUnavailable("patch user", "down", status=503))


@pytest.mark.parametrize("kind", ["update", "activate", "deactivate"])
def test_a_user_gone_from_the_target_holds_up_the_rest(kind: str) -> None:
    assert blocks_person(kind, NotFound("patch user", "gone", status=404))


def test_a_failed_create_holds_up_the_rest() -> None:
    assert blocks_person("create", Rejected("create user", "bad", status=400))


# --- changes written in part -------------------------------------------------------------------


def test_a_change_that_was_not_written_is_planned_again_by_the_next_run() -> None:
    _, known = plan_and_apply(people(rec(1)), KnownState(), D(2026, 12, 1))
    changed = people(rec(1, department="Financiën", email="new@0216293766.example.be"))
    plan, _ = plan_and_apply(changed, known, D(2026, 12, 2))
    (op,) = plan.operations
    assert isinstance(op, UserOp) and op.after is not None
    department = f"{ENTERPRISE}:department"
    assert department in {c.path for c in op.changes}
    after = partly_written(op.after, {department})
    assert after.digests.get(department) == UNWRITTEN and after.mapped_from is None
    known = replace(known, users={op.person: after})
    again = make_plan(desire(changed, known, D(2026, 12, 3)), known, D(2026, 12, 3))
    (retry,) = again.operations
    assert isinstance(retry, UserOp)
    assert [c.path for c in retry.changes] == [department]


def test_a_removal_that_was_not_written_is_planned_again_by_the_next_run() -> None:
    _, known = plan_and_apply(people(rec(1)), KnownState(), D(2026, 12, 1))
    without = people(rec(1, department=None))
    plan, _ = plan_and_apply(without, known, D(2026, 12, 2))
    (op,) = plan.operations
    assert isinstance(op, UserOp) and op.after is not None
    department = f"{ENTERPRISE}:department"
    assert [(c.path, c.value) for c in op.changes] == [(department, None)]
    known = replace(known, users={op.person: partly_written(op.after, {department})})
    again = make_plan(desire(without, known, D(2026, 12, 3)), known, D(2026, 12, 3))
    (retry,) = again.operations
    assert isinstance(retry, UserOp)
    assert [(c.path, c.value) for c in retry.changes] == [(department, None)]


def test_an_unwritten_active_is_never_recorded_as_written_in_part() -> None:
    _, known = plan_and_apply(people(rec(1)), KnownState(), D(2026, 12, 1))
    (user,) = known.users.values()
    with pytest.raises(ValueError):
        partly_written(user, {"active"})
