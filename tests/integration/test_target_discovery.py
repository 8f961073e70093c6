"""Discovery and optional probes on targets that are not quite RFC 7643/7644.

Each test imitates one kind of behaviour seen on independent servers with a small stub
(httpx2.MockTransport behind the connector's own retrying transport), or puts the fault proxy
in front of scim2-server, and checks that discovery takes the conservative path instead of
stopping the run. django-scim2, which has several of these behaviours at once, is covered end
to end in test_interop.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import pytest

from connector import jobs
from connector.config import load_config
from connector.nationalid import mask_national_ids
from connector.target.client import TargetClient, relative_endpoint
from connector.target.errors import TargetUnavailable
from connector.target.retry import RetryPolicy
from connector.target.transport import RetryingTransport
from tests.factories import HR_FIELDS, hr_row, write_csv
from tests.faultproxy import FORWARD, Fault, FaultKind, fault_proxy
from tests.integration.conftest import ScimTenants
from tests.postgres import state_toml

pytestmark = pytest.mark.anyio

LIST = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
SPC = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
    "patch": {"supported": True},
    "bulk": {"supported": False},
    "filter": {"supported": True, "maxResults": 50},
}


def resource_types(prefix: str) -> dict[str, Any]:
    """/ResourceTypes as a server publishing endpoints from the host root, no totalResults."""
    return {
        "schemas": [LIST],
        "Resources": [
            {
                "id": "User",
                "name": "User",
                "endpoint": f"{prefix}/Users",
                "schema": CORE_USER,
                "schemaExtensions": [{"schema": ENTERPRISE, "required": False}],
            },
            {
                "id": "Group",
                "name": "Group",
                "endpoint": f"{prefix}/Groups",
                "schema": "urn:ietf:params:scim:schemas:core:2.0:Group",
            },
        ],
    }


SCHEMAS = {"schemas": [LIST], "Resources": [{"id": CORE_USER, "name": "User", "attributes": []}]}

Handler = Callable[[httpx2.Request], httpx2.Response]


def json_answer(body: object, status: int = 200) -> httpx2.Response:
    return httpx2.Response(status, json=body, headers={"Content-Type": "application/scim+json"})


def stub(routes: dict[str, Callable[[], httpx2.Response]], seen: list[str]) -> Handler:
    """A target answering by the last path segment; everything else is 404."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        seen.append(f"{request.method} {request.url.path}")
        route = routes.get(request.url.path.rsplit("/", 1)[-1])
        return route() if route else json_answer({"detail": "no such endpoint"}, 404)

    return handle


async def discovered(handler: Handler, base_url: str = "http://target/scim/v2") -> TargetClient:
    policy = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.01)
    transport = RetryingTransport(httpx2.MockTransport(handler), policy)
    http = httpx2.AsyncClient(base_url=base_url, transport=transport)
    client = TargetClient(http)
    await client.discover()
    return client


async def test_list_responses_without_total_results_are_read() -> None:
    seen: list[str] = []
    routes = {
        "ServiceProviderConfig": lambda: json_answer(SPC),
        "ResourceTypes": lambda: json_answer(resource_types("/scim/v2")),
        "Schemas": lambda: json_answer(SCHEMAS),
    }
    client = await discovered(stub(routes, seen))
    assert client.capabilities.patch and client.capabilities.filter
    assert client.user_extensions == frozenset({ENTERPRISE.casefold()})
    assert client.notes == []


async def test_an_endpoint_given_from_the_host_root_is_not_joined_twice() -> None:
    seen: list[str] = []
    routes = {
        "ServiceProviderConfig": lambda: json_answer(SPC),
        "ResourceTypes": lambda: json_answer(resource_types("/scim/v2")),
        "Users": lambda: json_answer({"schemas": [LIST], "totalResults": 7, "Resources": []}),
    }
    client = await discovered(stub(routes, seen))
    assert client.user_endpoint == "/Users"
    assert await client.count_users() == 7
    assert seen[-1] == "GET /scim/v2/Users"


def test_endpoints_are_made_relative_to_the_base_url_whatever_their_form() -> None:
    assert relative_endpoint("/Users", "/scim/v2", "/Users") == "/Users"
    assert relative_endpoint("/scim/v2/Users", "/scim/v2", "/Users") == "/Users"
    assert relative_endpoint("https://idp.example/scim/v2/Users/", "/scim/v2", "/x") == "/Users"
    assert relative_endpoint("Users", "/v2", "/x") == "/Users"
    assert relative_endpoint(None, "/v2", "/Groups") == "/Groups"
    assert relative_endpoint("/scim/v2", "/scim/v2", "/Users") == "/Users"
    assert relative_endpoint("/v2/Users", "", "/x") == "/v2/Users"


