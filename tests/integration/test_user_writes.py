"""How `sync` writes a user's changes to targets that take PATCH only in part, or not at all.

django-scim2 (stock adapters, see tests/django_target/FINDINGS.md) answers 501 to a PATCH of
`displayName` or `externalId`, fails (500) on a PATCH `replace` of the whole `name`, takes a
PATCH of `active`, and takes a PUT, resetting whatever the PUT leaves out. The connector learns
which paths it refuses by PATCH, writes those by PUT (the user read, the changes applied, put
back whole) and goes straight to that form in later runs. scim2-server takes every PATCH: for
it nothing changes. A failed attribute change never holds up the person's memberships or
deactivation.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2
import pytest

from connector import jobs
from connector.config import load_config
from connector.report import Report
from connector.state import StateStore
from connector.target.profile import TargetProfile
from tests.factories import HR_FIELDS, hr_row, write_csv
from tests.faultproxy import FORWARD, Fault, FaultKind, FaultPlan, fault_proxy, nth
from tests.integration.conftest import ScimServer, ScimTenants
from tests.postgres import state_location, state_toml

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("state_backend")]

D = dt.date
RIGHT = "Premiezoeker Gebruiker"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
NO_BULK = "[target.capabilities]\nbulk = false\n"
NO_PATCH = "[target.capabilities]\npatch = false\n"


@dataclass(frozen=True, slots=True)
class Sent:
    """One request the connector sent: method, path below the base URL, body and headers."""

    method: str
    path: str
    body: bytes
    headers: dict[str, str]


@dataclass
class Connector:
    """A configuration (HR file, state store) against one target, and what it sent last run."""

    base_url: str
    directory: Path
    rows: list[dict[str, str]]
    extra: str = ""
    sent: list[Sent] = field(default_factory=list)
    before_request: Callable[[httpx2.Request], None] | None = None

    def sync(self, day: dt.date) -> Report:
        write_csv(self.directory / "hr.csv", self.rows, fields=HR_FIELDS)
        config = self.directory / "connector.toml"
        config.write_text(
            f"""
[source]
path = "hr.csv"

[target]
base_url = "{self.base_url}"

[target.auth]
method = "none"

[state]
{state_toml(self.directory)}
{self.extra}
""",
            encoding="utf-8",
        )
        self.sent.clear()
        hooks = {"request": [self._record]}
        settings = load_config(config)
        return asyncio.run(jobs.sync(settings, jobs.new_run_id(), day, event_hooks=hooks))

    async def _record(self, request: httpx2.Request) -> None:
        if self.before_request is not None:
            self.before_request(request)
        path = request.url.path.removeprefix(urlsplit(self.base_url).path)
        body = await request.aread()
        self.sent.append(Sent(request.method, path, body, dict(request.headers)))

    def user_writes(self) -> list[tuple[str, str]]:
        """(method, path) of each request on one user (`/Users/<id>`): reads and writes."""
        return [
            (s.method, s.path)
            for s in self.sent
            if s.path.startswith("/Users/") and s.path != "/Users/.search"
        ]

    def user_patches(self) -> list[list[dict[str, Any]]]:
        """The operations of each PATCH of a user."""
        return [
            json.loads(s.body)["Operations"]
            for s in self.sent
            if s.method == "PATCH" and s.path.startswith("/Users/")
        ]

    def user_puts(self) -> list[Sent]:
        return [s for s in self.sent if s.method == "PUT" and s.path.startswith("/Users/")]

    def profile(self) -> TargetProfile:
        store = StateStore.open(state_location(self.directory))
        try:
            return store.target_profile(self.base_url)
        finally:
            store.close()

    def user(self, n: int) -> dict[str, Any]:
        """Person n's user, as the target holds it now."""
        listed = httpx2.get(f"{self.base_url}/Users", params={"count": 1000}).json()
        (user,) = [u for u in listed.get("Resources", []) if u["userName"] == email(n)]
        found: dict[str, Any] = httpx2.get(f"{self.base_url}/Users/{user['id']}").json()
        return found

    def members(self) -> set[str]:
        """The userNames of the right's group's members."""
        groups = httpx2.get(f"{self.base_url}/Groups", params={"count": 1000}).json()
        (group,) = [g for g in groups.get("Resources", []) if g["displayName"] == RIGHT]
        users = httpx2.get(f"{self.base_url}/Users", params={"count": 1000}).json()
        names = {u["id"]: u["userName"] for u in users.get("Resources", [])}
        return {names[m["value"]] for m in group.get("members", [])}


