"""Rights as SCIM Groups against a real SCIM server (scim2-server on loopback).

A person is a member of a right's group on day D iff a grant of that right holds on D and its
work relation is active on D; members are added in the begin date's run and removed in the run
after the end date; the connector only ever removes memberships it added itself.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from connector import jobs
from connector.config import load_config
from connector.hr.records import EmployeeKey
from connector.report import Report
from tests.factories import HR_FIELDS, make_kbo, make_nn, write_csv
from tests.integration.conftest import ScimServer, ScimTenants
from tests.postgres import StateBackend, current_backend

pytestmark = pytest.mark.integration

D = dt.date
RIGHT = "Premiezoeker Gebruiker"
ACMIDM = "urn:ietf:params:scim:schemas:extension:acmidm:1.0:User"
GRANT_FIELDS = ("organisation_code", "employee_id", "right", "begin_date", "end_date")
SCHELDEVELD = make_kbo(2123456)
OCMW = make_kbo(2123457)
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


@dataclass(frozen=True, slots=True)
class Sent:
    """One request the connector sent: method, path (no query), headers and body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass(slots=True)
class Wire:
    """An httpx2 request hook that remembers what the connector sent."""

    sent: list[Sent] = field(default_factory=list)

    async def __call__(self, request: httpx2.Request) -> None:
        body = await request.aread()
        self.sent.append(Sent(request.method, request.url.path, dict(request.headers), body))

    def to_groups(self, method: str) -> list[Sent]:
        """The requests of one method on a Group resource (`/Groups/<id>`)."""
        return [s for s in self.sent if s.method == method and "/Groups/" in s.path]

    def group_writes(self) -> list[Sent]:
        """The requests that write members: a group's create (with its first members), PATCH."""
        creates = [s for s in self.sent if s.method == "POST" and s.path.endswith("/Groups")]
        return creates + self.to_groups("PATCH")


@dataclass
class Rights:
    """A connector configured against a fresh server, with an HR file and a grants file."""

    server: ScimServer
    directory: Path
    rows: list[dict[str, str]] = field(default_factory=list)
    grants: list[dict[str, str]] = field(default_factory=list)
    target_config: str = ""  # more keys of the [target] table
    extra_config: str = ""  # more tables
    wire: Wire = field(default_factory=Wire)
    state: StateBackend = field(default_factory=current_backend)  # where it keeps its state

    def write(self) -> Path:
        write_csv(self.directory / "hr.csv", self.rows, fields=HR_FIELDS)
        write_csv(self.directory / "grants.csv", self.grants, fields=GRANT_FIELDS)
        config = self.directory / "connector.toml"
        config.write_text(
            f"""
[source]
path = "hr.csv"
grants = "grants.csv"

[target]
base_url = "{self.server.base_url}"
{self.target_config}

[target.auth]
method = "none"

[state]
{self.state.toml(self.directory)}
{self.extra_config}
""",
            encoding="utf-8",
        )
        return config

    def sync(self, day: dt.date, **kw: Any) -> Report:
        """One sync as of `day`; the run must not fail."""
        report = self.run(day, **kw)
        assert report.exit_code == 0, report.to_json()
        return report

    def run(self, day: dt.date, **kw: Any) -> Report:
        """One sync as of `day`, whatever its outcome; `wire` holds what it sent."""
        settings = load_config(self.write())
        self.wire.sent.clear()
        hooks = {"request": [self.wire]}
        return asyncio.run(jobs.sync(settings, jobs.new_run_id(), day, event_hooks=hooks, **kw))

    def grant(self, n: int, begin: str = "", end: str = "") -> None:
        """A grants-file row: person n holds the right at Scheldeveld from `begin` to `end`."""
        self.grants.append(
            {
                "organisation_code": SCHELDEVELD,
                "employee_id": f"E{n:04d}",
                "right": RIGHT,
                "begin_date": begin,
                "end_date": end,
            }
        )

    # --- what the target holds, read directly -------------------------------------------

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        answer = httpx2.get(f"{self.server.base_url}{path}", params=params)
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def users(self) -> dict[str, dict[str, Any]]:
        """Every user in the target, by userName."""
        listed = self.get("/Users", count=1000).get("Resources", [])
        return {user["userName"]: user for user in listed}

    def user_id(self, n: int) -> str:
        return str(self.users()[email(n)]["id"])

    def groups(self) -> list[dict[str, Any]]:
        """Every group in the target called like the right."""
        listed = self.get("/Groups", count=1000).get("Resources", [])
        return [group for group in listed if group["displayName"] == RIGHT]

    def group(self) -> dict[str, Any]:
        """The one group that carries the right."""
        groups = self.groups()
        assert len(groups) == 1, groups
        return groups[0]

    def member_ids(self) -> list[str]:
        """The group's members' user ids, duplicates kept (a duplicate would be a bug)."""
        if not self.groups():
            return []
        return [member["value"] for member in self.group().get("members", [])]

    def members(self) -> set[int]:
        """The people (by number) in the right's group."""
        number_of = {user["id"]: _number(name) for name, user in self.users().items()}
        return {number_of[value] for value in self.member_ids()}

    def add_by_hand(self, n: int) -> None:
        """What a local administrator does in the portal: add person n to the group."""
        self._patch_group({"op": "add", "path": "members", "value": [{"value": self.user_id(n)}]})

    def remove_by_hand(self, n: int) -> None:
        """What a local administrator does in the portal: take person n out of the group."""
        self._patch_group({"op": "remove", "path": f'members[value eq "{self.user_id(n)}"]'})

    def _patch_group(self, operation: dict[str, Any]) -> None:
        body = {"schemas": [PATCH_OP], "Operations": [operation]}
        url = f"{self.server.base_url}/Groups/{self.group()['id']}"
        answer = httpx2.patch(url, json=body)
        assert answer.status_code in (200, 204), answer.text


