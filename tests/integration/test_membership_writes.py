"""Group memberships on targets that take member changes in different forms, each change checked
by its effect.

Against django-scim2 (a real, independent server: it answers 501 to a filtered member removal,
drops the members sent with a group's create, and finds no group by filter), against
scim2-server (the first form works), and against scim2-server behind the fault proxy answering
one form of request the way targets in the field do (a 400 to an `or`, a 500, a 200 that
changed nothing).

A removal goes down the ladder — one `remove` with an `or` filter, one filtered `remove` per
member, a `remove` with a value list, a PUT of the member list — one rung per refusal (400, 405,
500, 501) or per answer without effect; the rung that worked is kept in the target's profile
and the next run starts there. A change that does not show in the group is a failure, tried
again by the next run, never counted done.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import pytest

from connector import jobs
from connector.config import load_config
from connector.state import StateStore
from connector.target.profile import MemberRemoval, TargetProfile
from tests.faultproxy import (
    FORWARD,
    Fault,
    FaultKind,
    FaultProxy,
    Rule,
    answering,
    fault_proxy,
    first_of,
    nth,
    scim_error,
)
from tests.integration.conftest import ScimServer, ScimTenants
from tests.integration.test_rights import RIGHT, Rights, person

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("state_backend")]

D = dt.date
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
GROUP_PATCH = r"^PATCH .*/Groups/"
FAST_RETRIES = """
[target.retry]
attempts = 3
initial_wait_seconds = 0.01
max_wait_seconds = 0.05
"""


# --- what the connector sent, what it stored ---------------------------------------------------


def operations(rights: Rights) -> list[list[dict[str, Any]]]:
    """The operations of each group PATCH the last run sent, in order."""
    return [json.loads(sent.body)["Operations"] for sent in rights.wire.to_groups("PATCH")]


def removals(rights: Rights) -> list[list[str]]:
    """Each group PATCH of the last run that removes, as the form of each of its operations:
    `or` (several members in one filter), `filter` (one member's filter), `values` (a list)."""
    forms = []
    for patch in operations(rights):
        removes = [op for op in patch if op["op"] == "remove"]
        if removes:
            forms.append([_form(op) for op in removes])
    return forms


def _form(operation: dict[str, Any]) -> str:
    path = operation["path"]
    if path == "members":
        return "values" if operation.get("value") else "bare"
    return "or" if " or " in path else "filter"


def group_creates(rights: Rights) -> list[dict[str, Any]]:
    """The bodies of the group creates the last run sent."""
    return [
        json.loads(sent.body)
        for sent in rights.wire.sent
        if sent.method == "POST" and sent.path.endswith("/Groups")
    ]


def profile(rights: Rights) -> TargetProfile:
    """What the state store keeps about the target."""
    return jobs.stored_profile(load_config(rights.write()))


def journal(rights: Rights, run_id: str) -> list[tuple[str, str]]:
    """(kind, phase) of a run's journal lines about memberships."""
    store = StateStore.open(rights.state.location(rights.directory))
    try:
        entries = store.history(run_id=run_id)
    finally:
        store.close()
    return [(entry.kind, entry.phase) for entry in entries if entry.kind in ("grant", "withdraw")]


def learned(report: Any) -> list[str]:
    """What a run reported it learned about the target."""
    return [warning.message for warning in report.warnings if warning.kind == "target"]


def create_group_by_hand(server: ScimServer, display_name: str = RIGHT) -> str:
    """What an administrator does in the target's portal: a group, no members."""
    body = {"schemas": [GROUP], "displayName": display_name}
    created = httpx2.post(f"{server.base_url}/Groups", json=body)
    assert created.status_code == 201, created.text
    group_id: str = created.json()["id"]
    return group_id


# --- django-scim2 -------------------------------------------------------------------------------


@pytest.fixture
def on_django(django_scim: ScimServer, tmp_path: Path) -> Rights:
    """Four people, none holding the right yet, and a django-scim2 server of their own."""
    return Rights(django_scim, tmp_path, [person(n) for n in (1, 2, 3, 4)])


def test_django_drops_members_sent_with_a_create_so_they_are_added_by_patch(
    on_django: Rights,
) -> None:
    on_django.grant(1)
    on_django.grant(2)
    report = on_django.sync(D(2026, 12, 1))
    assert report.counts["grant"] == 2
    (create,) = group_creates(on_django)
    assert len(create["members"]) == 2  # sent with the create, dropped by the target
    assert [[op["op"] for op in patch] for patch in operations(on_django)] == [["add"]]
    assert on_django.members() == {1, 2}
    assert profile(on_django).drops_members_on_write
    assert "members sent with a group create or replace are dropped: added by PATCH" in learned(
        report
    )


def test_django_withdrawal_really_leaves_by_a_value_list_and_the_next_run_starts_there(
    on_django: Rights,
) -> None:
    on_django.grant(1, end="2026-12-10")
    on_django.grant(2, end="2026-12-20")
    on_django.grant(3)
    on_django.sync(D(2026, 12, 1))
    on_django.add_by_hand(4)

    first = on_django.sync(D(2026, 12, 11))
    assert first.counts["withdraw"] == 1
    assert on_django.members() == {2, 3, 4}  # read back from the server: 1 really left
    # `members[value eq "…"]` answered 501; then a value list, answered with the group.
    assert removals(on_django) == [["filter"], ["values"]]
    assert len(on_django.wire.to_groups("GET")) == 1  # the effect shows in the PATCH answer
    assert profile(on_django).member_removal is MemberRemoval.VALUE_LIST
    assert "member removals go as 'value_list'" in learned(first)

    second = on_django.sync(D(2026, 12, 21))
    assert second.counts["withdraw"] == 1
    assert removals(on_django) == [["values"]]  # the learned rung, first time
    assert on_django.members() == {3, 4}  # the member added by hand is still there
    assert learned(second) == []  # said once


def test_django_group_created_by_hand_is_adopted_not_created_again(on_django: Rights) -> None:
    by_hand = create_group_by_hand(on_django.server)
    on_django.grant(1)
    report = on_django.sync(D(2026, 12, 1))
    assert report.counts["grant"] == 1
    assert group_creates(on_django) == []  # django-scim2 announces no filter: found by listing
    assert on_django.group()["id"] == by_hand
    assert on_django.members() == {1}


def test_django_group_created_meanwhile_answers_409_and_is_adopted(on_django: Rights) -> None:
    on_django.grant(1)
    by_hand: list[str] = []

    async def someone_creates_the_group_just_before_the_connector(request: httpx2.Request) -> None:
        if request.method == "POST" and request.url.path.endswith("/Groups") and not by_hand:
            by_hand.append(create_group_by_hand(on_django.server))

    settings = load_config(on_django.write())
    hooks = {"request": [someone_creates_the_group_just_before_the_connector, on_django.wire]}
    report = asyncio.run(jobs.sync(settings, jobs.new_run_id(), D(2026, 12, 1), event_hooks=hooks))
    assert report.exit_code == 0, report.to_json()
    assert report.counts["grant"] == 1
    assert len(group_creates(on_django)) == 1  # answered 409: the name is taken
    assert [group["id"] for group in on_django.groups()] == by_hand
    assert on_django.members() == {1}
    assert on_django.sync(D(2026, 12, 2)).counts["grant"] == 0  # recorded: nothing left to do


def test_django_filters_switched_on_find_no_group_so_the_listing_does_and_they_are_distrusted(
    on_django: Rights,
) -> None:
    on_django.extra_config = "[target.capabilities]\nfilter = true\n"
    by_hand = create_group_by_hand(on_django.server)
    on_django.grant(1)
    report = on_django.sync(D(2026, 12, 1))
    assert group_creates(on_django) == []
    assert on_django.group()["id"] == by_hand
    assert on_django.members() == {1}
    assert profile(on_django).untrusted_filters == {"displayname"}
    assert "filters on displayname give wrong results: found by listing instead" in learned(report)


# --- scim2-server ----------------------------------------------------------------------------


@pytest.fixture
def on_scim2(scim_tenants: ScimTenants, tmp_path: Path) -> Rights:
    """Four people, none holding the right yet, and a scim2-server tenant of their own."""
    return Rights(scim_tenants.new(), tmp_path, [person(n) for n in (1, 2, 3, 4)])


def test_scim2_server_keeps_the_members_of_a_create_and_takes_the_first_rung(
    on_scim2: Rights,
) -> None:
    on_scim2.grant(1, end="2026-12-10")
    on_scim2.grant(2, end="2026-12-10")
    on_scim2.grant(3)
    first = on_scim2.sync(D(2026, 12, 1))
    (create,) = group_creates(on_scim2)
    assert len(create["members"]) == 3
    assert on_scim2.wire.to_groups("PATCH") == []  # the members came with the create
    assert on_scim2.members() == {1, 2, 3}

    second = on_scim2.sync(D(2026, 12, 11))
    assert second.counts["withdraw"] == 2
    assert removals(on_scim2) == [["or"]]
    assert on_scim2.members() == {3}
    assert profile(on_scim2).member_removal is MemberRemoval.FILTER
    assert not profile(on_scim2).drops_members_on_write
    assert learned(first) == learned(second) == []


# --- scim2-server behind the fault proxy ---------------------------------------------------------


@contextmanager
def behind_proxy(
    tenants: ScimTenants, directory: Path, rule: Rule, extra_config: str = ""
) -> Iterator[tuple[Rights, FaultProxy]]:
    """Six people and a fresh tenant, reached through a fault proxy applying `rule`."""
    tenant = tenants.new()
    with fault_proxy(tenants.root, rule=rule) as proxy:
        path = tenant.base_url.removeprefix(tenants.root)
        server = ScimServer(proxy.base_url(path), tenant.log, tenant.acmidm)
        rights = Rights(server, directory, [person(n) for n in range(1, 7)])
        rights.extra_config = extra_config
        yield rights, proxy


def answered(proxy: FaultProxy) -> int:
    """How many requests the proxy answered itself, so far."""
    return sum(seen.fault is FaultKind.ANSWER for seen in proxy.seen)


def grant_two_ending_then_two_more(rights: Rights) -> None:
    """1 and 2 hold the right until 10 December, 3 and 4 until the 20th, 5 for good."""
    for n in (1, 2):
        rights.grant(n, end="2026-12-10")
    for n in (3, 4):
        rights.grant(n, end="2026-12-20")
    rights.grant(5)


NO_OR = scim_error(400, "logical operators are not supported in value filters", "invalidFilter")


def test_a_400_to_an_or_filter_moves_to_one_filter_per_member_and_the_next_run_starts_there(
    scim_tenants: ScimTenants, tmp_path: Path
) -> None:
    rule = answering(GROUP_PATCH, r" or value eq ", NO_OR)
    with behind_proxy(scim_tenants, tmp_path, rule) as (rights, proxy):
        grant_two_ending_then_two_more(rights)
        rights.sync(D(2026, 12, 1))

        first = rights.sync(D(2026, 12, 11))
        assert first.counts["withdraw"] == 2
        assert removals(rights) == [["or"], ["filter", "filter"]]
        assert answered(proxy) == 1
        assert rights.members() == {3, 4, 5}
        assert profile(rights).member_removal is MemberRemoval.VALUE_FILTER

        second = rights.sync(D(2026, 12, 21))
        assert second.counts["withdraw"] == 2
        assert removals(rights) == [["filter", "filter"]]  # no `or` sent any more
        assert answered(proxy) == 1
        assert rights.members() == {5}


def test_a_500_to_an_or_filter_is_retried_then_taken_as_a_refusal_of_that_form(
    scim_tenants: ScimTenants, tmp_path: Path
) -> None:
    rule = answering(GROUP_PATCH, r" or value eq ", Fault(FaultKind.ANSWER, status=500))
    with behind_proxy(scim_tenants, tmp_path, rule, FAST_RETRIES) as (rights, proxy):
        grant_two_ending_then_two_more(rights)
        rights.sync(D(2026, 12, 1))
        report = rights.sync(D(2026, 12, 11))
        assert report.counts["withdraw"] == 2
        assert answered(proxy) == 3  # every attempt the retry policy allows
        assert rights.members() == {3, 4, 5}
        assert profile(rights).member_removal is MemberRemoval.VALUE_FILTER


def test_removals_answered_done_that_removed_nothing_go_down_to_a_put_with_if_match(
    scim_tenants: ScimTenants, tmp_path: Path
) -> None:
    # Every filtered remove is answered 200 and never reaches the server; scim2-server itself
    # refuses a remove with a value list (400): what is left is a PUT of the member list.
    rule = answering(GROUP_PATCH, r'"path":"members\[', Fault(FaultKind.ANSWER, status=200))
    with behind_proxy(scim_tenants, tmp_path, rule) as (rights, proxy):
        grant_two_ending_then_two_more(rights)
        rights.sync(D(2026, 12, 1))
        rights.add_by_hand(6)  # someone else's member, kept in the member list PUT back
        first = rights.sync(D(2026, 12, 11))
        assert first.counts["withdraw"] == 2
        assert first.failures == []
        assert removals(rights) == [["or"], ["filter", "filter"], ["values"]]
        assert answered(proxy) == 2  # the two filtered forms; the value list got its 400
        (put,) = rights.wire.to_groups("PUT")
        assert put.headers.get("if-match")
        assert rights.members() == {3, 4, 5, 6}
        assert profile(rights).member_removal is MemberRemoval.REPLACE

        second = rights.sync(D(2026, 12, 21))
        assert second.counts["withdraw"] == 2
        assert removals(rights) == []  # straight to the PUT
        assert len(rights.wire.to_groups("PUT")) == 1
        assert rights.members() == {5, 6}


def test_an_addition_answered_done_that_added_nobody_fails_and_the_next_run_adds_them(
    scim_tenants: ScimTenants, tmp_path: Path
) -> None:
    rule = answering(GROUP_PATCH, r'"op":"add"', Fault(FaultKind.ANSWER, status=204), times=1)
    with behind_proxy(scim_tenants, tmp_path, rule) as (rights, _):
        rights.grant(1)
        rights.grant(2, begin="2026-12-02")
        rights.sync(D(2026, 12, 1))  # person 1: with the group's create

        failed = rights.run(D(2026, 12, 2))
        assert failed.exit_code == 1
        assert [(f.operation, f.reason) for f in failed.failures] == [
            (
                "grant",
                "the target answered the addition as done, but the member is not in the group",
            )
        ]
        assert failed.counts["grant"] == 0
        assert journal(rights, failed.run_id) == [("grant", "intent"), ("grant", "failed")]
        assert rights.members() == {1}

        again = rights.sync(D(2026, 12, 3))
        assert again.counts["grant"] == 1
        assert rights.members() == {1, 2}


def test_a_removal_no_form_achieves_fails_keeps_the_rung_and_is_tried_again_next_run(
    scim_tenants: ScimTenants, tmp_path: Path
) -> None:
    refusing = [True]
    not_implemented = scim_error(501, "not implemented")
    refuse_all = first_of(
        answering(GROUP_PATCH, r'"op":"remove"', not_implemented),
        answering(r"^PUT .*/Groups/", r"", not_implemented),
    )

    def rule(method: str, path: str, body: bytes) -> Fault | None:
        return refuse_all(method, path, body) if refusing[0] else None

    with behind_proxy(scim_tenants, tmp_path, rule) as (rights, _):
        grant_two_ending_then_two_more(rights)
        rights.sync(D(2026, 12, 1))

        failed = rights.run(D(2026, 12, 11))
        assert failed.exit_code == 1
        assert failed.counts["withdraw"] == 0
        assert [f.operation for f in failed.failures] == ["withdraw", "withdraw"]
        assert "failed in every form" in failed.failures[0].reason
        assert removals(rights) == [["or"], ["filter", "filter"], ["values"]]
        assert len(rights.wire.to_groups("PUT")) == 1
        assert profile(rights).member_removal is MemberRemoval.FILTER  # nothing worked
        assert rights.members() == {1, 2, 3, 4, 5}

        refusing[0] = False
        again = rights.sync(D(2026, 12, 12))
        assert again.counts["withdraw"] == 2
        assert rights.members() == {3, 4, 5}


def test_a_group_create_whose_answer_was_lost_is_found_again_not_duplicated(
    scim_tenants: ScimTenants, tmp_path: Path
) -> None:
    lose_the_answer = nth(1, Fault(FaultKind.DROP_AFTER), pattern=r"^POST /.*/Groups$")
    tenant = scim_tenants.new()
    with fault_proxy(scim_tenants.root, lose_the_answer) as proxy:
        path = tenant.base_url.removeprefix(scim_tenants.root)
        server = ScimServer(proxy.base_url(path), tenant.log, tenant.acmidm)
        rights = Rights(server, tmp_path, [person(n) for n in (1, 2)])
        rights.extra_config = FAST_RETRIES
        rights.grant(1)
        rights.grant(2)
        report = rights.sync(D(2026, 12, 1))
        assert [seen.fault for seen in proxy.faults()] == [FaultKind.DROP_AFTER]
        assert report.counts["grant"] == 2
        assert len(group_creates(rights)) == 1  # the lost one: found by name, not sent again
        assert rights.members() == {1, 2}  # one group (`group()` checks), with both members
        assert rights.sync(D(2026, 12, 2)).counts["grant"] == 0


def test_a_removal_refused_when_retried_after_a_lost_answer_is_found_done_and_teaches_nothing(
    scim_tenants: ScimTenants, tmp_path: Path
) -> None:
    # The first attempt is carried out but its answer lost; the retry finds nothing left to
    # remove and is answered 400, as some targets answer a filter that matches nothing.
    in_turn = iter([Fault(FaultKind.DROP_AFTER), scim_error(400, "no member matches", "noTarget")])
    removes = answering(GROUP_PATCH, r'"op":"remove"', FORWARD)

    def rule(method: str, path: str, body: bytes) -> Fault | None:
        return next(in_turn, None) if removes(method, path, body) else None

    with behind_proxy(scim_tenants, tmp_path, rule, FAST_RETRIES) as (rights, proxy):
        grant_two_ending_then_two_more(rights)
        rights.sync(D(2026, 12, 1))
        report = rights.sync(D(2026, 12, 11))
        assert [seen.fault for seen in proxy.faults()] == [FaultKind.DROP_AFTER, FaultKind.ANSWER]
        assert report.counts["withdraw"] == 2
        assert removals(rights) == [["or"], ["or"]]  # the attempt, the retry; no other form
        assert rights.members() == {3, 4, 5}
        assert profile(rights).member_removal is MemberRemoval.FILTER
        assert learned(report) == []
