"""SCIM Bulk (RFC 7644 §3.7) against a real scim2-server, and how new people are matched.

The servers here announce small Bulk limits (`--service-provider-config`), so that a few dozen
people already need several Bulk requests: `ten_per_request` takes 10 operations per request,
`small_payload` 1,000 operations but only SMALL_PAYLOAD bytes. Each test gets a fresh tenant.
Faults (a dropped connection, a 429) come from the fault-injecting proxy in front of the server.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
from scim2_server.utils import load_json_resource

from connector import jobs
from connector.config import load_config
from connector.report import Report
from connector.state import StateStore
from tests.factories import HR_FIELDS, hr_row, write_csv
from tests.faultproxy import Fault, FaultKind, fault_proxy, nth, random_faults
from tests.integration.conftest import (
    ScimServer,
    ScimTenants,
    _acmidm_arguments,
    _free_port,
    _wait_until_up,
)
from tests.integration.target_state import everything
from tests.postgres import state_location, state_toml

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("state_backend")]

DAY = dt.date(2026, 12, 1)
RIGHT = "Premiezoeker Gebruiker"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
SMALL_PAYLOAD = 6_000
NO_BULK = "[target.capabilities]\nbulk = false\n"
FAST_RETRIES = """
[target.retry]
attempts = 12
initial_wait_seconds = 0.01
max_wait_seconds = 0.5
"""


# --- servers with small Bulk limits -------------------------------------------------------------


@contextmanager
def tenants_with_bulk_limits(
    directory: Path, max_operations: int, max_payload: int
) -> Iterator[ScimTenants]:
    """scim2-server (ACM/IDM extension, dynamic tenants) announcing these Bulk limits."""
    config = load_json_resource("default-service-provider-config.json")
    config["bulk"] = {
        "supported": True,
        "maxOperations": max_operations,
        "maxPayloadSize": max_payload,
    }
    config_file = directory / "service-provider-config.json"
    config_file.write_text(json.dumps(config), encoding="utf-8")
    port = _free_port()
    command = [sys.executable, "-m", "scim2_server.testserver.cli", "--port", str(port)]
    command += _acmidm_arguments(directory)
    command += ["--service-provider-config", str(config_file), "--dynamic-tenants"]
    log = directory / f"scim2-server-{port}.log"
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    startup = ScimServer(f"http://127.0.0.1:{port}/startup/v2", log, acmidm=True)
    try:
        _wait_until_up(startup, process)
        yield ScimTenants(root=f"http://127.0.0.1:{port}", log=log, acmidm=True)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def ten_per_request(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScimTenants]:
    """Bulk with maxOperations 10 (and 1 MiB)."""
    with tenants_with_bulk_limits(tmp_path_factory.mktemp("bulk10"), 10, 1_048_576) as tenants:
        yield tenants


@pytest.fixture(scope="module")
def small_payload(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScimTenants]:
    """Bulk with maxPayloadSize SMALL_PAYLOAD bytes (and 1,000 operations)."""
    directory = tmp_path_factory.mktemp("bulk-small")
    with tenants_with_bulk_limits(directory, 1000, SMALL_PAYLOAD) as tenants:
        yield tenants


# --- a connector pointed at a tenant ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sent:
    method: str
    path: str  # without the tenant prefix and /v2; query string kept
    body: bytes


@dataclass
class Connector:
    """A configuration (HR file, state store, shared secret) against one target."""

    server: ScimServer
    directory: Path
    rows: list[dict[str, str]]
    extra: str = ""
    sent: list[Sent] = field(default_factory=list)
    before_request: Callable[[httpx2.Request], None] | None = None

    def write(self, base_url: str | None = None) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        write_csv(self.directory / "hr.csv", self.rows, fields=HR_FIELDS)
        secret = self.directory.parent / "shared.secret"
        if not secret.exists():
            secret.write_text("one secret for every connector of this test\n")
        config = self.directory / "connector.toml"
        config.write_text(
            f"""
[source]
path = "hr.csv"

[target]
base_url = "{base_url or self.server.base_url}"