def email(n: int) -> str:
    return f"person{n}@scheldeveld.be"


def _number(user_name: str) -> int:
    return int(user_name.removeprefix("person").split("@")[0])


def person(n: int, **overrides: str) -> dict[str, str]:
    """An HR row for person n at Scheldeveld, working since 2020, no rights."""
    row = {
        "employee_id": f"E{n:04d}",
        "national_id": make_nn(D(1960, 1, 1) + dt.timedelta(days=97 * n), serial=100 + n % 800),
        "given_name": f"Given{n}",
        "family_name": f"Family{n}",
        "email": email(n),
        "organisation_code": SCHELDEVELD,
        "organisation_name": "Gemeente Scheldeveld",
        "department": "",
        "job_title": "",
        "relation": "employee",
        "employer_code": "",
        "start_date": "2020-01-01",
        "end_date": "",
        "rights": "",
    }
    row.update(overrides)
    return row


@pytest.fixture
def rights(scim_tenants: ScimTenants, tmp_path: Path, state_backend: StateBackend) -> Rights:
    """Three people at Scheldeveld, none holding the right yet, and a target of their own."""
    return Rights(scim_tenants.new(), tmp_path, [person(n) for n in (1, 2, 3)], state=state_backend)


# --- dates -----------------------------------------------------------------------------------


def test_grant_with_a_future_begin_date_adds_the_member_on_that_day_not_before(
    rights: Rights,
) -> None:
    rights.grant(1, begin="2026-12-10")
    assert rights.sync(D(2026, 12, 1)).counts["grant"] == 0
    assert rights.sync(D(2026, 12, 9)).counts["grant"] == 0
    assert rights.members() == set()
    report = rights.sync(D(2026, 12, 10))
    assert report.counts["grant"] == 1
    assert rights.members() == {1}


def test_grant_ending_on_day_e_is_withdrawn_in_the_run_of_e_plus_one(rights: Rights) -> None:
    rights.grant(1, begin="2026-12-01", end="2026-12-31")
    rights.sync(D(2026, 12, 1))
    assert rights.sync(D(2026, 12, 31)).counts["withdraw"] == 0
    assert rights.members() == {1}
    report = rights.sync(D(2027, 1, 1))
    assert report.counts["withdraw"] == 1
    assert rights.members() == set()
    assert rights.users()[email(1)]["active"] is True  # the right ended, not the job


