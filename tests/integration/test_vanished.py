"""A person who vanishes from the HR export is ended in the ACM/IDM extension exactly as a
leaver is (scim2-server on loopback, the extension read back), and rights from the HR `rights`
column carry their work relation's dates."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx2
import pytest

from tests.integration.test_rights import ACMIDM, RIGHT, SCHELDEVELD, Rights, email, rights

pytestmark = pytest.mark.integration

D = dt.date
__all__ = ["rights"]  # the fixture


def extension(rights: Rights, n: int) -> dict[str, Any]:
    user = rights.users()[email(n)]
    found: dict[str, Any] = user.get(ACMIDM, {})
    return found


def test_rights_from_the_rights_column_carry_the_relations_dates(rights: Rights) -> None:
    rights.rows[0].update(rights=RIGHT, start_date="2021-03-01", end_date="2027-02-28")
    rights.sync(D(2026, 12, 1))
    assert extension(rights, 1)["rights"] == [
        {
            "value": RIGHT,
            "organizationCode": SCHELDEVELD,
            "validFrom": "2021-03-01",
            "validTo": "2027-02-28",
        }
    ]


def test_a_vanished_person_looks_exactly_like_a_leaver_in_the_extension(rights: Rights) -> None:
    rights.rows[0]["rights"] = RIGHT  # person 1 will vanish from the export
    rights.rows[1].update(rights=RIGHT, end_date="2026-12-31")  # person 2 leaves on 31-12
    rights.sync(D(2026, 12, 1))
    assert extension(rights, 1)["workRelations"][0]["active"] is True
    del rights.rows[0]
    report = rights.sync(D(2027, 1, 1))  # the run that notices: last known day 31-12
    assert (report.counts["deactivate"], report.counts["withdraw"]) == (2, 2)

    vanished, leaver = extension(rights, 1), extension(rights, 2)
    assert vanished["workRelations"] == [
        {
            "organizationCode": SCHELDEVELD,
            "organizationName": "Gemeente Scheldeveld",
            "email": email(1),
            "userType": "employee",
            "validFrom": "2020-01-01",
            "validTo": "2026-12-31",
            "active": False,
        }
    ]
    assert vanished["workRelations"] == [dict(r, email=email(1)) for r in leaver["workRelations"]]
    ended = {"value": RIGHT, "organizationCode": SCHELDEVELD, "validFrom": "2020-01-01"}
    assert vanished["rights"] == leaver["rights"] == [dict(ended, validTo="2026-12-31")]
    assert rights.users()[email(1)]["active"] is False
    assert rights.members() == set()
    quiet = rights.sync(D(2027, 1, 5))  # nothing more to do, days later
    assert sum(quiet.counts.values()) == 0, quiet.counts
    assert extension(rights, 1)["workRelations"][0]["validTo"] == "2026-12-31"


def test_full_corrects_a_vanished_persons_extension_put_back_by_hand(rights: Rights) -> None:
    rights.rows[0]["rights"] = RIGHT
    rights.sync(D(2026, 12, 1))
    opened = rights.users()[email(1)]
    del rights.rows[0]
    rights.sync(D(2026, 12, 10))
    assert extension(rights, 1)["workRelations"][0]["validTo"] == "2026-12-09"
    # Someone puts the old (open, active) extension back in the target.
    body = {k: v for k, v in rights.users()[email(1)].items() if k not in ("meta",)}
    body[ACMIDM] = opened[ACMIDM]
    answer = httpx2.put(f"{rights.server.base_url}/Users/{opened['id']}", json=body)
    assert answer.status_code == 200, answer.text
    assert extension(rights, 1)["workRelations"][0]["active"] is True

    assert sum(rights.sync(D(2026, 12, 11)).counts.values()) == 0  # trusts the state store
    report = rights.sync(D(2026, 12, 12), full=True)
    assert report.counts["update"] == 1, report.to_json()
    relation = extension(rights, 1)["workRelations"][0]
    assert (relation["active"], relation["validTo"]) == (False, "2026-12-09")
    assert extension(rights, 1)["rights"][0]["validTo"] == "2026-12-09"