def email(n: int) -> str:
    return f"person{n}@gent.be"


def people(count: int) -> list[dict[str, str]]:
    return [hr_row(n) for n in range(1, count + 1)]


def rename(row: dict[str, str], family_name: str) -> None:
    row["family_name"] = family_name


def target_warnings(report: Report) -> list[str]:
    return [w.message for w in report.warnings if w.kind == "target"]


def upstream(server: ScimServer) -> str:
    parts = urlsplit(server.base_url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Refusals:
    """A FaultPlan: the requests `refused(method, path)` picks are answered 400, while `on`."""

    refused: Callable[[str, str], bool]
    on: threading.Event = field(default_factory=threading.Event)

    def __call__(self, method: str, path: str, index: int) -> Fault:
        if self.on.is_set() and self.refused(method, path):
            return Fault(FaultKind.REFUSED)
        return FORWARD


def user_puts(method: str, path: str) -> bool:
    return method == "PUT" and "/Users/" in path


def user_patches(method: str, path: str) -> bool:
    return method == "PATCH" and "/Users/" in path


@contextmanager
def proxied(server: ScimServer, plan: FaultPlan) -> Iterator[str]:
    """The server's base URL through a fault proxy following `plan`."""
    with fault_proxy(upstream(server), plan) as proxy:
        yield proxy.base_url(urlsplit(server.base_url).path)


@pytest.fixture
def django(django_scim: ScimServer, tmp_path: Path) -> Connector:
    return Connector(django_scim.base_url, tmp_path, people(3))


@pytest.fixture
def scim(scim_tenants: ScimTenants, tmp_path: Path) -> Connector:
    return Connector(scim_tenants.new().base_url, tmp_path, people(3))


# --- a target that refuses some PATCHes: django-scim2 -------------------------------------------


def test_a_rename_the_target_will_not_take_by_patch_is_put_and_the_refusal_learned(
    django: Connector,
) -> None:
    assert django.sync(D(2026, 12, 1)).counts["create"] == 3
    external_id = django.user(1)["externalId"]
    rename(django.rows[0], "Renamed")
    report = django.sync(D(2026, 12, 2))
    assert report.exit_code == 0, report.to_json()
    assert report.counts["update"] == 1
    user = django.user(1)
    assert user["name"]["familyName"] == "Renamed"
    assert user["displayName"] == "Given1 Renamed"
    assert user["externalId"] == external_id
    assert {"displayName", "name"} <= django.profile().put_paths
    assert "PATCH of displayName is refused: written by PUT" in target_warnings(report)
    (put,) = django.user_puts()
    assert json.loads(put.body)["externalId"] == external_id


def test_a_later_rename_goes_straight_to_put_and_the_refusal_is_reported_once(
    django: Connector,
) -> None:
    django.sync(D(2026, 12, 1))
    user_id = django.user(1)["id"]
    external_id = django.user(1)["externalId"]
    rename(django.rows[0], "Renamed")
    django.sync(D(2026, 12, 2))
    django.rows[0]["given_name"] = "Again"
    report = django.sync(D(2026, 12, 3))
    assert report.exit_code == 0, report.to_json()
    assert django.user_writes() == [("GET", f"/Users/{user_id}"), ("PUT", f"/Users/{user_id}")]
    user = django.user(1)
    assert (user["name"]["givenName"], user["name"]["familyName"]) == ("Again", "Renamed")
    assert user["externalId"] == external_id
    assert target_warnings(report) == []


def test_the_refused_paths_are_probed_once_in_a_run_however_many_are_refused(
    django: Connector,
) -> None:
    django.rows = people(6)
    django.sync(D(2026, 12, 1))
    for row in django.rows:
        rename(row, "Renamed")
    report = django.sync(D(2026, 12, 2))
    assert report.exit_code == 0, report.to_json()
    assert report.counts["update"] == 6
    alone = [ops for ops in django.user_patches() if len(ops) == 1]
    assert len(alone) <= 2  # one person's two paths, each sent again alone
    assert len(django.user_patches()) <= 6 + 2
    assert {django.user(n)["name"]["familyName"] for n in range(1, 7)} == {"Renamed"}


def test_a_leaver_whose_rename_fails_is_deactivated_and_the_rename_done_next_run(
    django_scim: ScimServer, tmp_path: Path
) -> None:
    refusals = Refusals(user_puts)
    with proxied(django_scim, refusals) as base_url:
        connector = Connector(base_url, tmp_path, people(3))
        connector.sync(D(2026, 12, 1))
        external_id = connector.user(1)["externalId"]
        rename(connector.rows[0], "Renamed")
        connector.rows[0]["end_date"] = "2026-12-01"
        refusals.on.set()
        report = connector.sync(D(2026, 12, 2))
        assert report.counts["deactivate"] == 1
        (failure,) = report.failures
        assert failure.operation == "update" and "refused by the fault proxy" in failure.reason
        assert report.exit_code == 1
        user = connector.user(1)
        assert user["active"] is False
        assert user["name"]["familyName"] == "Family1"

        refusals.on.clear()
        report = connector.sync(D(2026, 12, 3))
        assert report.exit_code == 0, report.to_json()
        assert report.counts["update"] == 1 and report.counts["deactivate"] == 0
        user = connector.user(1)
        assert user["name"]["familyName"] == "Renamed"
        assert user["active"] is False
        assert user["externalId"] == external_id


# --- a target that takes every PATCH: scim2-server ---------------------------------------------


def test_a_target_that_takes_every_patch_gets_patches_only_and_learns_nothing(
    scim: Connector,
) -> None:
    scim.sync(D(2026, 12, 1))
    rename(scim.rows[0], "Renamed")
    report = scim.sync(D(2026, 12, 2))
    assert report.exit_code == 0, report.to_json()
    assert [method for method, _ in scim.user_writes()] == ["PATCH"]
    assert scim.user(1)["name"]["familyName"] == "Renamed"
    assert scim.profile().put_paths == frozenset()


def test_a_failed_attribute_update_holds_up_neither_grants_nor_withdrawals(
    scim_tenants: ScimTenants, tmp_path: Path
) -> None:
    refusals = Refusals(user_patches)
    with proxied(scim_tenants.new(), refusals) as base_url:
        connector = Connector(base_url, tmp_path, people(3), extra=NO_BULK)
        connector.rows[0]["rights"] = RIGHT
        connector.sync(D(2026, 12, 1))
        assert connector.members() == {email(1)}
        rename(connector.rows[0], "Renamed")
        connector.rows[0]["rights"] = ""
        rename(connector.rows[1], "Renamed")
        connector.rows[1]["rights"] = RIGHT
        refusals.on.set()
        report = connector.sync(D(2026, 12, 2))
        assert report.counts["withdraw"] == 1 and report.counts["grant"] == 1
        assert connector.members() == {email(2)}
        assert [f.operation for f in report.failures] == ["update", "update"]
        assert connector.profile().put_paths == frozenset()  # a 400 refuses a value, not a path

        refusals.on.clear()
        report = connector.sync(D(2026, 12, 3))
        assert report.exit_code == 0, report.to_json()
        assert report.counts["update"] == 2
        assert {connector.user(n)["name"]["familyName"] for n in (1, 2)} == {"Renamed"}


def test_a_failed_create_still_holds_up_the_persons_grants(
    scim_tenants: ScimTenants, tmp_path: Path
) -> None:
    refusals = Refusals(lambda method, path: method == "POST" and path.endswith("/Users"))
    with proxied(scim_tenants.new(), refusals) as base_url:
        connector = Connector(base_url, tmp_path, people(2), extra=NO_BULK)
        connector.rows[0]["rights"] = RIGHT
        connector.rows[1]["rights"] = RIGHT
        connector.sync(D(2026, 12, 1))
        connector.rows.append(hr_row(3, rights=RIGHT))
        refusals.on.set()
        report = connector.sync(D(2026, 12, 2))
        assert [(f.operation, f.reason) for f in report.failures] == [
            ("create", "create user: 400: refused by the fault proxy"),
            ("grant", "skipped: the user is not in place"),
        ]
        assert connector.members() == {email(1), email(2)}


def test_a_leaver_whose_attribute_change_is_refused_is_still_deactivated(
    scim_tenants: ScimTenants, tmp_path: Path
) -> None:
    first_user_patch = nth(1, Fault(FaultKind.REFUSED), r"^PATCH .*/Users/")
    on = threading.Event()

    def plan(method: str, path: str, index: int) -> Fault:
        return first_user_patch(method, path, index) if on.is_set() else FORWARD

    with proxied(scim_tenants.new(), plan) as base_url:
        connector = Connector(base_url, tmp_path, people(3), extra=NO_BULK)
        connector.rows[0]["rights"] = RIGHT
        connector.sync(D(2026, 12, 1))
        rename(connector.rows[0], "Renamed")
        connector.rows[0]["end_date"] = "2026-12-01"
        on.set()
        report = connector.sync(D(2026, 12, 2))
        assert report.counts["deactivate"] == 1 and report.counts["withdraw"] == 1
        assert [f.operation for f in report.failures] == ["update"]
        assert connector.user_patches()[-1] == [{"op": "replace", "path": "active", "value": False}]
        user = connector.user(1)
        assert user["active"] is False and user["name"]["familyName"] == "Family1"
        assert connector.members() == set()

        report = connector.sync(D(2026, 12, 3))
        assert report.exit_code == 0, report.to_json()
        assert report.counts["update"] == 1
        assert connector.user(1)["name"]["familyName"] == "Renamed"


def test_without_patch_a_user_is_read_changed_and_put_back_whole_with_if_match(
    scim: Connector,
) -> None:
    scim.extra = NO_PATCH
    scim.sync(D(2026, 12, 1))
    before = scim.user(1)
    by_hand(scim, before["id"], "nickName", "Jo")
    rename(scim.rows[0], "Renamed")
    report = scim.sync(D(2026, 12, 2))
    assert report.exit_code == 0, report.to_json()
    assert [method for method, _ in scim.user_writes()] == ["GET", "PUT"]
    (put,) = scim.user_puts()
    assert put.headers.get("if-match")
    after = scim.user(1)
    assert after["name"]["familyName"] == "Renamed" and after["nickName"] == "Jo"
    assert after["externalId"] == before["externalId"]
    assert after[ENTERPRISE] == before[ENTERPRISE]


def test_without_patch_a_change_made_meanwhile_is_read_again_and_kept(scim: Connector) -> None:
    scim.extra = NO_PATCH
    scim.sync(D(2026, 12, 1))
    user_id = scim.user(1)["id"]
    puts = 0

    def someone_changes_the_user_just_before_the_first_put(request: httpx2.Request) -> None:
        nonlocal puts
        if request.method == "PUT" and "/Users/" in request.url.path:
            puts += 1
            if puts == 1:
                by_hand(scim, user_id, "nickName", "Jo")

    scim.before_request = someone_changes_the_user_just_before_the_first_put
    rename(scim.rows[0], "Renamed")
    report = scim.sync(D(2026, 12, 2))
    assert report.exit_code == 0, report.to_json()
    assert puts == 2  # the first lost the race (412): read again, changes applied again
    user = scim.user(1)
    assert user["name"]["familyName"] == "Renamed" and user["nickName"] == "Jo"


def test_bulk_leaves_out_the_changes_of_paths_the_target_refuses_by_patch(
    scim: Connector,
) -> None:
    scim.rows = people(4)
    scim.sync(D(2026, 12, 1))
    store = StateStore.open(state_location(scim.directory))
    try:
        learned = store.target_profile(scim.base_url)
        refused = learned.model_copy(update={"put_paths": frozenset({"displayName", "name"})})
        store.save_target_profile(scim.base_url, refused)
    finally:
        store.close()
    rename(scim.rows[0], "Renamed")
    rename(scim.rows[1], "Renamed")
    scim.rows[2]["department"] = "Financiën"
    scim.rows[3]["department"] = "Financiën"
    report = scim.sync(D(2026, 12, 2))
    assert report.exit_code == 0, report.to_json()
    assert report.counts["update"] == 4
    (bulk,) = [s for s in scim.sent if s.method == "POST" and s.path == "/Bulk"]
    operations = json.loads(bulk.body)["Operations"]
    assert len(operations) == 2
    paths = {op["path"] for o in operations for op in o["data"]["Operations"]}
    assert paths.isdisjoint({"displayName", "name"})
    assert len(scim.user_puts()) == 2 and scim.user_patches() == []
    assert {scim.user(n)["name"]["familyName"] for n in (1, 2)} == {"Renamed"}
    assert {scim.user(n)[ENTERPRISE]["department"] for n in (3, 4)} == {"Financiën"}


def by_hand(connector: Connector, user_id: str, path: str, value: Any) -> None:
    """What an administrator does in the target's portal: set one attribute of a user."""
    body = {"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": path, "value": value}]}
    answer = httpx2.patch(f"{connector.base_url}/Users/{user_id}", json=body)
    assert answer.status_code in (200, 204), answer.text


