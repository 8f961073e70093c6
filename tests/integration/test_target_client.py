"""TargetClient against a real scim2-server on loopback (and httpx2.MockTransport for what a real
server does not produce on demand: 429/503 with Retry-After, dropped connections, no discovery).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx2
import pytest
from scim2_models import (
    Email,
    EnterpriseUser,
    Group,
    GroupMember,
    Name,
    PatchOperation,
    Schema,
)

from connector.scim_models import (
    ACMIDM_USER_SCHEMA,
    AcmIdmUser,
    AcmUser,
    Right,
    WorkRelation,
    acmidm_of,
    national_id_of,
)
from connector.target.client import ScimUser, TargetClient
from connector.target.discovery import CapabilityOverrides
from connector.target.errors import (
    Conflict,
    NotFound,
    PreconditionFailed,
    Rejected,
    TargetUnavailable,
    parse_retry_after,
)
from connector.target.members import add_operations, removal_operations
from connector.target.profile import MemberRemoval
from tests.factories import GENT, IGS, make_nn

if TYPE_CHECKING:
    from tests.integration.conftest import RequestRecorder, ScimServer

pytestmark = pytest.mark.anyio
integration = pytest.mark.integration

NN = make_nn(dt.date(1985, 7, 30))
OTHER_NN = make_nn(dt.date(1990, 1, 2), serial=101)


@asynccontextmanager
async def connected(
    server: ScimServer,
    recorder: RequestRecorder | None = None,
    overrides: CapabilityOverrides | None = None,
) -> AsyncIterator[TargetClient]:
    """A discovered TargetClient on the server; the recorder sees every request after discovery."""
    hooks: dict[str, list[Callable[..., Any]]] = {"request": [recorder]} if recorder else {}
    async with httpx2.AsyncClient(base_url=server.base_url, event_hooks=hooks) as http:
        target = TargetClient(http)
        await target.discover(overrides)
        if recorder:
            recorder.clear()
        yield target


def person(n: int, national_id: str | None = None) -> ScimUser:
    """A complete User as the connector pushes it: core, enterprise and ACM/IDM attributes."""
    email = f"medewerker{n}@gent.be"
    user = AcmUser(
        user_name=email,
        external_id=f"person-{n}",
        display_name=f"Medewerker {n}",
        name=Name(given_name="Jan", family_name=f"Peeters{n}"),
        emails=[Email(value=email, type="work", primary=True)],
        active=True,
    )
    user[EnterpriseUser] = EnterpriseUser(
        employee_number=f"E{n:04d}", organization="Gemeente Gent", department="ICT"
    )
    user[AcmIdmUser] = AcmIdmUser(
        national_id=national_id or make_nn(dt.date(1980, 1, 1) + dt.timedelta(days=n)),
        work_relations=[
            WorkRelation(
                organization_code=GENT,
                organization_name="Gemeente Gent",
                email=email,
                user_type="employee",
                valid_from="2024-01-01",
                valid_to="2025-12-31",
                active=True,
            ),
            WorkRelation(
                organization_code=IGS,
                email=f"extern{n}@igs.be",
                user_type="external",
                employer_organization_code=IGS,
                valid_from="2024-06-01",
                active=False,
            ),
        ],
        rights=[
            Right(
                value="Premiezoeker Gebruiker",
                organization_code=GENT,
                valid_from="2024-02-01",
                valid_to="2024-12-31",
            )
        ],
    )
    return user


# -- Discovery --------------------------------------------------------------------------------


@integration
async def test_discovery_on_a_server_with_the_acmidm_extension(
    scim_server_module: ScimServer,
) -> None:
    async with connected(scim_server_module) as target:
        capabilities = target.capabilities

    assert capabilities.acmidm_extension
    assert capabilities.patch and capabilities.etag and capabilities.filter and capabilities.sort
    assert capabilities.search
    assert capabilities.bulk
    assert capabilities.bulk_max_operations == 1000
    assert capabilities.filter_max_results == 1000


@integration
async def test_discovery_on_a_server_without_it(scim_server_plain: ScimServer) -> None:
    async with connected(scim_server_plain) as target:
        assert not target.capabilities.acmidm_extension
        assert target.capabilities.search


@integration
async def test_the_served_schema_file_matches_the_model(scim_server_module: ScimServer) -> None:
    async with httpx2.AsyncClient(base_url=scim_server_module.base_url) as http:
        response = await http.get(f"/Schemas/{ACMIDM_USER_SCHEMA}")
    served = Schema.model_validate(response.json())

    assert characteristics(served) == characteristics(AcmIdmUser.to_schema())


def characteristics(schema: Schema) -> list[Any]:
    """Every attribute characteristic but the descriptions, which the JSON file may word better."""
    dumped = schema.model_dump()

    def strip(attributes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {
                key: strip(value) if key == "subAttributes" else value
                for key, value in attribute.items()
                if key != "description"
            }
            for attribute in attributes
        ]

    return [dumped["id"], strip(dumped["attributes"])]


# -- Users ------------------------------------------------------------------------------------


@integration
async def test_create_and_read_back_every_attribute(scim_server: ScimServer) -> None:
    async with connected(scim_server) as target:
        created = await target.create_user(person(1, NN))
        assert created.id
        read = await target.get_user(created.id)

    assert read.user_name == "medewerker1@gent.be"
    assert read.external_id == "person-1"
    assert read.name and read.name.family_name == "Peeters1"
    assert read.emails and read.emails[0].value == "medewerker1@gent.be" and read.emails[0].primary
    assert read.active is True
    enterprise = read[EnterpriseUser]
    assert (enterprise.employee_number, enterprise.organization, enterprise.department) == (
        "E0001",
        "Gemeente Gent",
        "ICT",
    )
    acmidm, sent = acmidm_of(read), acmidm_of(person(1, NN))
    assert acmidm and sent
    assert acmidm.national_id == NN
    assert acmidm.work_relations == sent.work_relations
    assert acmidm.rights == sent.rights
    assert acmidm.work_relations and acmidm.work_relations[1].valid_to is None
    assert read.meta and read.meta.version


@integration
async def test_find_by_external_id_is_exact(
    scim_server: ScimServer, recorded_requests: RequestRecorder
) -> None:
    async with connected(scim_server, recorded_requests) as target:
        first = await target.create_user(person(1))
        await target.create_user(person(2))
        recorded_requests.clear()

        found = await target.find_users_by_external_id("person-1")
        assert [user.id for user in found] == [first.id]
        assert await target.find_users_by_external_id("PERSON-1") == []
        assert await target.find_users_by_external_id("person-") == []

    assert all(request.method == "GET" for request in recorded_requests.requests)


@integration
async def test_find_by_national_id_posts_a_search_and_keeps_it_out_of_urls(
    scim_server: ScimServer, recorded_requests: RequestRecorder
) -> None:
    async with connected(scim_server, recorded_requests) as target:
        created = await target.create_user(person(1, NN))
        await target.create_user(person(2, OTHER_NN))

        found = await target.find_users_by_national_id(NN)
        assert await target.find_users_by_national_id(make_nn(dt.date(1970, 5, 5))) == []

    assert [user.id for user in found] == [created.id]
    assert national_id_of(found[0]) == NN
    searches = [request for request in recorded_requests.requests if "/.search" in request.url]
    assert [(request.method, request.url) for request in searches] == 2 * [
        ("POST", f"{scim_server.base_url}/Users/.search")
    ]
    assert NN.encode() in searches[0].body
    assert not [url for url in recorded_requests.urls if NN in url or OTHER_NN in url]


@integration
async def test_find_by_national_id_finds_nothing_without_search_or_extension(
    scim_server: ScimServer,
    scim_server_plain: ScimServer,
    recorded_requests: RequestRecorder,
) -> None:
    no_search = CapabilityOverrides(search=False)
    async with connected(scim_server, recorded_requests, no_search) as target:
        await target.create_user(person(1, NN))
        recorded_requests.clear()
        assert await target.find_users_by_national_id(NN) == []
    async with connected(scim_server_plain, recorded_requests) as target:
        assert await target.find_users_by_national_id(NN) == []

    assert recorded_requests.requests == []


@integration
async def test_find_by_user_name_ignores_case(scim_server: ScimServer) -> None:
    async with connected(scim_server) as target:
        created = await target.create_user(person(1))

        found = await target.find_users_by_user_name("Medewerker1@GENT.be")
        assert await target.find_users_by_user_name("medewerker1@gent") == []

    assert [user.id for user in found] == [created.id]


@integration
async def test_patch_replaces_attributes_under_an_etag(scim_server: ScimServer) -> None:
    async with connected(scim_server) as target:
        created = await target.create_user(person(1, NN))
        assert created.id and created.meta and created.meta.version
        relation = WorkRelation(organization_code=GENT, email="nieuw@gent.be", active=True)
        operations: list[PatchOperation[Any]] = [
            PatchOperation(op="replace", path="displayName", value="Jan Peeters"),
            PatchOperation(
                op="replace",
                path=f"{ACMIDM_USER_SCHEMA}:workRelations",
                value=[relation],
            ),
        ]

        await target.patch_user(created.id, operations, etag=created.meta.version)
        read = await target.get_user(created.id)
        with pytest.raises(PreconditionFailed) as stale:
            await target.patch_user(created.id, operations, etag=created.meta.version)

    assert read.display_name == "Jan Peeters"
    acmidm = acmidm_of(read)
    assert acmidm and acmidm.work_relations == [relation]
    assert acmidm.national_id == NN
    assert stale.value.status == 412


@integration
async def test_deactivate_with_a_patch(scim_server: ScimServer) -> None:
    async with connected(scim_server) as target:
        created = await target.create_user(person(1))
        assert created.id

        deactivate: list[PatchOperation[Any]] = [
            PatchOperation(op="replace", path="active", value=False)
        ]
        await target.patch_user(created.id, deactivate)

        assert (await target.get_user(created.id)).active is False


@integration
async def test_replace_and_delete(scim_server: ScimServer) -> None:
    async with connected(scim_server) as target:
        created = await target.create_user(person(1))
        assert created.id
        created.title = "Dossierbeheerder"

        replaced = await target.replace_user(created)
        await target.delete_user(created.id)

        with pytest.raises(NotFound):
            await target.get_user(created.id)
    assert replaced.title == "Dossierbeheerder"


@integration
async def test_duplicates_are_conflicts_without_the_national_number(
    scim_server: ScimServer,
) -> None:
    async with connected(scim_server) as target:
        await target.create_user(person(1, NN))
        same_user_name = person(2, OTHER_NN)
        same_user_name.user_name = "MEDEWERKER1@gent.be"
        same_national_id = person(3, NN)

        with pytest.raises(Conflict) as by_user_name:
            await target.create_user(same_user_name)
        with pytest.raises(Conflict) as by_national_id:
            await target.create_user(same_national_id)

    for conflict in (by_user_name.value, by_national_id.value):
        assert conflict.status == 409
        assert conflict.scim_type == "uniqueness"
        assert NN not in str(conflict) and OTHER_NN not in str(conflict)


@integration
async def test_unknown_ids_are_not_found(scim_server: ScimServer) -> None:
    async with connected(scim_server) as target:
        with pytest.raises(NotFound) as read:
            await target.get_user("does-not-exist")
        with pytest.raises(NotFound):
            await target.patch_user(
                "does-not-exist", [PatchOperation(op="replace", path="active", value=False)]
            )
        with pytest.raises(NotFound):
            await target.delete_user("does-not-exist")
        with pytest.raises(NotFound):
            await target.get_group("does-not-exist")

    assert read.value.status == 404
    assert read.value.operation == "read user"


@integration
async def test_a_plain_server_gets_core_and_enterprise_only(
    scim_server_plain: ScimServer, recorded_requests: RequestRecorder
) -> None:
    async with connected(scim_server_plain, recorded_requests) as target:
        created = await target.create_user(person(1, NN))
        assert created.id
        read = await target.get_user(created.id)
        with pytest.raises(Rejected) as rejected:
            await target.patch_user(
                created.id,
                [PatchOperation(op="replace", path=f"{ACMIDM_USER_SCHEMA}:nationalId", value=NN)],
            )

    assert read[EnterpriseUser].employee_number == "E0001"
    assert acmidm_of(read) is None
    assert not [request for request in recorded_requests.requests if NN.encode() in request.body]
    assert rejected.value.status is None  # refused before sending
    assert [request.method for request in recorded_requests.writes] == ["POST"]


@integration
async def test_iter_users_pages_with_start_index_and_count(
    scim_server: ScimServer, recorded_requests: RequestRecorder
) -> None:
    async with connected(scim_server, recorded_requests) as target:
        for n in range(25):
            await target.create_user(person(n))
        recorded_requests.clear()

        users = [user async for user in target.iter_users(page_size=10)]

    assert len({user.id for user in users}) == 25
    assert sorted(user.external_id or "" for user in users) == sorted(
        f"person-{n}" for n in range(25)
    )
    pages = [httpx2.URL(url).params for url in recorded_requests.urls]
    assert [(page["startIndex"], page["count"]) for page in pages] == [
        ("1", "10"),
        ("11", "10"),
        ("21", "10"),
    ]


# -- Groups -----------------------------------------------------------------------------------


@integration
async def test_group_members_are_added_and_removed_by_patch(
    scim_server: ScimServer, recorded_requests: RequestRecorder
) -> None:
    async with connected(scim_server, recorded_requests) as target:
        ids = [(await target.create_user(person(n))).id or "" for n in range(3)]
        group = await target.create_group(Group(display_name="Premiezoeker Gebruiker"))
        assert group.id
        found = await target.find_groups_by_display_name("premiezoeker gebruiker")
        assert [each.id for each in found] == [group.id]
        recorded_requests.clear()

        added = await target.patch_group(group.id, add_operations(ids))
        removed = await target.patch_group(
            group.id, removal_operations(MemberRemoval.FILTER, [ids[0]])
        )
        read = await target.get_group(group.id)

    writes = recorded_requests.writes
    assert [(request.method, request.url) for request in writes] == [
        ("PATCH", f"{scim_server.base_url}/Groups/{group.id}")
    ] * 2
    assert [[op["op"] for op in json.loads(w.body)["Operations"]] for w in writes] == [
        ["add"],
        ["remove"],
    ]
    assert (added, removed) == (None, None)  # 204: what the group holds, a read tells
    assert sorted(member.value or "" for member in read.members or []) == sorted(ids[1:])


@integration
async def test_groups_are_found_by_listing_ignoring_case_without_their_members(
    scim_server: ScimServer, recorded_requests: RequestRecorder
) -> None:
    async with connected(scim_server, recorded_requests) as target:
        user = (await target.create_user(person(1))).id or ""
        members = [GroupMember(value=user)]
        wanted = await target.create_group(Group(display_name="Premiezoeker Gebruiker"))
        await target.create_group(Group(display_name="Premiezoeker Beheerder", members=members))
        recorded_requests.clear()

        found = await target.find_groups_by_listing("PREMIEZOEKER gebruiker")

    assert [group.id for group in found] == [wanted.id]
    (listing,) = recorded_requests.urls
    assert "excludedAttributes=members" in listing


@integration
async def test_replace_group(scim_server: ScimServer) -> None:
    async with connected(scim_server) as target:
        group = await target.create_group(Group(display_name="Premiezoeker Gebruiker"))
        group.display_name = "Premiezoeker Beheerder"

        replaced = await target.replace_group(group)

    assert replaced.display_name == "Premiezoeker Beheerder"


# -- What no real server does on demand (httpx2.MockTransport) --------------------------------

SPC = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
    "patch": {"supported": True},
    "bulk": {"supported": False, "maxOperations": 0, "maxPayloadSize": 0},
    "filter": {"supported": True, "maxResults": 100},
    "changePassword": {"supported": False},
    "sort": {"supported": False},
    "etag": {"supported": False},
}


LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def scim_json(body: dict[str, Any]) -> httpx2.Response:
    """A 200 SCIM response."""
    return httpx2.Response(200, json=body, headers={"Content-Type": "application/scim+json"})


def scim_error(status: int, detail: str, scim_type: str | None = None) -> httpx2.Response:
    """A SCIM error response."""
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": str(status)}
    body |= {"detail": detail} | ({"scimType": scim_type} if scim_type else {})
    return httpx2.Response(status, json=body, headers={"Content-Type": "application/scim+json"})


def minimal_target(request: httpx2.Request) -> httpx2.Response:
    """A target without /ResourceTypes nor .search, failing every resource request its own way."""
    path = request.url.path
    if path.endswith("/ServiceProviderConfig"):
        return scim_json(SPC)
    if path.endswith("/Schemas"):
        schemas = [{"id": ACMIDM_USER_SCHEMA, "name": "AcmIdmUser", "attributes": []}]
        return scim_json({"schemas": [LIST], "totalResults": 1, "Resources": schemas})
    if path.endswith(("/ResourceTypes", "/.search")):
        return scim_error(404, "no such endpoint")
    if request.method == "POST":
        return httpx2.Response(503, text="<html>busy</html>", headers={"Retry-After": "7"})
    if request.method == "PUT":
        return scim_error(429, "slow down", "tooMany")
    if request.method == "PATCH":
        return scim_error(400, f"nationalId {NN} is not valid", "invalidValue")
    raise httpx2.ConnectError("connection refused", request=request)


async def test_failures_map_to_connector_exceptions() -> None:
    transport = httpx2.MockTransport(minimal_target)
    async with httpx2.AsyncClient(base_url="http://target/v2", transport=transport) as http:
        target = TargetClient(http)
        capabilities = await target.discover()
        user = person(1, NN)
        user.id = "u1"

        with pytest.raises(TargetUnavailable) as busy:
            await target.create_user(user)
        with pytest.raises(TargetUnavailable) as throttled:
            await target.replace_user(user)
        with pytest.raises(Rejected) as rejected:
            await target.patch_user("u1", [PatchOperation(op="replace", path="active", value=1)])
        with pytest.raises(TargetUnavailable) as unreachable:
            await target.get_user("u1")

    assert capabilities.acmidm_extension  # listed in /Schemas, no /ResourceTypes to deny it
    assert not capabilities.search
    assert (busy.value.status, busy.value.retry_after) == (503, 7.0)
    assert (throttled.value.status, throttled.value.scim_type) == (429, "tooMany")
    assert rejected.value.status == 400 and NN not in str(rejected.value)
    assert "85.07.30-***.**" in str(rejected.value)
    assert unreachable.value.status is None and "ConnectError" in str(unreachable.value)


def test_retry_after_is_seconds_or_an_http_date() -> None:
    now = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)

    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after("Sat, 01 Mar 2025 12:00:30 GMT", now) == 30.0
    assert parse_retry_after("Sat, 01 Mar 2025 11:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


async def test_discover_comes_first() -> None:
    async with httpx2.AsyncClient(base_url="http://target/v2") as http:
        target = TargetClient(http)
        with pytest.raises(RuntimeError):
            await target.get_user("u1")