def test_leaver_loses_the_group_the_day_after_the_last_working_day(rights: Rights) -> None:
    rights.rows[0].update(rights=RIGHT, end_date="2026-12-31")
    rights.sync(D(2026, 12, 1))
    rights.sync(D(2026, 12, 31))
    assert rights.members() == {1}
    report = rights.sync(D(2027, 1, 1))
    assert (report.counts["withdraw"], report.counts["deactivate"]) == (1, 1)
    assert rights.members() == set()
    assert rights.users()[email(1)]["active"] is False


def test_person_missing_from_the_hr_input_loses_the_group_with_their_account(
    rights: Rights,
) -> None:
    rights.rows[0]["rights"] = RIGHT
    rights.sync(D(2026, 12, 1))
    del rights.rows[0]
    report = rights.sync(D(2026, 12, 2))
    assert (report.counts["withdraw"], report.counts["deactivate"]) == (1, 1)
    assert rights.members() == set()


# --- one member per person -------------------------------------------------------------------


def test_person_holding_the_right_in_two_organisations_is_one_member(rights: Rights) -> None:
    rights.rows[0]["rights"] = RIGHT
    rights.rows.append(
        person(
            1,
            employee_id="O0001",
            organisation_code=OCMW,
            organisation_name="OCMW Scheldeveld",
            email="person1@ocmw-scheldeveld.be",
            rights=RIGHT,
        )
    )
    report = rights.sync(D(2026, 12, 1))
    assert report.counts["grant"] == 1
    assert rights.member_ids() == [rights.user_id(1)]


def test_right_still_held_through_the_other_organisation_is_not_withdrawn(
    rights: Rights,
) -> None:
    rights.grant(1, end="2026-12-31")
    rights.rows.append(person(1, employee_id="O0001", organisation_code=OCMW, rights=RIGHT))
    rights.sync(D(2026, 12, 1))
    report = rights.sync(D(2027, 1, 1))
    assert report.counts["withdraw"] == 0
    assert rights.member_ids() == [rights.user_id(1)]
    held = rights.users()[email(1)][ACMIDM]["rights"]
    assert [r["organizationCode"] for r in held] == [OCMW]


def test_users_acmidm_rights_carry_each_organisations_grant_with_its_dates(
    rights: Rights,
) -> None:
    rights.grant(1, begin="2026-11-15", end="2027-06-30")
    rights.rows.append(person(1, employee_id="O0001", organisation_code=OCMW, rights=RIGHT))
    rights.sync(D(2026, 12, 1))
    held = rights.users()[email(1)][ACMIDM]["rights"]
    assert {r["organizationCode"]: r for r in held} == {
        SCHELDEVELD: {
            "value": RIGHT,
            "organizationCode": SCHELDEVELD,
            "validFrom": "2026-11-15",
            "validTo": "2027-06-30",
        },
        OCMW: {  # the rights column: the whole work relation, with its dates
            "value": RIGHT,
            "organizationCode": OCMW,
            "validFrom": "2020-01-01",
        },
    }
    assert len(held) == 2
    assert "rights" not in rights.users()[email(2)].get(ACMIDM, {})


# --- other people's memberships ----------------------------------------------------------------


def test_member_added_by_hand_survives_syncs(rights: Rights) -> None:
    rights.rows[0]["rights"] = RIGHT
    rights.sync(D(2026, 12, 1))
    rights.add_by_hand(2)
    rights.sync(D(2026, 12, 2))
    rights.sync(D(2026, 12, 3), full=True)
    assert rights.members() == {1, 2}


