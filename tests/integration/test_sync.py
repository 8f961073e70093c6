"""`sync` against a real SCIM server (scim2-server on loopback): the whole lifecycle of people."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from connector import jobs
from connector.config import load_config
from connector.report import Report
from tests.factories import HR_FIELDS, hr_row, make_nn, write_csv
from tests.integration.conftest import ScimServer
from tests.postgres import StateBackend, current_backend

pytestmark = pytest.mark.integration  # on SQLite and on PostgreSQL (`state_backend`)

D = dt.date
ACMIDM = "urn:ietf:params:scim:schemas:extension:acmidm:1.0:User"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


@dataclass
class Setup:
    """A configured connector pointing at a fresh server, with an HR file to edit."""

    server: ScimServer
    directory: Path
    rows: list[dict[str, str]]
    extra_config: str = ""
    state: StateBackend = field(default_factory=current_backend)

    @property
    def config_path(self) -> Path:
        return self.directory / "connector.toml"

    def write(self) -> None:
        write_csv(self.directory / "hr.csv", self.rows, fields=HR_FIELDS)
        self.config_path.write_text(
            f"""
[source]
path = "hr.csv"

[target]
base_url = "{self.server.base_url}"

[target.auth]
method = "none"

[state]
{self.state.toml(self.directory)}
{self.extra_config}
""",
            encoding="utf-8",
        )

    def sync(self, day: dt.date, **kw: Any) -> Report:
        self.write()
        settings = load_config(self.config_path)
        return asyncio.run(jobs.sync(settings, jobs.new_run_id(), day, **kw))

    def users(self) -> list[dict[str, Any]]:
        response = httpx2.get(f"{self.server.base_url}/Users", params={"count": 1000})
        resources: list[dict[str, Any]] = response.json().get("Resources", [])
        return resources


def person(n: int, **overrides: str) -> dict[str, str]:
    row = hr_row(n)
    row.update(
        {
            "national_id": make_nn(D(1960, 1, 1) + dt.timedelta(days=97 * n), serial=100 + n),
            "email": f"person{n}@scheldeveld.be",
            "start_date": "2020-01-01",
            "end_date": "",
            "relation": "employee",
            "employer_code": "",
            "rights": "",
        }
    )
    row.update(overrides)
    return row


@pytest.fixture
def setup(scim_server: ScimServer, tmp_path: Path, state_backend: StateBackend) -> Setup:
    return Setup(scim_server, tmp_path, [person(n) for n in range(1, 6)], state=state_backend)


def by_user_name(setup: Setup) -> dict[str, dict[str, Any]]:
    return {u["userName"]: u for u in setup.users()}


def test_first_sync_creates_everyone_active_today(setup: Setup) -> None:
    setup.rows.append(person(6, start_date="2027-01-04"))
    report = setup.sync(D(2026, 12, 1))
    assert report.exit_code == 0, report.to_json()
    assert report.counts["create"] == 5
    users = by_user_name(setup)
    assert sorted(users) == [f"person{n}@scheldeveld.be" for n in range(1, 6)]
    one = users["person1@scheldeveld.be"]
    assert one["active"] is True
    assert one[ACMIDM]["workRelations"][0]["organizationCode"] == setup.rows[0]["organisation_code"]


def test_second_sync_with_the_same_input_changes_nothing(setup: Setup) -> None:
    setup.sync(D(2026, 12, 1))
    report = setup.sync(D(2026, 12, 1))
    assert report.counts == {k: 0 for k in report.counts}
    assert report.plan is not None and report.plan.empty


def test_leaver_is_deactivated_in_the_run_after_the_last_working_day(setup: Setup) -> None:
    setup.rows[0]["end_date"] = "2026-12-31"
    setup.sync(D(2026, 12, 1))
    assert setup.sync(D(2026, 12, 31)).counts["deactivate"] == 0
    report = setup.sync(D(2027, 1, 1))
    assert report.counts["deactivate"] == 1
    user = by_user_name(setup)["person1@scheldeveld.be"]
    assert user["active"] is False


def test_job_change_updates_only_that_user(setup: Setup) -> None:
    setup.sync(D(2026, 12, 1))
    setup.rows[1]["department"] = "Financiën"
    report = setup.sync(D(2026, 12, 2))
    assert report.counts["update"] == 1
    assert sum(report.counts.values()) == 1
    user = by_user_name(setup)["person2@scheldeveld.be"]
    assert user[ENTERPRISE]["department"] == "Financiën"


def test_rehire_reactivates_the_same_user(setup: Setup) -> None:
    setup.rows[0]["end_date"] = "2026-12-31"
    setup.sync(D(2026, 12, 1))
    first_id = by_user_name(setup)["person1@scheldeveld.be"]["id"]
    setup.sync(D(2027, 1, 1))
    setup.rows[0].update(start_date="2027-03-01", end_date="")
    report = setup.sync(D(2027, 3, 1))
    assert report.counts["activate"] == 1 and report.counts["create"] == 0
    user = by_user_name(setup)["person1@scheldeveld.be"]
    assert user["id"] == first_id and user["active"] is True


def test_person_with_two_organisations_is_one_user_with_two_work_relations(setup: Setup) -> None:
    second = dict(setup.rows[0])
    second.update(
        employee_id="OCMW1",
        organisation_code="0212345668",
        organisation_name="OCMW Scheldeveld",
        email="person1@ocmw-scheldeveld.be",
    )
    setup.rows.append(second)
    report = setup.sync(D(2026, 12, 1))
    assert report.counts["create"] == 5
    user = by_user_name(setup)["person1@scheldeveld.be"]
    assert len(user[ACMIDM]["workRelations"]) == 2
    assert {e["value"] for e in user["emails"]} == {
        "person1@scheldeveld.be",
        "person1@ocmw-scheldeveld.be",
    }


def test_pre_existing_user_is_adopted_not_duplicated(setup: Setup) -> None:
    existing = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "PERSON3@scheldeveld.be",
        "title": "set by hand in the portal",
    }
    created = httpx2.post(f"{setup.server.base_url}/Users", json=existing)
    assert created.status_code == 201
    report = setup.sync(D(2026, 12, 1))
    assert report.exit_code == 0, report.to_json()
    users = setup.users()
    assert len(users) == 5
    adopted = next(u for u in users if u["id"] == created.json()["id"])
    assert adopted["externalId"] and adopted["name"]["familyName"] == "Family3"
    assert adopted["title"] == "set by hand in the portal"  # not the mapping's: left alone


def test_user_found_by_national_number_is_adopted(setup: Setup) -> None:
    digits = "".join(ch for ch in setup.rows[1]["national_id"] if ch.isdigit())
    existing = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ACMIDM],
        "userName": "someone.else@example.org",
        ACMIDM: {"nationalId": digits},
    }
    created = httpx2.post(f"{setup.server.base_url}/Users", json=existing)
    assert created.status_code == 201
    setup.sync(D(2026, 12, 1))
    users = setup.users()
    assert len(users) == 5
    adopted = next(u for u in users if u["id"] == created.json()["id"])
    assert adopted["userName"] == "person2@scheldeveld.be"


def test_person_missing_from_input_is_deactivated(setup: Setup) -> None:
    setup.sync(D(2026, 12, 1))
    del setup.rows[4]
    report = setup.sync(D(2026, 12, 2))
    assert report.counts["deactivate"] == 1
    assert by_user_name(setup)["person5@scheldeveld.be"]["active"] is False


def test_person_missing_from_input_is_left_alone_with_on_missing_ignore(setup: Setup) -> None:
    setup.extra_config = '[lifecycle]\non_missing = "ignore"\n'
    setup.sync(D(2026, 12, 1))
    del setup.rows[4]
    report = setup.sync(D(2026, 12, 2))
    assert sum(report.counts.values()) == 0
    assert by_user_name(setup)["person5@scheldeveld.be"]["active"] is True


def test_delete_after_days_deletes_on_the_right_day(setup: Setup) -> None:
    setup.extra_config = "[lifecycle]\ndelete_after_days = 30\n"
    setup.rows[0]["end_date"] = "2026-12-31"
    setup.sync(D(2026, 12, 1))
    setup.sync(D(2027, 1, 1))  # deactivated
    assert setup.sync(D(2027, 1, 30)).counts["delete"] == 0
    assert setup.sync(D(2027, 1, 31)).counts["delete"] == 1
    assert "person1@scheldeveld.be" not in by_user_name(setup)


def test_full_sync_puts_back_what_someone_changed_and_leaves_the_rest(setup: Setup) -> None:
    setup.sync(D(2026, 12, 1))
    user = by_user_name(setup)["person2@scheldeveld.be"]
    patch = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "replace", "path": "active", "value": False},
            {"op": "replace", "path": "displayName", "value": "Changed By Hand"},
            {"op": "replace", "path": "title", "value": "Not owned by the mapping"},
        ],
    }
    answer = httpx2.patch(f"{setup.server.base_url}/Users/{user['id']}", json=patch)
    assert answer.status_code in (200, 204)
    assert setup.sync(D(2026, 12, 2)).counts["activate"] == 0  # trusting the store: unseen
    report = setup.sync(D(2026, 12, 2), full=True)
    assert report.counts["activate"] == 1
    assert [w.kind for w in report.warnings].count("drift") == 1
    fixed = by_user_name(setup)["person2@scheldeveld.be"]
    assert fixed["active"] is True and fixed["displayName"] == "Given2 Family2"
    assert fixed["title"] == "Not owned by the mapping"
    again = setup.sync(D(2026, 12, 2), full=True)
    assert sum(again.counts.values()) == 0


def test_resync_of_one_person_reconciles_only_that_person(setup: Setup) -> None:
    setup.sync(D(2026, 12, 1))
    for n in (1, 2):
        user = by_user_name(setup)[f"person{n}@scheldeveld.be"]
        patch = {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": False}],
        }
        httpx2.patch(f"{setup.server.base_url}/Users/{user['id']}", json=patch)
    setup.write()
    settings = load_config(setup.config_path)
    selection = jobs.Selection(national_ids=(setup.rows[0]["national_id"],))
    report = asyncio.run(
        jobs.sync(settings, jobs.new_run_id(), D(2026, 12, 2), selection=selection)
    )
    assert report.counts["activate"] == 1
    users = by_user_name(setup)
    assert users["person1@scheldeveld.be"]["active"] is True
    assert users["person2@scheldeveld.be"]["active"] is False


def test_no_national_number_in_any_url_the_connector_sends(setup: Setup) -> None:
    existing = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "unrelated@example.org",
    }
    httpx2.post(f"{setup.server.base_url}/Users", json=existing)
    setup.sync(D(2026, 12, 1))
    setup.sync(D(2026, 12, 2), full=True)
    log = setup.server.log.read_text(encoding="utf-8")
    assert "/v2/Users" in log  # the server logs every request line it serves
    for row in setup.rows:
        digits = "".join(ch for ch in row["national_id"] if ch.isdigit())
        assert digits not in log
        assert row["national_id"] not in log