async def test_a_garbled_answer_to_a_read_is_retried_like_a_502() -> None:
    seen: list[str] = []
    answers = iter(
        [
            httpx2.Response(200, text="<html><body>502 Bad Gateway</body></html>"),
            httpx2.Response(200, text='{"schemas": ["urn:ietf:params:scim:api:mess'),
            json_answer(resource_types("")),
        ]
    )
    routes = {
        "ServiceProviderConfig": lambda: json_answer(SPC),
        "ResourceTypes": lambda: next(answers),
        "Schemas": lambda: json_answer(SCHEMAS),
    }
    client = await discovered(stub(routes, seen))
    assert seen.count("GET /scim/v2/ResourceTypes") == 3
    assert client.user_extensions == frozenset({ENTERPRISE.casefold()})
    assert client.notes == []


async def test_missing_or_broken_announcements_give_the_conservative_assumption_once() -> None:
    seen: list[str] = []
    broken = dict(SPC, bulk={"supported": "perhaps", "maxOperations": "many"})
    routes = {
        "ServiceProviderConfig": lambda: json_answer(broken),
        "ResourceTypes": lambda: httpx2.Response(200, text="<html>login</html>"),
        "Schemas": lambda: json_answer({"detail": "boom"}, 500),
    }
    client = await discovered(stub(routes, seen))
    capabilities = client.capabilities
    assert capabilities.patch and not capabilities.bulk
    assert client.user_endpoint == "/Users"  # the RFC 7643 default
    assert len(client.notes) == 3
    assert any("'bulk' does not parse" in note for note in client.notes)
    assert any(note.startswith("read ResourceTypes") for note in client.notes)
    assert any(note.startswith("read Schemas") for note in client.notes)


async def test_an_unreachable_target_still_stops_discovery() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused", request=request)

    with pytest.raises(TargetUnavailable):
        await discovered(refuse)


async def test_the_size_probe_is_sent_once_and_its_failure_is_an_answer() -> None:
    seen: list[str] = []
    routes = {
        "ServiceProviderConfig": lambda: json_answer(SPC),
        "Users": lambda: json_answer({"detail": "count is not supported"}, 500),
    }
    client = await discovered(stub(routes, seen))
    with pytest.raises(TargetUnavailable):
        await client.count_users()
    assert seen.count("GET /scim/v2/Users") == 1


def count_refused(method: str, path: str, index: int) -> Fault:
    """A target that answers 500 to any listing of users with `count`."""
    if method == "GET" and "/Users?" in path and "count=" in path:
        return Fault(FaultKind.ERROR)
    return FORWARD


@pytest.mark.integration
@pytest.mark.usefixtures("state_backend")  # it syncs: on SQLite and on PostgreSQL
def test_a_target_that_fails_every_count_is_synced_without_it(
    scim_tenants: ScimTenants, tmp_path: Path
) -> None:
    server = scim_tenants.new()
    with fault_proxy(scim_tenants.root, count_refused) as proxy:
        base_url = proxy.base_url(server.base_url.removeprefix(scim_tenants.root))
        rows = [hr_row(n) for n in range(1, 4)]
        write_csv(tmp_path / "hr.csv", rows, fields=HR_FIELDS)
        config = tmp_path / "connector.toml"
        config.write_text(
            f'[source]\npath = "hr.csv"\n[target]\nbase_url = "{base_url}"\n'
            f'[target.auth]\nmethod = "none"\n[state]\n{state_toml(tmp_path)}',
            encoding="utf-8",
        )
        settings = load_config(config)
        report = asyncio.run(jobs.sync(settings, jobs.new_run_id(), dt.date(2026, 12, 1)))
        refused = [s for s in proxy.faults() if "count=" in s.path]
    assert report.exit_code == 0, json.dumps(report.to_json())
    assert report.counts["create"] == 3
    assert len(refused) == 1, "the size probe is optional: sent once, never retried"


def write_config(directory: Path, base_url: str, people: int = 3) -> Path:
    rows = [hr_row(n) for n in range(1, people + 1)]
    rows.append(hr_row(1, employee_id="O1", organisation_code="0212345668", email="p1@ocmw.be"))
    write_csv(directory / "hr.csv", rows, fields=HR_FIELDS)
    config = directory / "connector.toml"
    config.write_text(
        f'[source]\npath = "hr.csv"\n[target]\nbase_url = "{base_url}"\n'
        f'[target.auth]\nmethod = "none"\n[state]\n{state_toml(directory)}',
        encoding="utf-8",
    )
    return config