def test_member_added_by_hand_survives_a_grant_of_that_right_ending(rights: Rights) -> None:
    rights.rows[0]["rights"] = RIGHT
    rights.sync(D(2026, 12, 1))
    rights.add_by_hand(2)
    rights.grant(2, begin="2026-12-05", end="2026-12-20")
    rights.grant(3, begin="2026-12-05", end="2026-12-20")
    granted = rights.sync(D(2026, 12, 5))
    assert granted.counts["grant"] == 2
    assert sorted(rights.member_ids()) == sorted(rights.user_id(n) for n in (1, 2, 3))
    ended = rights.sync(D(2026, 12, 21))
    assert ended.counts["withdraw"] == 1  # person 3's, which the connector added
    assert rights.members() == {1, 2}
    assert rights.sync(D(2026, 12, 22), full=True).counts["withdraw"] == 0
    assert rights.members() == {1, 2}


def test_leavers_membership_added_by_hand_is_left_to_whoever_added_it(rights: Rights) -> None:
    rights.rows[1]["end_date"] = "2026-12-31"
    rights.rows[0]["rights"] = RIGHT
    rights.sync(D(2026, 12, 1))
    rights.add_by_hand(2)
    report = rights.sync(D(2027, 1, 1))
    assert (report.counts["deactivate"], report.counts["withdraw"]) == (1, 0)
    assert rights.members() == {1, 2}


def test_existing_group_is_adopted_with_its_members(rights: Rights) -> None:
    rights.sync(D(2026, 12, 1))
    created = httpx2.post(
        f"{rights.server.base_url}/Groups",
        json={
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": RIGHT,
            "members": [{"value": rights.user_id(3)}],
        },
    )
    assert created.status_code == 201, created.text
    rights.rows[0]["rights"] = RIGHT
    rights.sync(D(2026, 12, 2))
    assert rights.group()["id"] == created.json()["id"]
    assert rights.members() == {1, 3}


def test_managed_member_removed_by_hand_comes_back_with_full(rights: Rights) -> None:
    rights.rows[0]["rights"] = RIGHT
    rights.sync(D(2026, 12, 1))
    rights.remove_by_hand(1)
    assert rights.sync(D(2026, 12, 2)).counts["grant"] == 0  # trusting the store: unseen
    report = rights.sync(D(2026, 12, 2), full=True)
    assert report.counts["grant"] == 1
    assert [w.kind for w in report.warnings].count("membership_restored") == 1
    assert rights.members() == {1}


def test_group_deleted_in_the_target_is_found_again_or_recreated(rights: Rights) -> None:
    rights.rows[0]["rights"] = RIGHT
    rights.sync(D(2026, 12, 1))
    deleted = httpx2.delete(f"{rights.server.base_url}/Groups/{rights.group()['id']}")
    assert deleted.status_code == 204
    rights.grant(2)
    report = rights.sync(D(2026, 12, 2))
    assert report.counts["grant"] == 1
    assert rights.members() == {2}
    assert rights.sync(D(2026, 12, 3)).counts["grant"] == 1  # person 1, lost with the group
    assert rights.members() == {1, 2}


# --- requests ----------------------------------------------------------------------------------


def test_250_new_holders_cost_ceil_250_over_batch_requests_on_the_group(
    rights: Rights,
) -> None:
    rights.rows = [person(n, rights=RIGHT) for n in range(1, 251)]
    # No lookups before each create (tested elsewhere): on scim2-server they cost 20 seconds.
    rights.extra_config = "[target.capabilities]\nfilter = false\n"
    report = rights.sync(D(2026, 12, 1))
    assert report.counts["grant"] == 250
    # The first 100 go with the group's create, the others in PATCHes of 100.
    assert len(rights.wire.group_writes()) == math.ceil(250 / 100)
    assert len(rights.wire.to_groups("PATCH")) == math.ceil(150 / 100)
    assert len(set(rights.member_ids())) == len(rights.member_ids()) == 250


def test_withdrawals_are_batched_like_grants(rights: Rights) -> None:
    rights.rows = [person(n, rights=RIGHT) for n in range(1, 6)]
    rights.target_config = "membership_batch_size = 2"
    rights.extra_config = "[safety]\nmax_withdrawals_percent = 100\n"
    assert rights.sync(D(2026, 12, 1)).counts["grant"] == 5
    assert len(rights.wire.group_writes()) == math.ceil(5 / 2)  # the group's create, 2 PATCHes
    for row in rights.rows:
        row["rights"] = ""
    report = rights.sync(D(2026, 12, 2))
    assert report.counts["withdraw"] == 5
    assert len(rights.wire.to_groups("PATCH")) == math.ceil(5 / 2)
    assert rights.members() == set()


