"""`check-target` against real SCIM servers on loopback: scim2-server and django-scim2.

The verdicts asserted for django-scim2 are those tests/django_target/FINDINGS.md documents.
Each check runs the command (typer's CliRunner, `--format json`); a read-only check writes
nothing (its requests are recorded), a `--write-test` leaves nothing behind in the target and
keeps what it learned in the state store.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx2
import pytest
from typer.testing import CliRunner

from connector.cli import app
from connector.config import load_config
from connector.sandbox.oauth import SandboxConfig
from connector.sandbox.server import sandbox_in_thread
from connector.state import StateStore
from connector.target.checking import job
from connector.target.profile import MemberRemoval, TargetProfile
from tests.integration.conftest import RequestRecorder, ScimServer, ScimTenants
from tests.postgres import state_location, state_toml

pytestmark = pytest.mark.integration

runner = CliRunner()
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
EMPLOYEE_NUMBER = f"{ENTERPRISE}:employeeNumber"


@dataclass
class Checked:
    """One run of `check-target --format json`: its exit code and its findings by item."""

    exit_code: int
    answer: dict[str, Any]

    def verdict(self, area: str, item: str) -> str:
        found = [
            f["verdict"] for f in self.answer["findings"] if (f["area"], f["item"]) == (area, item)
        ]
        assert len(found) == 1, (area, item, self.answer["findings"])
        return str(found[0])

    def observed(self, area: str, item: str) -> str:
        return next(
            str(f["observed"])
            for f in self.answer["findings"]
            if (f["area"], f["item"]) == (area, item)
        )

    def areas(self) -> set[str]:
        return {f["area"] for f in self.answer["findings"]}


def write_config(directory: Path, server: ScimServer) -> Path:
    config = directory / "connector.toml"
    config.write_text(
        f"""
[source]
path = "hr.csv"

[target]
base_url = "{server.base_url}"

[target.auth]
method = "none"

