"""TargetClient's JSON paths against a real scim2-server: creates from the mapping's JSON, the
target's size, the one-request lookup of a new person, Bulk, and member removals in each form of
the member-removal ladder."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx2
import pytest
from scim2_models import Group

from connector.apply import TargetIndex
from connector.scim_models import ACMIDM_USER_SCHEMA, ENTERPRISE_USER_SCHEMA
from connector.target import bulk, members
from connector.target.client import TargetClient
from connector.target.errors import Conflict, Rejected
from connector.target.members import add_operations, removal_operations
from connector.target.profile import MemberRemoval
from tests.factories import make_nn

if TYPE_CHECKING:
    from tests.integration.conftest import RequestRecorder, ScimServer

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

NN = make_nn(dt.date(1985, 7, 30))
OTHER_NN = make_nn(dt.date(1990, 1, 2), serial=101)
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"


def resource(n: int, national_id: str | None = None, **changes: Any) -> dict[str, Any]:
    """A User as the mapping emits it (JSON, with the enterprise and ACM/IDM extensions)."""
    body: dict[str, Any] = {
        "schemas": [CORE, ENTERPRISE_USER_SCHEMA, ACMIDM_USER_SCHEMA],
        "userName": f"medewerker{n}@gent.be",
        "externalId": f"person-{n}",
        "displayName": f"Medewerker {n}",
        "name": {"givenName": "Jan", "familyName": f"Peeters{n}"},
        "emails": [{"value": f"medewerker{n}@gent.be", "type": "work", "primary": True}],
        "active": True,
        ENTERPRISE_USER_SCHEMA: {"employeeNumber": f"E{n:04d}", "department": "ICT"},
        ACMIDM_USER_SCHEMA: {
            "nationalId": national_id or make_nn(dt.date(1980, 1, 1) + dt.timedelta(days=n))
        },
    }
    body.update(changes)
    return body


@asynccontextmanager
async def connected(
    server: ScimServer,
    recorder: RequestRecorder | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> AsyncIterator[TargetClient]:
    """A discovered TargetClient; the recorder sees every request after discovery."""
    hooks: dict[str, list[Callable[..., Any]]] = {"request": [recorder]} if recorder else {}
    async with httpx2.AsyncClient(
        base_url=server.base_url, event_hooks=hooks, transport=transport
    ) as http:
        target = TargetClient(http)
        await target.discover()
        if recorder:
            recorder.clear()
        yield target


def read(server: ScimServer, path: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx2.get(f"{server.base_url}{path}").json()
    return body


# -- users ---------------------------------------------------------------------------------------


async def test_a_user_created_from_json_is_stored_as_sent_and_only_its_id_is_read(
    scim_server: ScimServer, recorded_requests: RequestRecorder
) -> None:
    async with connected(scim_server, recorded_requests) as target:
        scim_id = await target.create_user_json(resource(1, NN))

    stored = read(scim_server, f"/Users/{scim_id}")
    assert stored["externalId"] == "person-1" and stored[ACMIDM_USER_SCHEMA]["nationalId"] == NN
    assert stored[ENTERPRISE_USER_SCHEMA]["department"] == "ICT"
    (sent,) = recorded_requests.requests
    assert (sent.method, sent.url) == ("POST", f"{scim_server.base_url}/Users")
    assert json.loads(sent.body) == resource(1, NN)


async def test_a_json_create_of_a_taken_user_name_is_a_conflict_without_the_national_number(
    scim_server: ScimServer,
) -> None:
    async with connected(scim_server) as target:
        await target.create_user_json(resource(1, NN))
        with pytest.raises(Conflict) as conflict:
            await target.create_user_json(resource(2, OTHER_NN, userName="MEDEWERKER1@gent.be"))

    assert (conflict.value.status, conflict.value.scim_type) == (409, "uniqueness")
    assert NN not in str(conflict.value) and OTHER_NN not in str(conflict.value)


async def test_a_target_without_the_acmidm_extension_gets_json_users_without_it(
    scim_server_plain: ScimServer,
) -> None:
    async with connected(scim_server_plain) as target:
        scim_id = await target.create_user_json(resource(1, NN))
        assert not target.fits_user_paths([f"{ACMIDM_USER_SCHEMA}:rights"])
        assert target.fits_user_paths([f"{ENTERPRISE_USER_SCHEMA}:department", "active"])

    stored = read(scim_server_plain, f"/Users/{scim_id}")
    assert ACMIDM_USER_SCHEMA not in stored and ACMIDM_USER_SCHEMA not in stored["schemas"]
    assert stored[ENTERPRISE_USER_SCHEMA]["department"] == "ICT"


async def test_the_target_says_how_many_users_it_holds(scim_server: ScimServer) -> None:
    async with connected(scim_server) as target:
        assert await target.count_users() == 0
        for n in range(3):
            await target.create_user_json(resource(n))
        assert await target.count_users() == 3


async def test_one_search_finds_a_person_by_external_id_national_number_or_user_name(
    scim_server: ScimServer, recorded_requests: RequestRecorder
) -> None:
    async with connected(scim_server, recorded_requests) as target:
        by_external_id = await target.create_user_json(resource(1))
        by_national_id = await target.create_user_json(resource(2, NN, externalId="other"))
        by_user_name = await target.create_user_json(
            resource(3, OTHER_NN, externalId="another", userName="Person-1@GENT.be")
        )
        await target.create_user_json(resource(4))
        recorded_requests.clear()
        found = await target.find_user_candidates("person-1", NN, "person-1@gent.be")

    assert sorted(user.id or "" for user in found) == sorted(
        [by_external_id, by_national_id, by_user_name]
    )
    (search,) = recorded_requests.requests
    assert (search.method, search.url) == ("POST", f"{scim_server.base_url}/Users/.search")
    assert NN.encode() in search.body and NN not in search.url
    # Classified with the lookup's precedence: externalId, then national number, then userName.
    index = TargetIndex()
    for user in found:
        index.add(user)
    assert index.match("person-1", NN, "person-1@gent.be") == by_external_id
    assert index.match("nobody", NN, "person-1@gent.be") == by_national_id
    assert index.match("nobody", None, "PERSON-1@gent.be") == by_user_name
    assert index.match("nobody", None, "nobody@gent.be") is None


# -- Bulk ----------------------------------------------------------------------------------------


async def test_a_bulk_request_creates_patches_and_reports_each_operation_on_its_own(
    scim_server: ScimServer,
) -> None:
    async with connected(scim_server) as target:
        existing = await target.create_user_json(resource(1))
        operations = [
            bulk.operation("new", "POST", "/Users", resource(2), "b1"),
            bulk.operation(
                "taken", "POST", "/Users", resource(3, userName="medewerker1@gent.be"), "b2"
            ),
            bulk.operation(
                "patched", "PATCH", f"/Users/{existing}", bulk.patch_data([("active", False)])
            ),
            bulk.operation("gone", "PATCH", "/Users/nobody", bulk.patch_data([("active", False)])),
        ]
        response = await target.send_bulk(bulk.request_body(operations))

    new, taken, patched, gone = bulk.outcomes(operations, response)
    assert new is not None and new.status == 201 and new.resource_id
    assert read(scim_server, f"/Users/{new.resource_id}")["externalId"] == "person-2"
    assert taken is not None and (taken.status, taken.scim_type) == (409, "uniqueness")
    assert patched is not None and patched.ok and patched.resource_id == existing
    assert read(scim_server, f"/Users/{existing}")["active"] is False
    assert gone is not None and gone.status == 404


# -- member removals in each form of the ladder ----------------------------------------------------


async def test_removing_several_members_is_one_remove_operation_with_an_or_filter(
    scim_server: ScimServer, recorded_requests: RequestRecorder
) -> None:
    async with connected(scim_server, recorded_requests) as target:
        ids = [await target.create_user_json(resource(n)) for n in range(5)]
        group = await target.create_group(Group(display_name="Premiezoeker Gebruiker"))
        assert group.id
        await target.patch_group(group.id, add_operations(ids))
        recorded_requests.clear()
        await target.patch_group(group.id, removal_operations(MemberRemoval.FILTER, ids[1:4]))

    (patch,) = recorded_requests.writes
    operations = json.loads(patch.body)["Operations"]
    assert operations == [
        {
            "op": "remove",
            "path": " or ".join(f'value eq "{i}"' for i in ids[1:4]).join(("members[", "]")),
        }
    ]
    members = read(scim_server, f"/Groups/{group.id}").get("members", [])
    assert sorted(member["value"] for member in members) == sorted([ids[0], ids[4]])


async def test_removals_beyond_the_per_operation_limit_are_split_in_several_operations(
    scim_server: ScimServer, recorded_requests: RequestRecorder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(members, "MAX_MEMBERS_PER_REMOVE", 2)
    async with connected(scim_server, recorded_requests) as target:
        ids = [await target.create_user_json(resource(n)) for n in range(5)]
        group = await target.create_group(Group(display_name="Premiezoeker Gebruiker"))
        assert group.id
        await target.patch_group(group.id, add_operations(ids))
        recorded_requests.clear()
        await target.patch_group(group.id, removal_operations(MemberRemoval.FILTER, ids))

    (patch,) = recorded_requests.writes
    paths = [operation["path"] for operation in json.loads(patch.body)["Operations"]]
    assert [path.count("value eq") for path in paths] == [2, 2, 1]
    assert read(scim_server, f"/Groups/{group.id}").get("members", []) == []


async def test_one_filtered_remove_per_member_removes_them_all(scim_server: ScimServer) -> None:
    async with connected(scim_server) as target:
        ids = [await target.create_user_json(resource(n)) for n in range(3)]
        group = await target.create_group(Group(display_name="Premiezoeker Gebruiker"))
        assert group.id
        await target.patch_group(group.id, add_operations(ids))
        await target.patch_group(group.id, removal_operations(MemberRemoval.VALUE_FILTER, ids[:2]))

    members = read(scim_server, f"/Groups/{group.id}").get("members", [])
    assert [member["value"] for member in members] == [ids[2]]


async def test_scim2_server_refuses_a_remove_with_a_value_list_with_400(
    scim_server: ScimServer,
) -> None:
    async with connected(scim_server) as target:
        ids = [await target.create_user_json(resource(n)) for n in range(2)]
        group = await target.create_group(Group(display_name="Premiezoeker Gebruiker"))
        assert group.id
        await target.patch_group(group.id, add_operations(ids))
        with pytest.raises(Rejected) as refused:
            await target.patch_group(group.id, removal_operations(MemberRemoval.VALUE_LIST, ids))

    assert refused.value.status == 400  # the ladder's next rung: a PUT of the member list
    assert len(read(scim_server, f"/Groups/{group.id}").get("members", [])) == 2