# --- targets without PATCH ---------------------------------------------------------------------

NO_PATCH = "[target.capabilities]\npatch = false\n"


def test_without_patch_the_member_list_is_read_changed_and_put_back_with_if_match(
    rights: Rights,
) -> None:
    rights.extra_config = NO_PATCH
    rights.rows[0]["rights"] = RIGHT
    rights.sync(D(2026, 12, 1))
    rights.add_by_hand(2)
    rights.grant(3, end="2026-12-10")
    report = rights.sync(D(2026, 12, 2))
    assert report.counts["grant"] == 1
    assert rights.members() == {1, 2, 3}
    assert rights.wire.to_groups("PATCH") == []
    (put,) = rights.wire.to_groups("PUT")
    assert put.headers.get("if-match")
    read_before = [s for s in rights.wire.sent if s.method == "GET" and s.path == put.path]
    assert read_before and rights.wire.sent.index(read_before[-1]) < rights.wire.sent.index(put)
    assert rights.sync(D(2026, 12, 11)).counts["withdraw"] == 1
    assert rights.members() == {1, 2}


def test_without_patch_a_change_made_meanwhile_is_read_again_and_kept(rights: Rights) -> None:
    rights.extra_config = NO_PATCH
    rights.rows[0]["rights"] = RIGHT
    rights.sync(D(2026, 12, 1))
    rights.grant(3)
    puts: list[httpx2.Request] = []

    async def person_2_is_added_by_hand_just_before_the_first_put(request: httpx2.Request) -> None:
        if request.method == "PUT" and "/Groups/" in request.url.path:
            puts.append(request)
            if len(puts) == 1:
                rights.add_by_hand(2)

    settings = load_config(rights.write())
    hooks = {"request": [person_2_is_added_by_hand_just_before_the_first_put]}
    report = asyncio.run(jobs.sync(settings, jobs.new_run_id(), D(2026, 12, 2), event_hooks=hooks))
    assert report.exit_code == 0, report.to_json()
    assert len(puts) == 2  # the first lost the race (412), the group was read again
    assert rights.members() == {1, 2, 3}


# --- a run stopped part-way ----------------------------------------------------------------------


class Killed(BaseException):
    """The process dying: nothing in the connector catches it."""


async def kill_once_a_group_write_got_through(response: httpx2.Response) -> None:
    """A group's create (with its first members) or a PATCH of its members got through."""
    method, path = response.request.method, response.request.url.path
    patched = method == "PATCH" and "/Groups/" in path
    if patched or (method == "POST" and path.endswith("/Groups")):
        raise Killed


def test_membership_added_by_a_run_killed_before_recording_it_stays_the_connectors(
    rights: Rights,
) -> None:
    rights.grant(1, end="2026-12-10")
    settings = load_config(rights.write())
    hooks = {"response": [kill_once_a_group_write_got_through]}
    with pytest.raises(Killed):
        asyncio.run(jobs.sync(settings, jobs.new_run_id(), D(2026, 12, 1), event_hooks=hooks))
    assert rights.members() == {1}  # the write got through; the state store never heard of it
    assert rights.sync(D(2026, 12, 1)).counts["grant"] == 1  # run again: found, and owned
    assert rights.sync(D(2026, 12, 11)).counts["withdraw"] == 1
    assert rights.members() == set()


# --- back-up holders ---------------------------------------------------------------------------


def test_resync_of_one_holder_counts_back_ups_over_everyone(rights: Rights) -> None:
    for row in rights.rows:
        row["rights"] = RIGHT
    assert not [w for w in rights.sync(D(2026, 12, 1)).warnings if w.kind == "backup_holders"]
    one = jobs.Selection(employees=(EmployeeKey(SCHELDEVELD, "E0001"),))
    report = rights.sync(D(2026, 12, 2), selection=one, command="resync")
    assert [w.message for w in report.warnings if w.kind == "backup_holders"] == []