@pytest.mark.integration
@pytest.mark.usefixtures("state_backend")  # it syncs: on SQLite and on PostgreSQL
@pytest.mark.parametrize("server_fixture", ["scim_server_plain", "django_scim"])
def test_plan_after_a_sync_shows_what_sync_would_send_to_that_target(
    server_fixture: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """A core-only target (no ACM/IDM extension) and one that keeps one e-mail without its
    type: right after a sync, `plan` (which contacts nobody) has nothing to do, like sync."""
    server = request.getfixturevalue(server_fixture)
    settings = load_config(write_config(tmp_path, server.base_url))
    day = dt.date(2026, 12, 1)
    assert asyncio.run(jobs.sync(settings, jobs.new_run_id(), day)).exit_code == 0
    planned = jobs.plan(settings, jobs.new_run_id(), day)
    assert planned.plan is not None and planned.plan.operations == (), planned.to_json()
    again = asyncio.run(jobs.sync(settings, jobs.new_run_id(), day, full=True))
    assert sum(again.counts.values()) == 0, again.to_json()


def lying_filters(method: str, path: str, index: int) -> Fault:
    """A target whose user filters find nothing, whatever they ask for."""
    if (method == "GET" and "filter=" in path) or path.endswith("/Users/.search"):
        return Fault(FaultKind.EMPTY_LIST)
    return FORWARD


@pytest.mark.integration
@pytest.mark.usefixtures("state_backend")  # it syncs: on SQLite and on PostgreSQL
def test_a_409_that_the_filters_cannot_explain_is_found_by_listing_and_remembered(
    scim_tenants: ScimTenants, tmp_path: Path
) -> None:
    server = scim_tenants.new()
    for n in range(1, 6):  # five people already in the target, made by hand
        body = {"schemas": [CORE_USER], "userName": f"person{n}@gent.be"}
        assert httpx2.post(f"{server.base_url}/Users", json=body).status_code == 201
    with fault_proxy(scim_tenants.root, lying_filters) as proxy:
        base_url = proxy.base_url(server.base_url.removeprefix(scim_tenants.root))
        settings = load_config(write_config(tmp_path, base_url, people=1))
        day = dt.date(2026, 12, 1)
        first = asyncio.run(jobs.sync(settings, jobs.new_run_id(), day))
        lookups = [s for s in proxy.faults() if s.method == "GET"]
        lied = len(lookups)
        rows = [hr_row(n) for n in (1, 2)]
        write_csv(tmp_path / "hr.csv", rows, fields=HR_FIELDS)
        second = asyncio.run(jobs.sync(load_config(tmp_path / "connector.toml"), "r2", day))
        lied_again = len([s for s in proxy.faults() if s.method == "GET"]) - lied
    assert first.exit_code == 0, json.dumps(first.to_json())
    assert first.extra["adopted"] == 1 and first.counts["create"] == 1
    assert any(w.kind == "target" and "username" in w.message for w in first.warnings)
    users = httpx2.get(f"{server.base_url}/Users", params={"count": 100}).json()["Resources"]
    assert len(users) == 5  # adopted, not duplicated
    assert second.exit_code == 0 and second.extra["adopted"] == 1
    assert lied > 0, "the filtered lookups were asked and lied"
    assert lied_again == 0, "a filter found wrong is not asked again: the target is listed"


@pytest.mark.integration
@pytest.mark.usefixtures("state_backend")  # it syncs: on SQLite and on PostgreSQL
@pytest.mark.parametrize("full", [False, True])
def test_a_user_the_target_holds_that_does_not_parse_is_skipped_and_named_not_fatal(
    scim_tenants: ScimTenants, tmp_path: Path, full: bool
) -> None:
    """A hand-made account whose e-mail scim2-models refuses (`legacy..account@`): listing the
    target to match joiners, or reading users back, goes on without it."""
    server = scim_tenants.new()
    odd = {
        "schemas": [CORE_USER],
        "userName": "legacy.account",
        "emails": [{"value": "legacy..account@gent.be"}],
    }
    answer = httpx2.post(f"{server.base_url}/Users", json=odd)
    assert answer.status_code == 201
    odd_id = answer.json()["id"]
    settings = load_config(write_config(tmp_path, server.base_url))
    report = asyncio.run(jobs.sync(settings, jobs.new_run_id(), dt.date(2026, 12, 1), full=full))
    assert report.exit_code == 0, json.dumps(report.to_json())
    assert report.counts["create"] == 3
    unreadable = [w.message for w in report.warnings if w.kind == "unreadable"]
    # Named by its SCIM id (masked like anything else: an id may hold a run of digits that
    # reads as a national number).
    assert len(unreadable) == 1 and mask_national_ids(odd_id) in unreadable[0]
    again = asyncio.run(jobs.sync(settings, jobs.new_run_id(), dt.date(2026, 12, 1), full=True))
    assert again.exit_code == 0 and sum(again.counts.values()) == 0