def test_a_rename_after_check_target_learned_the_target_is_written_by_put(
    django_scim: ScimServer, tmp_path: Path
) -> None:
    """check-target --write-test leaves `name` as the only path of a rename's PATCH; the 500 that
    django-scim2 answers to a PATCH of `name`, still there after the retries, is a refusal of
    that form: the rename goes by PUT and `name` is remembered."""
    from connector.target.checking.job import check_target

    rows = [hr_row(1), hr_row(2)]
    write_csv(tmp_path / "hr.csv", rows, fields=HR_FIELDS)
    config = tmp_path / "connector.toml"
    config.write_text(
        f'[source]\npath = "hr.csv"\n[target]\nbase_url = "{django_scim.base_url}"\n'
        "[target.retry]\nattempts = 2\ninitial_wait_seconds = 0\n"
        f'[target.auth]\nmethod = "none"\n[state]\n{state_toml(tmp_path)}',
        encoding="utf-8",
    )
    settings = load_config(config)
    checked = asyncio.run(check_target(settings, write_test=True))
    assert checked.saved
    day = dt.date(2026, 12, 1)
    assert asyncio.run(jobs.sync(settings, jobs.new_run_id(), day)).exit_code == 0
    rows[0]["family_name"] = "Aerts-Peeters"
    write_csv(tmp_path / "hr.csv", rows, fields=HR_FIELDS)
    renamed = asyncio.run(jobs.sync(settings, jobs.new_run_id(), day))
    assert renamed.exit_code == 0, renamed.to_json()
    listed = httpx2.get(f"{django_scim.base_url}/Users").json()["Resources"]
    person = next(u for u in listed if u["userName"] == "person1@gent.be")
    assert person["name"]["familyName"] == "Aerts-Peeters"
    store = StateStore.open_read_only(state_location(tmp_path))
    assert store is not None
    assert "name" in store.target_profile(django_scim.base_url).put_paths
    store.close()
