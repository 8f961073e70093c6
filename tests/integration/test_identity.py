"""Proof of identity against a real SCIM server (scim2-server on loopback): an account found
for a newcomer is adopted only when nothing about it contradicts them; anything else is a
correlation case (held, reported with both sides, resolved by `scim-connector resolve`)."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest

from connector import jobs, resolving
from connector.apply import matching
from connector.config import load_config
from connector.hr.records import EmployeeKey
from connector.report import Report
from connector.state import StateStore
from tests.factories import GENT, HR_FIELDS, hr_row, make_nn, write_csv
from tests.integration.conftest import RequestRecorder, ScimServer
from tests.postgres import StateBackend, current_backend

pytestmark = pytest.mark.integration

D = dt.date
ACMIDM = "urn:ietf:params:scim:schemas:extension:acmidm:1.0:User"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
RIGHT = "Premiezoeker Gebruiker"
JAN_A = "66060630174"  # the leaver (issue 13: made-up numbers, valid checksums)
JAN_B = "99090930218"  # the newcomer re-using the mailbox


def row(employee_id: str, digits: str, given: str, family: str, email: str, **more: str) -> dict:
    out = hr_row(1)
    out.update(
        employee_id=employee_id,
        national_id=digits,
        given_name=given,
        family_name=family,
        email=email,
        organisation_code=GENT,
        start_date="2000-01-01",
    )
    out.update(more)
    return out


@dataclass
class Connector:
    """The connector configured against a fresh server, with an HR file to edit."""

    server: ScimServer
    directory: Path
    rows: list[dict[str, str]] = field(default_factory=list)
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
""",
            encoding="utf-8",
        )

    def sync(self, day: dt.date, **kw: Any) -> Report:
        self.write()
        settings = load_config(self.config_path)
        return asyncio.run(jobs.sync(settings, jobs.new_run_id(), day, **kw))

    def resolve(self, **kw: Any) -> resolving.Resolved:
        self.write()
        settings = load_config(self.config_path)
        return resolving.resolve(settings, jobs.new_run_id(), **kw)

    def users(self) -> dict[str, dict[str, Any]]:
        response = httpx2.get(f"{self.server.base_url}/Users", params={"count": 1000})
        return {u["id"]: u for u in response.json().get("Resources", [])}

    def members(self) -> set[str]:
        response = httpx2.get(f"{self.server.base_url}/Groups", params={"count": 1000})
        groups = response.json().get("Resources", [])
        return {m["value"] for g in groups for m in g.get("members", [])}

    def linked(self) -> dict[str, str]:
        """SCIM id -> person key, as the state store links them."""
        store = StateStore.open(self.state.location(self.directory))
        try:
            return {u.scim_id: k for k, u in store.load_known().users.items()}
        finally:
            store.close()

    def post_user(self, body: dict[str, Any]) -> str:
        response = httpx2.post(f"{self.server.base_url}/Users", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


@pytest.fixture
def connector(scim_server: ScimServer, tmp_path: Path, state_backend: StateBackend) -> Connector:
    return Connector(scim_server, tmp_path, state=state_backend)


def jan_a() -> dict[str, str]:
    return row("A1", JAN_A, "Jan", "Peeters", "jan.peeters@gent.be", end_date="2026-12-31")


def jan_b() -> dict[str, str]:
    return row("B7", JAN_B, "Jan", "Peeters", "jan.peeters@gent.be", start_date="2027-01-04")


def leaver_and_newcomer(connector: Connector) -> tuple[str, dict[str, Any], Report]:
    """Issue 13's Jan Peeters: A leaves on 2026-12-31; B joins on 2027-01-04 with A's mailbox.
    A's account id, as the target held it after run 1, and run 2's report."""
    connector.rows = [jan_a()]
    first = connector.sync(D(2026, 12, 1))
    assert first.exit_code == 0, first.to_json()
    [(a_id, a_before)] = connector.users().items()
    connector.rows = [jan_a(), jan_b()]
    return a_id, a_before, connector.sync(D(2027, 1, 4))


def test_newcomer_reusing_a_leavers_mailbox_is_a_correlation_case_not_an_adoption(
    connector: Connector,
) -> None:
    a_id, a_before, report = leaver_and_newcomer(connector)

    assert report.exit_code == 1
    assert report.counts["create"] == 0 and report.counts["deactivate"] == 1
    answer = report.to_json()
    [case] = answer["correlation_cases"]
    assert case["person"] == {
        "employees": [f"{GENT}:B7"],
        "name": "Jan Peeters",
        "national_id": "99.09.09-***.**",
    }
    assert case["account"] == {
        "scim_id": a_id,
        "user_name": "jan.peeters@gent.be",
        "external_id": a_before["externalId"],
        "national_id": "66.06.06-***.**",
    }
    assert "externalId" in case["reason"]
    [warning] = [w for w in answer["warnings"] if w["kind"] == "correlation_case"]
    assert f"{GENT}:B7" in warning["message"] and a_id in warning["message"]
    assert JAN_A not in str(answer) and JAN_B not in str(answer)
    # A's account is A's, deactivated as planned; B has none; the store links A alone.
    [(only_id, account)] = connector.users().items()
    assert only_id == a_id and account["active"] is False
    assert account["externalId"] == a_before["externalId"]
    assert account[ACMIDM]["nationalId"] == JAN_A
    assert list(connector.linked()) == [a_id]


def test_an_open_correlation_case_is_reported_every_run_and_full_syncs_do_not_flip_the_account(
    connector: Connector,
) -> None:
    a_id, a_before, _ = leaver_and_newcomer(connector)
    held = connector.users()[a_id]
    for day in (D(2027, 1, 5), D(2027, 1, 6)):
        report = connector.sync(day, full=True)
        assert report.exit_code == 1 and len(report.correlation_cases) == 1
        assert sum(report.counts.values()) == 0, report.to_json()
        assert connector.users()[a_id]["meta"]["lastModified"] == held["meta"]["lastModified"]
    assert connector.users()[a_id]["externalId"] == a_before["externalId"]


def test_resolved_to_a_new_account_the_newcomer_gets_one_with_a_numbered_user_name(
    connector: Connector,
) -> None:
    a_id, a_before, _ = leaver_and_newcomer(connector)
    done = connector.resolve(employee=EmployeeKey(GENT, "B7"), new_account=True)
    assert done.resolution == "new_account"

    report = connector.sync(D(2027, 1, 5))
    assert report.exit_code == 0, report.to_json()
    assert report.counts["create"] == 1 and report.correlation_cases == []
    users = connector.users()
    [b_id] = set(users) - {a_id}
    assert users[b_id]["userName"] == "jan.peeters.2@gent.be"
    assert users[b_id]["active"] is True and users[b_id][ACMIDM]["nationalId"] == JAN_B
    assert users[a_id]["active"] is False and users[a_id]["externalId"] == a_before["externalId"]
    assert set(connector.linked()) == {a_id, b_id}
    # The numbered userName is kept: the next runs change nothing.
    again = connector.sync(D(2027, 1, 6))
    assert sum(again.counts.values()) == 0 and again.exit_code == 0, again.to_json()


def test_resolved_by_link_the_newcomer_adopts_that_account_and_the_leaver_is_unlinked(
    connector: Connector,
) -> None:
    a_id, _, _ = leaver_and_newcomer(connector)
    done = connector.resolve(person="99.09.09-302.18", link=a_id)
    assert done.link_scim_id == a_id and done.unlinked == "0207451227:A1 (66.06.06-***.**)"

    report = connector.sync(D(2027, 1, 5))
    assert report.exit_code == 0, report.to_json()
    assert report.extra["adopted"] == 1 and report.correlation_cases == []
    [(only_id, account)] = connector.users().items()
    assert only_id == a_id and account["active"] is True
    assert account[ACMIDM]["nationalId"] == JAN_B
    [b_key] = connector.linked().values()
    assert account["externalId"] == b_key
    again = connector.sync(D(2027, 1, 6), full=True)
    assert sum(again.counts.values()) == 0 and again.exit_code == 0, again.to_json()


def sofie(employee_id: str, digits: str, email: str, **more: str) -> dict[str, str]:
    return row(employee_id, digits, "Sofie", "Peeters", email, **more)


SOFIE_MARRIED = make_nn(D(1982, 2, 2), 133)
SOFIE_NEW = make_nn(D(1995, 5, 5), 123)


@pytest.mark.parametrize("how", ["listed", "looked up one by one"])
def test_a_newcomer_given_a_married_colleagues_freed_address_is_a_case_on_both_paths(
    connector: Connector, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    """Small target (every user read once, matched here) or large (one lookup per person):
    the same proof, the same outcome: a correlation case, no right for the newcomer."""
    connector.rows = [sofie("S1", SOFIE_MARRIED, "sofie.peeters@gent.be")]
    connector.rows += [
        row(f"P{n}", hr_row(n)["national_id"], f"Given{n}", f"Family{n}", f"p{n}@gent.be")
        for n in range(2, 6)
    ]
    assert connector.sync(D(2026, 12, 1)).exit_code == 0
    [(married_id, _)] = [
        (i, u) for i, u in connector.users().items() if u["userName"] == "sofie.peeters@gent.be"
    ]
    # Small: at most PREFETCH_FACTOR users per create are read once; large: looked up.
    monkeypatch.setattr(matching, "PREFETCH_FACTOR", 1000 if how == "listed" else 0)
    connector.rows[0] = sofie("S1", SOFIE_MARRIED, "sofie.janssens@gent.be")
    connector.rows.append(
        sofie("S2", SOFIE_NEW, "sofie.peeters@gent.be", start_date="2027-01-04", rights=RIGHT)
    )
    recorder = RequestRecorder()
    report = connector.sync(D(2027, 1, 4), event_hooks={"request": [recorder]})

    listed = any("/Users?" in u and "startIndex" in u for u in recorder.urls)
    assert listed is (how == "listed"), recorder.urls
    assert report.exit_code == 1
    [case] = report.correlation_cases
    assert case.employee_keys == (f"{GENT}:S2",) and case.scim_id == married_id
    assert report.counts["create"] == 0 and report.counts["grant"] == 0
    users = connector.users()
    assert users[married_id]["userName"] == "sofie.janssens@gent.be"
    assert users[married_id][ACMIDM]["nationalId"] == SOFIE_MARRIED
    assert married_id not in connector.members()
    assert len(users) == 5


def test_a_hand_made_account_of_someone_else_with_the_joiners_address_is_a_case(
    connector: Connector,
) -> None:
    other = connector.post_user(
        {
            "schemas": [CORE, ACMIDM],
            "userName": "jan.peeters@gent.be",
            "externalId": "made-by-hand-for-someone-else",
            "name": {"givenName": "Jan", "familyName": "Peeters"},
            ACMIDM: {"nationalId": JAN_A},
        }
    )
    connector.rows = [jan_b()]
    report = connector.sync(D(2027, 1, 4))
    assert report.exit_code == 1
    [case] = report.correlation_cases
    assert case.scim_id == other and case.account_external_id == "made-by-hand-for-someone-else"
    assert case.account_national_id == "66.06.06-***.**"
    account = connector.users()[other]
    assert account["externalId"] == "made-by-hand-for-someone-else"
    assert account[ACMIDM]["nationalId"] == JAN_A
    assert connector.linked() == {}


def test_a_hand_made_account_with_another_persons_name_and_the_joiners_address_is_a_case(
    connector: Connector,
) -> None:
    other = connector.post_user(
        {
            "schemas": [CORE],
            "userName": "jan.peeters@gent.be",
            "name": {"givenName": "Johan", "familyName": "Peeters"},
        }
    )
    connector.rows = [jan_b()]
    report = connector.sync(D(2027, 1, 4))
    [case] = report.correlation_cases
    assert case.scim_id == other and "name" in case.reason


def test_an_inactive_hand_made_account_with_the_joiners_address_is_no_proof(
    connector: Connector,
) -> None:
    other = connector.post_user(
        {"schemas": [CORE], "userName": "jan.peeters@gent.be", "active": False}
    )
    connector.rows = [jan_b()]
    report = connector.sync(D(2027, 1, 4))
    [case] = report.correlation_cases
    assert case.scim_id == other and "inactive" in case.reason
    assert connector.users()[other]["active"] is False


def test_an_active_hand_made_account_with_the_joiners_address_and_nothing_against_is_adopted(
    connector: Connector,
) -> None:
    mine = connector.post_user(
        {
            "schemas": [CORE],
            "userName": "Jan.Peeters@gent.be",
            "name": {"givenName": "Jan", "familyName": "Peeters"},
            "title": "made in the portal",
        }
    )
    connector.rows = [jan_b()]
    report = connector.sync(D(2027, 1, 4))
    assert report.exit_code == 0, report.to_json()
    assert report.extra["adopted"] == 1 and report.correlation_cases == []
    account = connector.users()[mine]
    assert account[ACMIDM]["nationalId"] == JAN_B and account["active"] is True
    assert account["title"] == "made in the portal"
    assert list(connector.linked()) == [mine]
