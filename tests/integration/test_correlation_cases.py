"""A correlation case over time, against a real SCIM server (scim2-server on loopback): every
sync looks for the person of an open case again (the same proof of identity); the case closes
by itself once nothing contradicts them, is kept up to date while something does, opens again
when the account `resolve --link` named is not there; and reports and the audit trail show it
as a case, never as a create planned and not done."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import httpx2
import pytest
from rich.console import Console

from connector import jobs
from connector.config import load_config
from connector.hr.records import EmployeeKey
from connector.known import Digests
from connector.mapping import canonical
from connector.render import render_report
from connector.report import Report
from connector.state import StateStore
from tests.factories import GENT
from tests.integration.test_identity import (
    ACMIDM,
    CORE,
    JAN_B,
    RIGHT,
    SOFIE_MARRIED,
    SOFIE_NEW,
    Connector,
    connector,
    jan_a,
    jan_b,
    leaver_and_newcomer,
    row,
    sofie,
)

pytestmark = pytest.mark.integration

__all__ = ["connector"]  # the fixture, shared with test_identity

D = dt.date
B7 = EmployeeKey(GENT, "B7")


def warnings_of(report: Report, kind: str) -> list[str]:
    return [w.message for w in report.warnings if w.kind == kind]


def journal(connector: Connector, employee: EmployeeKey) -> list[tuple[str, str, str | None]]:
    settings = load_config(connector.config_path)
    return [(e.kind, e.phase, e.detail) for e in jobs.audit_trail(settings, employee=employee)]


def patch_user(connector: Connector, scim_id: str, value: dict[str, Any]) -> None:
    body = {
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "replace", "value": value}],
    }
    response = httpx2.patch(f"{connector.server.base_url}/Users/{scim_id}", json=body)
    assert response.status_code in (200, 204), response.text


def test_a_case_closes_by_itself_once_hr_gives_the_newcomer_an_address_of_their_own(
    connector: Connector,
) -> None:
    a_id, _, opened = leaver_and_newcomer(connector)
    assert len(opened.correlation_cases) == 1

    connector.rows = [jan_a(), {**jan_b(), "email": "jan.peeters2@gent.be"}]
    report = connector.sync(D(2027, 1, 5))

    assert report.exit_code == 0, report.to_json()
    assert report.correlation_cases == [] and report.counts["create"] == 1
    [closed] = warnings_of(report, "correlation_closed")
    assert f"{GENT}:B7" in closed and a_id in closed and JAN_B not in closed
    users = connector.users()
    [b_id] = set(users) - {a_id}
    assert users[b_id]["userName"] == "jan.peeters2@gent.be"
    assert users[b_id][ACMIDM]["nationalId"] == JAN_B and users[b_id]["active"] is True
    assert set(connector.linked()) == {a_id, b_id}
    assert ("correlation", "closed", f"nothing against them found any more; created {b_id}") in (
        journal(connector, B7)
    )
    # Said once: the next run has no case and nothing to say about it.
    again = connector.sync(D(2027, 1, 6))
    assert again.exit_code == 0 and sum(again.counts.values()) == 0, again.to_json()
    assert warnings_of(again, "correlation_closed") == [] and again.correlation_cases == []


def test_a_case_closes_by_adoption_once_the_account_found_carries_nothing_against_them(
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
    assert len(connector.sync(D(2027, 1, 4)).correlation_cases) == 1
    # The portal's administrator corrects the name: it is this Jan's hand-made account.
    patch_user(connector, other, {"name": {"givenName": "Jan", "familyName": "Peeters"}})

    report = connector.sync(D(2027, 1, 5))

    assert report.exit_code == 0, report.to_json()
    assert report.extra["adopted"] == 1 and report.correlation_cases == []
    assert len(warnings_of(report, "correlation_closed")) == 1
    assert list(connector.linked()) == [other]
    assert connector.users()[other][ACMIDM]["nationalId"] == JAN_B


def test_a_case_still_contradicted_is_updated_with_the_account_as_it_is_now(
    connector: Connector,
) -> None:
    other = connector.post_user(
        {
            "schemas": [CORE],
            "userName": "jan.peeters@gent.be",
            "externalId": "set-by-hand",
            "name": {"givenName": "Jan", "familyName": "Peeters"},
        }
    )
    connector.rows = [jan_b()]
    [first] = connector.sync(D(2027, 1, 4)).correlation_cases
    assert first.account_external_id == "set-by-hand"
    patch_user(connector, other, {"externalId": "changed-by-hand", "active": False})

    report = connector.sync(D(2027, 1, 5))

    assert report.exit_code == 1
    [case] = report.correlation_cases
    assert case.scim_id == other and case.account_external_id == "changed-by-hand"
    assert (case.opened_at, case.run_id) == (first.opened_at, first.run_id)
    assert report.counts["create"] == 0 and report.failures == []
    assert connector.linked() == {} and len(connector.users()) == 1
    assert warnings_of(report, "correlation_closed") == []


def test_a_held_person_is_shown_as_a_case_not_as_a_create_planned_and_not_done(
    connector: Connector,
) -> None:
    connector.rows = [jan_a()]
    connector.sync(D(2026, 12, 1))
    connector.rows = [jan_a(), {**jan_b(), "rights": "Premiezoeker Gebruiker"}]
    connector.write()
    settings = load_config(connector.config_path)
    # The plan contacts nobody: it predicts the create, and says whose address it is.
    preview = jobs.plan(settings, jobs.new_run_id(), D(2027, 1, 4))
    assert preview.counts["create"] == 1
    [possible] = warnings_of(preview, "correlation_possible")
    assert f"{GENT}:B7" in possible and f"{GENT}:A1" in possible and "jan.peeters@" in possible

    for day in (D(2027, 1, 4), D(2027, 1, 5)):  # the run that opens the case, and the next
        report = connector.sync(day)
        assert len(report.correlation_cases) == 1
        answer = report.to_json()
        assert answer["planned"]["create"] == 0 and answer["planned"]["grant"] == 0
        assert [op for op in answer["operations"] if f"{GENT}:B7" in op["person"]] == []
        assert report.failures == []
        text = render_text(report)
        assert "new user" not in text and "Correlation cases (1)" in text


def render_text(report: Report) -> str:
    console = Console(record=True, width=200)
    render_report(console, report)
    return console.export_text()


def test_a_link_to_an_account_the_target_does_not_have_opens_the_case_again(
    connector: Connector,
) -> None:
    a_id, _, _ = leaver_and_newcomer(connector)
    connector.resolve(employee=B7, link="no-such-account")

    report = connector.sync(D(2027, 1, 5))

    assert report.failures == [] and report.exit_code == 1, report.to_json()
    [case] = report.correlation_cases
    assert case.status == "open" and case.scim_id == a_id
    assert case.reason == (
        "the account linked by resolve does not exist in the target; resolve again"
    )
    [warning] = warnings_of(report, "correlation_case")
    assert "resolve again" in warning and f"--link {a_id}" in warning
    assert any(
        phase == "correlation" and "no-such-account" in (detail or "")
        for _, phase, detail in journal(connector, B7)
    )
    # Not a failure repeated every night: the case is looked at again, and still stands.
    later = connector.sync(D(2027, 1, 6))
    assert later.failures == [] and len(later.correlation_cases) == 1, later.to_json()
    assert len(connector.users()) == 1 and list(connector.linked()) == [a_id]
    # Resolved again, properly this time.
    connector.resolve(employee=B7, new_account=True)
    done = connector.sync(D(2027, 1, 7))
    assert done.exit_code == 0 and done.counts["create"] == 1, done.to_json()


def test_a_full_sync_of_a_person_given_a_numbered_user_name_reports_no_drift(
    connector: Connector,
) -> None:
    leaver_and_newcomer(connector)
    connector.resolve(employee=B7, new_account=True)
    assert connector.sync(D(2027, 1, 5)).counts["create"] == 1

    for day in (D(2027, 1, 6), D(2027, 1, 7)):
        report = connector.sync(day, full=True)
        assert warnings_of(report, "drift") == [], report.to_json()
        assert sum(report.counts.values()) == 0 and report.exit_code == 0, report.to_json()


def test_the_audit_trail_of_a_person_in_a_case_is_found_by_employee_key(
    connector: Connector,
) -> None:
    leaver_and_newcomer(connector)
    held = journal(connector, B7)
    assert ("create", "correlation") in [(kind, phase) for kind, phase, _ in held]
    connector.resolve(employee=B7, new_account=True)
    resolved = journal(connector, B7)
    assert ("resolve", "done", "new account") in resolved


def test_the_audit_trail_of_a_person_no_longer_managed_is_found_by_employee_key(
    connector: Connector,
) -> None:
    """A leaver whose account an administrator deleted is forgotten by the state store (no
    account to manage); what the connector did for them stays findable by their key."""
    connector.rows = [row("N1", JAN_B, "Jan", "Peeters", "jan.peeters@gent.be")]
    connector.sync(D(2026, 12, 1))
    [scim_id] = connector.users()
    connector.rows = [{**connector.rows[0], "end_date": "2026-12-31"}]
    httpx2.delete(f"{connector.server.base_url}/Users/{scim_id}")
    report = connector.sync(D(2027, 1, 4), full=True)
    assert connector.linked() == {}, report.to_json()

    entries = journal(connector, EmployeeKey(GENT, "N1"))
    assert ("create", "done", None) in entries


def test_a_record_the_store_got_wrong_is_corrected_by_a_full_sync_without_drift(
    connector: Connector,
) -> None:
    """A state store from an earlier version recorded a numbered userName's digest as that of
    the e-mail it was made from: the target holds what is wanted, so nothing is put back, no
    drift is reported, and the record is corrected."""
    leaver_and_newcomer(connector)
    connector.resolve(employee=B7, new_account=True)
    connector.sync(D(2027, 1, 5))
    settings = load_config(connector.config_path)
    old = jobs.keyring(settings).digest(canonical("jan.peeters@gent.be"))
    store = StateStore.open(connector.state.location(connector.directory))
    try:
        key = store.person_for_employee(B7)
        user = store.load_known().users[key]
        wrong = [(p, old if p == "userName" else d) for p, d in user.digests.items()]
        store.save_user(replace(user, digests=Digests.of(wrong)))
    finally:
        store.close()
    before = {i: u["meta"]["lastModified"] for i, u in connector.users().items()}

    for day in (D(2027, 1, 6), D(2027, 1, 7)):
        report = connector.sync(day, full=True)
        assert warnings_of(report, "drift") == [], report.to_json()
        assert sum(report.counts.values()) == 0 and report.exit_code == 0, report.to_json()
    assert {i: u["meta"]["lastModified"] for i, u in connector.users().items()} == before
    store = StateStore.open(connector.state.location(connector.directory))
    try:
        assert store.load_known().users[key].digests.get("userName") != old
    finally:
        store.close()


@pytest.mark.parametrize("address", ["sofie.peeters2@gent.be", "sofie.peeters@gent.be"])
def test_sofie_peeters_case_closes_once_no_account_holds_her_address(
    connector: Connector, address: str
) -> None:
    """The tester's scenario: the married colleague's freed address makes the newcomer a case
    (the run finds it before it renames the colleague's account). The next run looks again:
    HR gave her `sofie.peeters2@`, or kept the address, which no account holds any more since
    the rename: either way she is created in that run, with her right, and the married
    colleague's account is left as it is."""
    connector.rows = [sofie("S1", SOFIE_MARRIED, "sofie.peeters@gent.be")]
    connector.sync(D(2026, 12, 1))
    [married_id] = connector.users()
    connector.rows = [
        sofie("S1", SOFIE_MARRIED, "sofie.janssens@gent.be"),
        sofie("S9", SOFIE_NEW, "sofie.peeters@gent.be", start_date="2027-01-04", rights=RIGHT),
    ]
    # Found before this run renamed the married colleague's account: shown as it was found.
    [case] = connector.sync(D(2027, 1, 4)).correlation_cases
    assert case.scim_id == married_id and case.account_user_name == "sofie.peeters@gent.be"
    connector.rows[1]["email"] = address

    report = connector.sync(D(2027, 1, 5))

    assert report.exit_code == 0 and report.correlation_cases == [], report.to_json()
    assert report.counts["create"] == 1 and report.counts["grant"] == 1
    assert len(warnings_of(report, "correlation_closed")) == 1
    users = connector.users()
    [new_id] = set(users) - {married_id}
    assert users[new_id]["userName"] == address
    assert users[new_id][ACMIDM]["nationalId"] == SOFIE_NEW
    assert users[married_id][ACMIDM]["nationalId"] == SOFIE_MARRIED
    assert connector.members() == {new_id}
