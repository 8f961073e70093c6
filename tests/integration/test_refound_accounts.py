"""A managed person's account that answers 404 (deleted, or made again by hand under another id)
is looked for again, and what is found is judged by the proof of identity like any match, with
the person's national number and name: adopted with proof, else a correlation case (scim2-server
on loopback; the administrator's delete and hand-made account are plain requests to it)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx2
import pytest

from connector.hr.records import EmployeeKey
from tests.factories import GENT
from tests.integration.conftest import ScimTenants
from tests.integration.test_identity import (
    ACMIDM,
    CORE,
    JAN_A,
    JAN_B,
    Connector,
    row,
)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("state_backend")]

D = dt.date


@pytest.fixture
def connector(scim_tenants: ScimTenants, tmp_path: Path) -> Connector:
    """Jan Peeters (A1) managed and active, in a target of his own."""
    connector = Connector(scim_tenants.new(), tmp_path)
    connector.rows = [jan()]
    first = connector.sync(D(2026, 12, 1))
    assert first.exit_code == 0, first.to_json()
    return connector


def jan(**more: str) -> dict[str, str]:
    return row("A1", JAN_A, "Jan", "Peeters", "jan.peeters@gent.be", **more)


def delete_by_hand(connector: Connector) -> None:
    [scim_id] = connector.users()
    response = httpx2.delete(f"{connector.server.base_url}/Users/{scim_id}")
    assert response.status_code == 204


def test_an_account_found_again_after_a_404_with_another_national_number_is_a_correlation_case(
    connector: Connector,
) -> None:
    delete_by_hand(connector)
    other = connector.post_user(  # someone else's account, made by hand with Jan's address
        {
            "schemas": [CORE, ACMIDM],
            "userName": "jan.peeters@gent.be",
            "name": {"givenName": "Jan", "familyName": "Peeters"},
            ACMIDM: {"nationalId": JAN_B},
        }
    )
    connector.rows = [jan(department="Burgerzaken")]  # an update, answered 404

    report = connector.sync(D(2026, 12, 2))

    assert report.exit_code == 1 and report.failures == []
    [case] = report.correlation_cases
    assert case.scim_id == other and "another national number" in case.reason
    assert case.account_national_id == "99.09.09-***.**"
    assert case.employee_keys == (str(EmployeeKey(GENT, "A1")),)
    assert "66.06.06-***.**" in case.label
    account = connector.users()[other]  # not adopted: nothing of Jan's written over it
    assert ACMIDM in account and account[ACMIDM]["nationalId"] == JAN_B
    assert "externalId" not in account
    assert connector.linked() == {}  # the link to the deleted account is dropped

    again = connector.sync(D(2026, 12, 3))
    assert [c.scim_id for c in again.correlation_cases] == [other]
    assert sum(again.counts.values()) == 0 and len(connector.users()) == 1

    connector.resolve(employee=EmployeeKey(GENT, "A1"), new_account=True)
    resolved = connector.sync(D(2026, 12, 4))
    assert resolved.exit_code == 0, resolved.to_json()
    assert resolved.counts["create"] == 1 and resolved.correlation_cases == []
    by_name = {u["userName"]: u for u in connector.users().values()}
    assert by_name["jan.peeters.2@gent.be"][ACMIDM]["nationalId"] == JAN_A
    assert by_name["jan.peeters@gent.be"]["id"] == other


def test_an_account_found_again_with_another_name_is_a_case_and_resolved_by_link(
    connector: Connector,
) -> None:
    delete_by_hand(connector)
    other = connector.post_user(
        {
            "schemas": [CORE],
            "userName": "jan.peeters@gent.be",
            "name": {"givenName": "Johan", "familyName": "Peeters"},
        }
    )
    connector.rows = [jan(department="Burgerzaken")]
    [case] = connector.sync(D(2026, 12, 2)).correlation_cases
    assert case.scim_id == other and "name" in case.reason

    connector.resolve(employee=EmployeeKey(GENT, "A1"), link=other)  # it is his after all
    linked = connector.sync(D(2026, 12, 3))

    assert linked.exit_code == 0, linked.to_json()
    assert linked.correlation_cases == [] and linked.extra["adopted"] == 1
    account = connector.users()[other]
    assert account[ACMIDM]["nationalId"] == JAN_A and account["name"]["givenName"] == "Jan"
    assert list(connector.linked()) == [other]


def test_an_account_made_again_by_hand_with_the_persons_number_is_adopted_after_a_404(
    connector: Connector,
) -> None:
    delete_by_hand(connector)
    again = connector.post_user(
        {
            "schemas": [CORE, ACMIDM],
            "userName": "jan.peeters@gent.be",
            "name": {"givenName": "Jan", "familyName": "Peeters"},
            ACMIDM: {"nationalId": JAN_A},
        }
    )
    connector.rows = [jan(department="Burgerzaken")]

    report = connector.sync(D(2026, 12, 2))

    assert report.exit_code == 0 and report.correlation_cases == [], report.to_json()
    assert report.counts["update"] == 1 and list(connector.linked()) == [again]
    assert len(connector.users()) == 1


def test_a_leaver_whose_address_went_to_someone_elses_inactive_account_is_done_not_a_case(
    connector: Connector,
) -> None:
    delete_by_hand(connector)
    other = connector.post_user(
        {"schemas": [CORE], "userName": "jan.peeters@gent.be", "active": False}
    )
    connector.rows = [jan(end_date="2026-12-01")]

    report = connector.sync(D(2026, 12, 2))  # no active account is left, whoever's it is

    assert report.exit_code == 0 and report.correlation_cases == [], report.to_json()
    assert connector.users()[other]["active"] is False and connector.linked() == {}