[state]
{state_toml(self.directory, secret=False)}secret_file = "{secret}"
{self.extra}
""",
            encoding="utf-8",
        )
        return config

    def sync(self, day: dt.date = DAY, base_url: str | None = None, **kw: Any) -> Report:
        settings = load_config(self.write(base_url))
        self.sent.clear()
        hooks = {"request": [self._record]}
        return asyncio.run(jobs.sync(settings, jobs.new_run_id(), day, event_hooks=hooks, **kw))

    async def _record(self, request: httpx2.Request) -> None:
        if self.before_request is not None:
            self.before_request(request)
        path = request.url.path.split("/v2", 1)[-1]
        query = f"?{request.url.query.decode()}" if request.url.query else ""
        self.sent.append(Sent(request.method, path + query, await request.aread()))

    def requests(self, method: str, path: str) -> list[Sent]:
        """The requests of one method whose path (query string apart) is `path`."""
        return [s for s in self.sent if s.method == method and s.path.split("?")[0] == path]

    def lookups(self) -> list[Sent]:
        """The user searches sent (discovery's probe apart)."""
        searches = self.requests("POST", "/Users/.search")
        return [s for s in searches if b"scim-connector-capability-probe" not in s.body]

    def people_looked_up(self) -> int:
        """How many people were looked up: every lookup starts with their externalId."""
        by_url = [s for s in self.sent if s.method == "GET" and "filter=externalId" in s.path]
        in_body = [s for s in self.lookups() if b'"externalId eq ' in s.body]
        return len(by_url) + len(in_body)

    def bulk_operations(self) -> list[dict[str, Any]]:
        """Every operation of every Bulk request sent."""
        return [
            op for s in self.requests("POST", "/Bulk") for op in json.loads(s.body)["Operations"]
        ]

    def journal(self, n: int) -> list[tuple[str, str, str]]:
        """(kind, phase, detail) of person n's journal, oldest first."""
        store = StateStore.open(state_location(self.directory))
        try:
            known = store.load_known()
            key = next(k for k, u in known.users.items() if u.user_name == email(n))
            return [(e.kind, e.phase, e.detail or "") for e in store.history(person_key=key)]
        finally:
            store.close()


def email(n: int) -> str:
    return f"person{n}@gent.be"


def people(count: int) -> list[dict[str, str]]:
    return [hr_row(n, rights=RIGHT if n % 4 == 0 else "") for n in range(1, count + 1)]


def compact(value: Any) -> bytes:
    """JSON as the connector sends it."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def add_user(server: ScimServer, user_name: str) -> str:
    """A user created by someone else (in the portal); its id."""
    body = {"schemas": [USER], "userName": user_name}
    answer = httpx2.post(f"{server.base_url}/Users", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


@contextmanager
def proxied(tenants: ScimTenants, server: ScimServer, plan: Any) -> Iterator[Any]:
    """The fault proxy in front of the tenants' server, and the tenant's URL through it."""
    with fault_proxy(tenants.root, plan) as proxy:
        yield proxy, proxy.base_url(server.base_url.removeprefix(tenants.root))


# --- Bulk ----------------------------------------------------------------------------------------


def test_an_initial_sync_of_25_people_takes_ceil_25_over_max_operations_bulk_requests(
    ten_per_request: ScimTenants, tmp_path: Path
) -> None:
    with_bulk = Connector(ten_per_request.new(), tmp_path / "bulk", people(25))
    report = with_bulk.sync()
    assert report.exit_code == 0, report.to_json()
    assert report.counts["create"] == 25 and report.counts["grant"] == 6
    assert len(with_bulk.requests("POST", "/Bulk")) == math.ceil(25 / 10)
    assert with_bulk.requests("POST", "/Users") == []
    operations = with_bulk.bulk_operations()
    assert [op["method"] for op in operations] == ["POST"] * 25
    assert len({op["bulkId"] for op in operations}) == 25
    assert all(
        "failOnErrors" not in json.loads(s.body) for s in with_bulk.requests("POST", "/Bulk")
    )
    # An empty target: counted, not searched, not listed.
    assert [s.path for s in with_bulk.sent if s.method == "GET" and "/Users" in s.path] == [
        "/Users?count=0"
    ]
    assert with_bulk.lookups() == []

    without = Connector(ten_per_request.new(), tmp_path / "single", people(25), NO_BULK)
    assert without.sync().exit_code == 0
    assert without.requests("POST", "/Bulk") == []
    assert len(without.requests("POST", "/Users")) == 25
    assert everything(with_bulk.server) == everything(without.server)

    again = with_bulk.sync()
    assert sum(again.counts.values()) == 0 and again.plan is not None and again.plan.empty


def test_with_bulk_switched_off_in_the_configuration_no_bulk_request_is_sent(
    ten_per_request: ScimTenants, tmp_path: Path
) -> None:
    connector = Connector(ten_per_request.new(), tmp_path / "run", people(12), NO_BULK)
    assert connector.sync().exit_code == 0
    connector.rows[0]["department"] = "Financiën"
    connector.rows[1]["end_date"] = "2026-12-01"
    report = connector.sync(DAY + dt.timedelta(days=1))
    assert (report.counts["update"], report.counts["deactivate"]) == (1, 1)
    assert connector.requests("POST", "/Bulk") == []
    assert len([s for s in connector.sent if s.method == "PATCH" and "/Users/" in s.path]) == 2


def test_bulk_requests_are_split_to_stay_within_max_payload_size(
    small_payload: ScimTenants, tmp_path: Path
) -> None:
    connector = Connector(small_payload.new(), tmp_path / "run", people(20))
    report = connector.sync()
    assert report.exit_code == 0, report.to_json()
    # In the order they were filled (bulkIds are numbered in that order; several are in flight).
    bodies = sorted(
        (s.body for s in connector.requests("POST", "/Bulk")),
        key=lambda body: int(json.loads(body)["Operations"][0]["bulkId"].lstrip("u")),
    )
    sizes = [len(compact(op)) for op in connector.bulk_operations()]
    assert len(bodies) >= math.ceil(sum(sizes) / SMALL_PAYLOAD) > 1
    assert all(len(body) <= SMALL_PAYLOAD for body in bodies)
    # Each request is as full as the limit allows: the next one's first operation did not fit.
    for body, following in itertools.pairwise(bodies):
        first = json.loads(following)["Operations"][0]
        assert len(body) + 1 + len(compact(first)) > SMALL_PAYLOAD
    assert len(everything(connector.server)[0]) == 20


def test_updates_activations_and_deactivations_go_in_bulk_patch_operations(
    ten_per_request: ScimTenants, tmp_path: Path
) -> None:
    rows = people(15)
    rows[14]["start_date"] = "2026-12-02"
    connector = Connector(ten_per_request.new(), tmp_path / "run", rows)
    connector.extra = "[lifecycle]\nprovision_days_before_start = 1\n"
    assert connector.sync().exit_code == 0  # person 15 created inactive, a day ahead
    for row in rows[:5]:
        row["department"] = "Financiën"
    for row in rows[5:7]:
        row["end_date"] = "2026-12-01"
    report = connector.sync(DAY + dt.timedelta(days=1))
    assert report.exit_code == 0, report.to_json()
    counts = report.counts
    assert (counts["update"], counts["activate"], counts["deactivate"]) == (5, 1, 2)
    assert [s for s in connector.sent if s.method == "PATCH" and "/Users/" in s.path] == []
    patches = [op for op in connector.bulk_operations() if op["method"] == "PATCH"]
    assert len(patches) == 8
    assert all(op["path"].startswith("/Users/") and "bulkId" not in op for op in patches)
    # Updates and the activation in one request; the deactivations after the memberships.
    assert len(connector.requests("POST", "/Bulk")) == 2
    users = {u["userName"]: u for u in everything(connector.server)[0]}
    enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    assert all(users[email(n)][enterprise]["department"] == "Financiën" for n in range(1, 6))
    assert [users[email(n)]["active"] for n in (6, 7, 8, 15)] == [False, False, True, True]
    assert connector.journal(1)[-2:] == [("update", "intent", ""), ("update", "done", "")]


def test_a_create_refused_with_409_in_a_bulk_request_is_adopted_alone_the_others_created(
    ten_per_request: ScimTenants, tmp_path: Path
) -> None:
    server = ten_per_request.new()
    connector = Connector(server, tmp_path / "run", people(8))
    taken: list[str] = []

    def someone_takes_person_3s_user_name_just_before(request: httpx2.Request) -> None:
        if request.url.path.endswith("/Bulk") and not taken:
            taken.append(add_user(server, email(3)))

    connector.before_request = someone_takes_person_3s_user_name_just_before
    report = connector.sync()
    assert report.exit_code == 0, report.to_json()
    assert report.counts["create"] == 8 and report.extra["adopted"] == 1
    users, _ = everything(server)
    assert len(users) == 8 and len({u["externalId"] for u in users}) == 8
    adopted = httpx2.get(f"{server.base_url}/Users/{taken[0]}").json()
    assert adopted["externalId"] and adopted["name"]["familyName"] == "Family3"
    (bulk,) = connector.requests("POST", "/Bulk")
    assert len(json.loads(bulk.body)["Operations"]) == 8
    assert connector.people_looked_up() == 1  # person 3's lookup, alone
    kinds = connector.journal(3)
    assert kinds[0] == ("create", "intent", "")
    assert kinds[1][:2] == ("create", "note") and "409" in kinds[1][2]
    assert kinds[2:] == [("adopt", "done", taken[0]), ("create", "done", "")]
    assert connector.journal(5) == [("create", "intent", ""), ("create", "done", "")]


@pytest.mark.parametrize("fault", [FaultKind.DROP_BEFORE, FaultKind.DROP_AFTER])
def test_a_bulk_request_whose_connection_dropped_loses_nothing_and_duplicates_nothing(
    ten_per_request: ScimTenants, tmp_path: Path, fault: FaultKind
) -> None:
    server = ten_per_request.new()
    connector = Connector(server, tmp_path / "run", people(30), FAST_RETRIES)
    plan = nth(2, Fault(fault), pattern=r"^POST /\S+/Bulk$")
    with proxied(ten_per_request, server, plan) as (proxy, base_url):
        report = connector.sync(base_url=base_url)
    assert [s.fault for s in proxy.faults()] == [fault]
    assert report.exit_code == 0, report.to_json()
    assert report.counts["create"] == 30
    # The dropped request's 10 people went again alone: looked up first, then adopted (the
    # server did create them) or created.
    assert connector.people_looked_up() == 10
    created_alone = len(connector.requests("POST", "/Users"))
    assert (created_alone, report.extra["adopted"]) == (
        (10, 0) if fault is FaultKind.DROP_BEFORE else (0, 10)
    )
    users, members = everything(server)
    assert len(users) == len({u["externalId"] for u in users}) == 30
    assert len(members) == len(set(members)) == 7
    again = connector.sync()
    assert sum(again.counts.values()) == 0


def test_a_bulk_request_answered_429_is_sent_again_after_retry_after(
    ten_per_request: ScimTenants, tmp_path: Path
) -> None:
    server = ten_per_request.new()
    connector = Connector(server, tmp_path / "run", people(12), FAST_RETRIES)
    plan = nth(1, Fault(FaultKind.TOO_MANY, 0.2), pattern=r"^POST /\S+/Bulk$")
    with proxied(ten_per_request, server, plan) as (proxy, base_url):
        report = connector.sync(base_url=base_url)
    assert report.exit_code == 0 and report.extra["retries"] == 1
    assert len(connector.requests("POST", "/Bulk")) == math.ceil(12 / 10) + 1
    assert connector.requests("POST", "/Users") == []
    bulks = [s for s in proxy.seen if s.path.endswith("/Bulk")]
    assert bulks[0].fault is FaultKind.TOO_MANY
    assert len(everything(server)[0]) == 12


def test_a_sync_with_bulk_through_30_percent_faults_ends_equal_to_a_fault_free_one(
    ten_per_request: ScimTenants, tmp_path: Path
) -> None:
    rows = people(200)
    faulty = Connector(ten_per_request.new(), tmp_path / "faulty", rows, FAST_RETRIES)
    faults = random_faults(0.3, seed=11, pattern=r"/(Bulk|Users)")
    with proxied(ten_per_request, faulty.server, faults) as (proxy, url):
        report = faulty.sync(base_url=url)
    assert report.exit_code == 0, report.to_json()["failures"][:3]
    assert any(s.path.endswith("/Bulk") for s in proxy.faults())
    clean = Connector(ten_per_request.new(), tmp_path / "clean", rows)
    assert clean.sync().exit_code == 0
    assert everything(faulty.server) == everything(clean.server)


def test_a_sync_killed_between_bulk_requests_run_again_ends_like_an_uninterrupted_one(
    ten_per_request: ScimTenants, tmp_path: Path
) -> None:
    rows = people(300)
    server = ten_per_request.new()
    killed = Connector(server, tmp_path / "killed", rows)
    config = killed.write()
    config.write_text(config.read_text().replace("[target]\n", "[target]\nconcurrency = 1\n"))
    command = [sys.executable, "-m", "connector", "sync", "--config", str(config)]
    process = subprocess.Popen(
        [*command, "--as-of", DAY.isoformat()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def count() -> int:
        answer = httpx2.get(f"{server.base_url}/Users", params={"count": 0})
        return int(answer.json()["totalResults"])

    deadline = time.monotonic() + 60
    while count() < 50 and process.poll() is None:
        assert time.monotonic() < deadline, "the sync made no progress"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert 0 < count() < 300, "the run should have been killed part-way"

    report = asyncio.run(jobs.sync(load_config(config), jobs.new_run_id(), DAY))
    assert report.exit_code == 0, report.to_json()
    clean = Connector(ten_per_request.new(), tmp_path / "clean", rows)
    assert clean.sync().exit_code == 0
    assert everything(server) == everything(clean.server)
    again = asyncio.run(jobs.sync(load_config(config), jobs.new_run_id(), DAY))
    assert sum(again.counts.values()) == 0


# --- how new people are matched -------------------------------------------------------------------


def test_a_few_joiners_on_a_big_target_are_looked_up_by_equality_not_by_listing(
    ten_per_request: ScimTenants, tmp_path: Path
) -> None:
    """Each lookup is one attribute `eq` one value: what every server answers from an index."""
    server = ten_per_request.new()
    for n in range(30):
        add_user(server, f"someone{n}@elsewhere.example")
    existing = add_user(server, email(2))
    connector = Connector(server, tmp_path / "run", people(3))
    report = connector.sync()
    assert report.exit_code == 0, report.to_json()
    assert report.counts["create"] == 3 and report.extra["adopted"] == 1
    reads = [s.path for s in connector.sent if s.method == "GET" and s.path.startswith("/Users")]
    assert reads[0] == "/Users?count=0" and not [r for r in reads if "startIndex" in r]
    filters = [json.loads(s.body)["filter"] for s in connector.lookups()]
    filters += [r.split("filter=", 1)[1] for r in reads if "filter=" in r]
    assert filters and not [f for f in filters if " or " in f]
    # Three each, in order: externalId, national number, userName (the portal's user has
    # neither externalId nor national number: its userName finds it, and it is adopted).
    assert len(filters) == 3 * 3
    assert sum(":nationalId eq " in f for f in filters) == 3
    assert httpx2.get(f"{server.base_url}/Users/{existing}").json()["externalId"]
    digits = ["".join(ch for ch in row["national_id"] if ch.isdigit()) for row in connector.rows]
    assert not [s.path for s in connector.sent if any(d in s.path for d in digits)]


def test_with_lookup_in_one_search_each_joiner_is_one_search(
    ten_per_request: ScimTenants, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCIM_CONNECTOR_TARGET__LOOKUP_IN_ONE_SEARCH", "true")
    server = ten_per_request.new()
    for n in range(30):
        add_user(server, f"someone{n}@elsewhere.example")
    existing = add_user(server, email(2))
    connector = Connector(server, tmp_path / "run", people(3))
    report = connector.sync()
    assert report.exit_code == 0, report.to_json()
    assert report.counts["create"] == 3 and report.extra["adopted"] == 1
    reads = [s.path for s in connector.sent if s.method == "GET" and s.path.startswith("/Users")]
    assert reads == ["/Users?count=0"]  # no listing of the 31 users
    searches = connector.lookups()
    assert len(searches) == 3  # one request per joiner, not three
    filters = [json.loads(s.body)["filter"] for s in searches]
    assert all(f.count(" or ") == 2 and f.startswith("externalId eq ") for f in filters)
    assert all(":nationalId eq " in f and "userName eq " in f for f in filters)
    assert len(connector.requests("POST", "/Users")) == 2  # looked up: created one by one
    assert connector.requests("POST", "/Bulk") == []
    users = {u["userName"]: u for u in everything(server)[0]}
    assert len(users) == 30 + 3
    assert httpx2.get(f"{server.base_url}/Users/{existing}").json()["externalId"]
    digits = ["".join(ch for ch in row["national_id"] if ch.isdigit()) for row in connector.rows]
    assert not [s.path for s in connector.sent if any(d in s.path for d in digits)]


def test_few_users_on_the_target_for_many_joiners_are_read_once_and_the_rest_go_in_bulk(
    ten_per_request: ScimTenants, tmp_path: Path
) -> None:
    server = ten_per_request.new()
    for n in range(5):
        add_user(server, f"someone{n}@elsewhere.example")
    existing = add_user(server, email(2))
    connector = Connector(server, tmp_path / "run", people(12))
    report = connector.sync()
    assert report.exit_code == 0, report.to_json()
    assert report.counts["create"] == 12 and report.extra["adopted"] == 1
    reads = [s.path for s in connector.sent if s.method == "GET" and s.path.startswith("/Users")]
    assert reads[0] == "/Users?count=0"
    assert len(reads) == 2 and "startIndex=1" in reads[1]  # one page: the 6 users
    assert connector.lookups() == []
    assert connector.requests("POST", "/Users") == []
    assert sorted(op["data"]["userName"] for op in connector.bulk_operations()) == sorted(
        email(n) for n in range(1, 13) if n != 2
    )
    assert httpx2.get(f"{server.base_url}/Users/{existing}").json()["externalId"]
    assert len(everything(server)[0]) == 5 + 12