[state]
{state_toml(directory)}
""",
        encoding="utf-8",
    )
    return config


def check_target(config: Path, *options: str) -> Checked:
    result = runner.invoke(
        app, ["check-target", "--config", str(config), "--format", "json", *options]
    )
    return Checked(result.exit_code, json.loads(result.stdout))


def counts(server: ScimServer) -> tuple[int, int]:
    """How many users and groups the target holds."""
    users = httpx2.get(f"{server.base_url}/Users", params={"count": 0}).json()
    groups = httpx2.get(f"{server.base_url}/Groups", params={"count": 0}).json()
    return users["totalResults"], groups["totalResults"]


def seed_user(server: ScimServer, n: int) -> dict[str, Any]:
    """A user someone else made, as a read-only check finds it in the target."""
    user = {
        "schemas": [USER],
        "userName": f"person{n}@gent.be",
        "externalId": f"ext-{n}",
        "name": {"givenName": f"Given{n}", "familyName": f"Family{n}"},
        "emails": [{"value": f"person{n}@gent.be", "type": "work", "primary": True}],
        "active": True,
    }
    created = httpx2.post(f"{server.base_url}/Users", json=user)
    assert created.status_code == 201, created.text
    resource: dict[str, Any] = created.json()
    return resource


def stored_profile(directory: Path, server: ScimServer) -> TargetProfile:
    store = StateStore.open(state_location(directory))
    try:
        return store.target_profile(server.base_url)
    finally:
        store.close()


def recorded_check(config: Path, recorder: RequestRecorder) -> None:
    """A read-only check, its requests recorded."""
    settings = load_config(config)
    asyncio.run(job.check_target(settings, write_test=False, event_hooks={"request": [recorder]}))


# ---------------------------------------------------------------------------- scim2-server


@pytest.fixture
def tenant(scim_tenants: ScimTenants) -> ScimServer:
    return scim_tenants.new()


@pytest.mark.usefixtures("state_backend")  # keeps state: on SQLite and on PostgreSQL
def test_a_read_only_check_writes_nothing_and_says_so(
    tenant: ScimServer, tmp_path: Path, recorded_requests: RequestRecorder
) -> None:
    seed_user(tenant, 1)
    config = write_config(tmp_path, tenant)
    checked = check_target(config)
    assert checked.exit_code == 0
    assert checked.answer["write_test"] is False
    assert checked.verdict("user create", "write tests") == "skipped"
    assert "nothing written" in checked.observed("user create", "write tests")
    assert checked.verdict("profile", "target profile") == "skipped"
    assert StateStore.open_read_only(state_location(tmp_path)) is None  # no store made
    recorded_check(config, recorded_requests)
    assert recorded_requests.writes == []
    assert counts(tenant) == (1, 0)


def test_scim2_server_announces_what_it_does(tenant: ScimServer, tmp_path: Path) -> None:
    checked = check_target(write_config(tmp_path, tenant))
    assert checked.exit_code == 0
    for item in ("GET /ResourceTypes", "User endpoint", "Group endpoint"):
        assert checked.verdict("ResourceTypes", item) == "ok"
    assert checked.verdict("Schemas", "ACM/IDM User extension") == "ok"
    assert checked.verdict("Schemas", "enterprise User extension") == "ok"
    assert checked.verdict("reading", "GET /Users?count=0") == "ok"
    # An empty target: nothing to find, so no filter can be trusted yet.
    assert checked.verdict("filters", "externalId eq") == "unverified"


def test_read_only_filters_are_verified_against_users_already_there(
    tenant: ScimServer, tmp_path: Path
) -> None:
    seed_user(tenant, 1)
    seed_user(tenant, 2)
    checked = check_target(write_config(tmp_path, tenant))
    joined = "userName eq … or userName eq …"
    for item in ("userName eq", "externalId eq", "emails.value eq", joined):
        assert checked.verdict("filters", item) == "ok", checked.observed("filters", item)
    assert checked.verdict("reading", "paging (startIndex, count=1)") == "ok"
    assert checked.verdict("reading", "POST /Users/.search") == "ok"


@pytest.mark.usefixtures("state_backend")  # keeps state: on SQLite and on PostgreSQL
def test_write_test_on_scim2_server_everything_works_but_value_list_removal(
    tenant: ScimServer, tmp_path: Path
) -> None:
    checked = check_target(write_config(tmp_path, tenant), "--write-test")
    assert checked.exit_code == 0
    for item in (
        "userName eq",
        "externalId eq",
        "emails.value eq",
        "displayName eq (Groups)",
        "userName eq … or userName eq …",
    ):
        assert checked.verdict("filters", item) == "ok", checked.observed("filters", item)
    for item in ("userName", "externalId", "name", "displayName", "emails", "active"):
        assert checked.verdict("user create", item) == "ok"
    enterprise = "extension:enterprise:2.0:User:employeeNumber"
    for item in ("active", "displayName", "externalId", enterprise):
        assert checked.verdict("user PATCH", f"replace {item}") == "ok"
    assert checked.verdict("user PUT", "PUT /Users/{id}") == "ok"
    assert checked.verdict("ETag", "If-Match with a wrong version") == "ok"
    assert checked.verdict("groups", "POST /Groups with a member") == "ok"
    assert checked.verdict("groups", 'PATCH remove members[value eq "A" or value eq "B"]') == "ok"
    assert checked.verdict("groups", 'PATCH remove members[value eq "A"]') == "ok"
    assert checked.verdict("groups", "PATCH remove members, value [A]") == "refused"
    assert checked.verdict("groups", "PUT /Groups/{id} with members [A]") == "ok"
    assert checked.verdict("Bulk", "POST /Bulk (one PATCH)") == "ok"
    assert checked.verdict("profile", "target profile") == "ok"
    assert stored_profile(tmp_path, tenant) == TargetProfile(
        member_removal=MemberRemoval.FILTER,
        user_extensions=frozenset(
            {ENTERPRISE.casefold(), "urn:ietf:params:scim:schemas:extension:acmidm:1.0:user"}
        ),
    )


@pytest.mark.usefixtures("state_backend")  # keeps state: on SQLite and on PostgreSQL
def test_write_test_leaves_nothing_behind_in_scim2_server(
    tenant: ScimServer, tmp_path: Path
) -> None:
    someone = seed_user(tenant, 1)
    checked = check_target(write_config(tmp_path, tenant), "--write-test")
    cleanup = [f for f in checked.answer["findings"] if f["area"] == "cleanup"]
    assert [f["verdict"] for f in cleanup] == ["ok", "ok", "ok"]
    assert counts(tenant) == (1, 0)
    after = httpx2.get(f"{tenant.base_url}/Users/{someone['id']}").json()
    assert after["meta"]["version"] == someone["meta"]["version"]  # never touched


# ---------------------------------------------------------------------------- django-scim2


def test_django_read_only_finds_its_externalid_filter_wrong(
    django_scim: ScimServer, tmp_path: Path, recorded_requests: RequestRecorder
) -> None:
    seed_user(django_scim, 1)
    config = write_config(tmp_path, django_scim)
    checked = check_target(config)
    assert checked.exit_code == 0
    assert checked.verdict("filters", "userName eq") == "ok"
    assert checked.verdict("filters", "externalId eq") == "untrusted"
    assert checked.verdict("filters", "emails.value eq") == "untrusted"
    assert checked.answer["profile"]["untrusted_filters"] == ["emails.value", "externalid"]
    # Discovery as FINDINGS.md has it: no totalResults, endpoints from the host root.
    assert checked.verdict("ResourceTypes", "GET /ResourceTypes") == "note"
    assert checked.verdict("ResourceTypes", "User endpoint") == "note"
    assert checked.verdict("Schemas", "GET /Schemas") == "note"
    assert checked.verdict("Schemas", "enterprise User extension") == "note"  # not declared
    recorded_check(config, recorded_requests)
    assert recorded_requests.writes == []
    assert counts(django_scim) == (1, 0)


@pytest.mark.usefixtures("state_backend")  # keeps state: on SQLite and on PostgreSQL
def test_write_test_on_django_shows_what_findings_md_documents(
    django_scim: ScimServer, tmp_path: Path
) -> None:
    checked = check_target(write_config(tmp_path, django_scim), "--write-test")
    assert checked.exit_code == 0
    assert checked.verdict("filters", "userName eq") == "ok"
    assert checked.verdict("filters", "externalId eq") == "untrusted"
    assert checked.verdict("filters", "emails.value eq") == "untrusted"
    assert checked.verdict("filters", "displayName eq (Groups)") == "untrusted"
    assert checked.verdict("user create", "displayName") == "not kept"
    assert checked.verdict("user create", "emails") == "partly kept"  # one, without type
    assert checked.verdict("user PATCH", "replace active") == "ok"
    assert checked.observed("user PATCH", "replace displayName") == "501: Not Implemented"
    assert checked.observed("user PATCH", "replace externalId") == "501: Not Implemented"
    assert checked.verdict("groups", "POST /Groups with a member") == "not kept"
    assert checked.verdict("groups", "PATCH add members") == "ok"
    filtered = checked.observed("groups", 'PATCH remove members[value eq "A"]')
    assert filtered.startswith("501")
    assert checked.verdict("groups", "PATCH remove members, value [A]") == "ok"
    assert checked.verdict("groups", "PUT /Groups/{id} with members [A]") == "not kept"
    assert checked.verdict("ETag", "version of a read user") == "ok"  # none, as announced
    assert checked.verdict("Bulk", "POST /Bulk (one PATCH)") == "skipped"  # not announced
    assert stored_profile(tmp_path, django_scim) == TargetProfile(
        member_removal=MemberRemoval.VALUE_LIST,
        put_paths=frozenset({"displayName", "externalId"}),
        not_kept=frozenset({"displayName"}),
        drops_members_on_write=True,
        untrusted_filters=frozenset({"externalid", "emails.value", "displayname"}),
        user_extensions=frozenset(),
    )


@pytest.mark.usefixtures("state_backend")  # keeps state: on SQLite and on PostgreSQL
def test_write_test_leaves_nothing_behind_in_django(
    django_scim: ScimServer, tmp_path: Path
) -> None:
    seed_user(django_scim, 1)
    checked = check_target(write_config(tmp_path, django_scim), "--write-test")
    cleanup = [f["verdict"] for f in checked.answer["findings"] if f["area"] == "cleanup"]
    assert cleanup == ["ok", "ok", "ok"]
    assert counts(django_scim) == (1, 0)
    users = httpx2.get(f"{django_scim.base_url}/Users").json()["Resources"]
    assert [(u["userName"], u["externalId"]) for u in users] == [("person1@gent.be", "ext-1")]


# ---------------------------------------------------------------------------- authentication


def test_a_target_that_refuses_authentication_exits_2(tmp_path: Path) -> None:
    # With OAuth2 on, the sandbox wants a token everywhere but at /ServiceProviderConfig.
    with sandbox_in_thread(config=SandboxConfig()) as sandbox:
        server = ScimServer(base_url=sandbox.base_url, log=tmp_path / "none", acmidm=True)
        checked = check_target(write_config(tmp_path, server))
    assert checked.exit_code == 2
    assert [e["kind"] for e in checked.answer["errors"]] == ["auth"]
    assert "target.auth.method is 'none'" in checked.answer["errors"][0]["message"]


# ---------------------------------------------------------------------------- not a SCIM service


@contextmanager
def python_http_server(directory: Path) -> Iterator[str]:
    """`python -m http.server` on loopback, serving an empty directory: its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "http.server", "--bind", "127.0.0.1", "0"],
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # "Serving HTTP on 127.0.0.1 port 12345 (...) ..."
        port = int(line.split(" port ")[1].split()[0])
        yield f"http://127.0.0.1:{port}/scim/v2"
    finally:
        process.terminate()
        process.wait(timeout=10)


