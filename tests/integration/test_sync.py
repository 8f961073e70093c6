"""`sync` against a real SCIM server (scim2-server on loopback): the whole lifecycle of people."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest

from connector import jobs
from connector.config import load_config
from connector.report import Report
from tests.factories import HR_FIELDS, hr_row, make_nn, write_csv
from tests.integration.conftest import ScimServer

pytestmark = pytest.mark.integration

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
path = "state.db"
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
def setup(scim_server: ScimServer, tmp_path: Path) -> Setup:
    return Setup(scim_server, tmp_path, [person(n) for n in range(1, 6)])


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
