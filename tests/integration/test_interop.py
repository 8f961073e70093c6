"""One lifecycle, three independent SCIM servers, one expected end state.

The same HR story runs against scim2-server, the project's sandbox and django-scim2 (stock
adapters): joiners (one of them in two organisations), a right granted for a whole relation
and one granted for December only, a leaver, a member added by hand in the target (someone
else's, which must survive), and identical re-runs that must write nothing. Every server ends
in the same state, less only what it cannot store, asserted explicitly per server
(`Expected`), never by skipping a check.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from connector import jobs
from connector.config import load_config
from connector.report import Report
from connector.sandbox.server import sandbox_in_thread
from tests.factories import HR_FIELDS, hr_row, write_csv
from tests.integration.conftest import RequestRecorder, ScimServer, ScimTenants
from tests.postgres import state_toml

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("state_backend")]

RIGHT = "Premiezoeker Gebruiker"
OCMW = "0212345668"
WRITES = ("POST", "PUT", "PATCH", "DELETE")
DECEMBER, JANUARY = dt.date(2026, 12, 1), dt.date(2027, 1, 4)


@dataclass(frozen=True, slots=True)
class Expected:
    """What this server can store of what the connector sends."""

    emails_of_two_organisations: int = 2  # person 1 works in two organisations


@dataclass
class Target:
    """A server under test, reached without authentication, and what it can store."""

    name: str
    server: ScimServer
    expected: Expected = field(default_factory=Expected)

    def get(self, path: str, **params: Any) -> Any:
        answer = httpx2.get(f"{self.server.base_url}{path}", params=params, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def users(self) -> dict[str, dict[str, Any]]:
        """Every user, by userName."""
        listed = self.get("/Users", count=1000).get("Resources", [])
        return {user["userName"]: user for user in listed}

    def members(self, group_name: str) -> set[str]:
        """The userNames of a group's members."""
        by_id = {user["id"]: name for name, user in self.users().items()}
        groups = [g for g in self.get("/Groups").get("Resources", [])]
        named = [g for g in groups if g.get("displayName") == group_name]
        assert len(named) == 1, f"{len(named)} groups named {group_name!r}"
        group = self.get(f"/Groups/{named[0]['id']}")
        return {by_id.get(m["value"], m["value"]) for m in group.get("members") or []}

    def add_user_by_hand(self, user_name: str) -> str:
        body = {
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": user_name,
            "name": {"givenName": "Manual", "familyName": "Admin", "formatted": "Manual Admin"},
        }
        answer = httpx2.post(f"{self.server.base_url}/Users", json=body, timeout=10)
        assert answer.status_code == 201, answer.text
        return str(answer.json()["id"])

    def add_member_by_hand(self, group_name: str, user_id: str) -> None:
        groups = self.get("/Groups").get("Resources", [])
        group_id = next(g["id"] for g in groups if g.get("displayName") == group_name)
        patch = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": user_id}]}],
        }
        answer = httpx2.patch(f"{self.server.base_url}/Groups/{group_id}", json=patch)
        assert answer.status_code in (200, 204), answer.text


@pytest.fixture(params=["scim2-server", "sandbox", "django-scim2"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "scim2-server":
        tenants: ScimTenants = request.getfixturevalue("scim_tenants")
        yield Target("scim2-server", tenants.new())
    elif request.param == "sandbox":
        with sandbox_in_thread() as box:
            yield Target("sandbox", ScimServer(box.base_url, Path("-"), acmidm=True))
    else:
        server: ScimServer = request.getfixturevalue("django_scim")
        # django-scim2 keeps one e-mail per user (the first), without its type.
        yield Target("django-scim2", server, Expected(emails_of_two_organisations=1))


@dataclass
class Story:
    """The HR files and the connector's configuration for one target."""

    target: Target
    directory: Path

    def write(self, rows: list[dict[str, str]], grants: list[dict[str, str]]) -> Path:
        write_csv(self.directory / "hr.csv", rows, fields=HR_FIELDS)
        grant_fields = ["organisation_code", "employee_id", "right", "begin_date", "end_date"]
        write_csv(self.directory / "grants.csv", grants, fields=grant_fields)
        config = self.directory / "connector.toml"
        config.write_text(
            f"""
[source]
path = "hr.csv"
grants = "grants.csv"

[target]
base_url = "{self.target.server.base_url}"

[target.auth]
method = "none"

[state]
{state_toml(self.directory)}
""",
            encoding="utf-8",
        )
        return config

    def sync(self, config: Path, day: dt.date, *, full: bool = False) -> tuple[Report, list[str]]:
        """Run a sync; its report and the writes it sent (method and path)."""
        recorder = RequestRecorder()
        hooks = {"request": [recorder]}
        report = asyncio.run(
            jobs.sync(load_config(config), jobs.new_run_id(), day, full=full, event_hooks=hooks)
        )
        sent = [(r.method, httpx2.URL(r.url).path) for r in recorder.requests]
        writes = [
            f"{method} {path}"
            for method, path in sent
            if method in WRITES and not path.endswith("/.search")  # a search reads
        ]
        return report, writes


def people() -> list[dict[str, str]]:
    rows = [hr_row(n) for n in range(1, 6)]
    rows[1]["rights"] = RIGHT  # person 2: the right for the whole relation
    rows[3]["end_date"] = "2026-12-15"  # person 4 leaves mid-December
    second = hr_row(1, employee_id="O0001", organisation_code=OCMW, email="person1@ocmw.be")
    second["organisation_name"] = "OCMW"
    return [*rows, second]


DECEMBER_ONLY = [
    {
        "organisation_code": hr_row(3)["organisation_code"],
        "employee_id": "E0003",
        "right": RIGHT,
        "begin_date": "2026-12-01",
        "end_date": "2026-12-31",
    }
]


def test_the_same_lifecycle_ends_in_the_same_state_on_every_server(
    target: Target, tmp_path: Path
) -> None:
    story = Story(target, tmp_path)
    config = story.write(people(), DECEMBER_ONLY)

    first, _ = story.sync(config, DECEMBER)
    assert first.exit_code == 0, first.to_json()
    assert first.counts["create"] == 5 and first.counts["grant"] == 2
    users = target.users()
    assert {f"person{n}@gent.be" for n in range(1, 6)} <= users.keys()
    emails = {e["value"] for e in users["person1@gent.be"].get("emails", [])}
    assert len(emails) == target.expected.emails_of_two_organisations
    assert "person1@gent.be" in emails
    assert target.members(RIGHT) == {"person2@gent.be", "person3@gent.be"}

    again, writes = story.sync(config, DECEMBER)
    assert again.exit_code == 0, again.to_json()
    assert writes == [], "an identical re-run writes nothing"

    manual = target.add_user_by_hand("portal.admin@gent.be")
    target.add_member_by_hand(RIGHT, manual)

    january, _ = story.sync(config, JANUARY)
    assert january.exit_code == 0, january.to_json()
    assert january.counts["withdraw"] == 1 and january.counts["deactivate"] == 1
    users = target.users()
    assert users["person4@gent.be"]["active"] is False
    assert all(users[f"person{n}@gent.be"]["active"] for n in (1, 2, 3, 5))
    assert target.members(RIGHT) == {"person2@gent.be", "portal.admin@gent.be"}

    for full in (False, True):
        unchanged, writes = story.sync(config, JANUARY, full=full)
        assert unchanged.exit_code == 0, unchanged.to_json()
        assert writes == [], f"an identical re-run (full={full}) writes nothing"
    assert target.members(RIGHT) == {"person2@gent.be", "portal.admin@gent.be"}