class HtmlForEverything(BaseHTTPRequestHandler):
    """Answers 200 text/html to every request, and counts them."""

    requests: ClassVar[list[str]] = []

    def answer(self) -> None:
        type(self).requests.append(f"{self.command} {self.path}")
        body = b"<html><body>Welcome</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def html_server() -> Iterator[str]:
    """A loopback server answering 200 text/html to everything: its base URL."""
    HtmlForEverything.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), HtmlForEverything)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/scim/v2"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def assert_no_profile(directory: Path, base_url: str) -> None:
    store = StateStore.open(state_location(directory))
    try:
        assert store.target_profile(base_url) == TargetProfile()
    finally:
        store.close()


@pytest.mark.parametrize("options", [(), ("--write-test",)])
@pytest.mark.usefixtures("state_backend")  # keeps state: on SQLite and on PostgreSQL
def test_python_http_server_is_not_a_scim_service(tmp_path: Path, options: tuple[str, ...]) -> None:
    served = tmp_path / "served"
    served.mkdir()
    with python_http_server(served) as base_url:
        server = ScimServer(base_url=base_url, log=tmp_path / "none", acmidm=False)
        config = write_config(tmp_path, server)
        checked = check_target(config, *options)
        text = runner.invoke(app, ["check-target", "--config", str(config), *options])
    assert checked.exit_code == 2
    assert checked.answer["exit_code"] == 2
    assert set(checked.answer) == {"command", "errors", "exit_code"}
    assert checked.answer["errors"] == [
        {
            "kind": "target",
            "message": f"{base_url}: not a SCIM 2.0 service: /ServiceProviderConfig answered "
            "404 text/html, /Users answered 404 text/html (is target.base_url the SCIM base URL?)",
        }
    ]
    assert (text.exit_code, text.stdout) == (2, "")
    assert text.stderr.startswith(f"error: {base_url}: not a SCIM 2.0 service: ")
    assert len(text.stderr.strip().splitlines()) == 1
    assert_no_profile(tmp_path, base_url)


@pytest.mark.parametrize("options", [(), ("--write-test",)])
@pytest.mark.usefixtures("state_backend")  # keeps state: on SQLite and on PostgreSQL
def test_a_server_answering_html_to_everything_is_not_a_scim_service_and_is_asked_twice(
    tmp_path: Path, options: tuple[str, ...]
) -> None:
    with html_server() as base_url:
        # The default retry policy ([target.retry]): a 2xx that is not JSON is not retried here.
        server = ScimServer(base_url=base_url, log=tmp_path / "none", acmidm=False)
        checked = check_target(write_config(tmp_path, server), *options)
        requests = list(HtmlForEverything.requests)
    assert checked.exit_code == 2
    message = checked.answer["errors"][0]["message"]
    assert message == (
        f"{base_url}: not a SCIM 2.0 service: /ServiceProviderConfig answered 200 text/html, "
        "/Users answered 200 text/html (is target.base_url the SCIM base URL?)"
    )
    # Each of the basics once, nothing retried, nothing written.
    assert requests == ["GET /scim/v2/ServiceProviderConfig", "GET /scim/v2/Users?count=0"]
    assert_no_profile(tmp_path, base_url)
