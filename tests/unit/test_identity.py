"""Proof of identity (connector.identity): when an account found in the target may be adopted,
a new account's userName, and e-mail addresses two people share in one export."""

from __future__ import annotations

import datetime as dt

import pytest

from connector.hr.records import EmployeeKey, NationalId
from connector.identity import (
    Account,
    Seeker,
    is_suffixed_of,
    proof,
    shared_emails,
    suffixed_user_name,
    user_names_for_new_account,
)
from connector.people import Person, WorkRelation
from tests.factories import GENT, make_nn

JAN_A = "66060630174"
JAN_B = "99090930218"
SEEKER = Seeker(
    key="key-b",
    digits=JAN_B,
    user_name="jan.peeters@gent.be",
    given_name="Jan",
    family_name="Peeters",
)


def account(**fields: object) -> Account:
    values: dict[str, object] = {"scim_id": "acc-1", "user_name": "jan.peeters@gent.be"}
    values.update(fields)
    return Account(**values)  # type: ignore[arg-type]


CASES = [
    # (what the account carries, linked in the store to, adopted?, reason contains)
    ("ours by externalId", account(external_id="key-b"), None, True, ""),
    ("ours by externalId, inactive", account(external_id="key-b", active=False), None, True, ""),
    ("ours by national number", account(national_id=JAN_B), None, True, ""),
    (
        "ours by national number, inactive, other spelling",
        account(national_id=JAN_B, active=False, given_name="JAN"),
        None,
        True,
        "",
    ),
    ("hand-made, empty externalId, active", account(), None, True, ""),
    (
        "hand-made, same name (accents, case aside)",
        account(given_name="jan", family_name="PEETERS"),
        None,
        True,
        "",
    ),
    ("ours, linked to us", account(external_id="key-b"), "key-b", True, ""),
    ("another's externalId", account(external_id="key-a"), None, False, "externalId"),
    (
        "another's externalId and number (the leaver's account)",
        account(external_id="key-a", national_id=JAN_A),
        None,
        False,
        "externalId",
    ),
    ("another national number", account(national_id=JAN_A), None, False, "national number"),
    (
        "our externalId but another national number",
        account(external_id="key-b", national_id=JAN_A),
        None,
        False,
        "national number",
    ),
    ("linked to another person", account(), "key-a", False, "links this account"),
    (
        "ours by externalId but linked to another person",
        account(external_id="key-b"),
        "key-a",
        False,
        "links this account",
    ),
    ("userName only, inactive", account(active=False), None, False, "inactive"),
    (
        "userName only, another name",
        account(given_name="Sofie", family_name="Peeters"),
        None,
        False,
        "name",
    ),
]


@pytest.mark.parametrize(
    ("carries", "linked_to", "adopted", "reason"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_an_account_is_adopted_only_when_nothing_contradicts_the_person(
    carries: Account, linked_to: str | None, adopted: bool, reason: str
) -> None:
    verdict = proof(SEEKER, carries, linked_to)
    assert verdict.adopt is adopted
    assert reason in verdict.reason


def test_a_seeker_without_a_number_is_not_contradicted_by_the_accounts_number() -> None:
    seeker = Seeker(key="key-b", digits=None, user_name="jan.peeters@gent.be")
    assert proof(seeker, account(external_id="key-b", national_id=JAN_A), None).adopt


def test_a_new_accounts_user_names_are_the_email_then_numbered_before_the_at() -> None:
    names = user_names_for_new_account("jan.peeters@gent.be")
    assert names[:3] == ["jan.peeters@gent.be", "jan.peeters.2@gent.be", "jan.peeters.3@gent.be"]
    assert names[-1] == "jan.peeters.99@gent.be"
    assert suffixed_user_name("a@b.be", 7) == "a.7@b.be"


@pytest.mark.parametrize(
    ("user_name", "email", "expected"),
    [
        ("jan.peeters.2@gent.be", "jan.peeters@gent.be", True),
        ("Jan.Peeters.12@Gent.be", "jan.peeters@gent.be", True),
        ("jan.peeters@gent.be", "jan.peeters@gent.be", False),
        ("jan.peeters.1@gent.be", "jan.peeters@gent.be", False),
        ("jan.peeters.2@gent.nl", "jan.peeters@gent.be", False),
        ("jan.2@gent.be", "jan.peeters@gent.be", False),
    ],
)
def test_a_suffixed_user_name_is_recognised_as_that_email(
    user_name: str, email: str, expected: bool
) -> None:
    assert is_suffixed_of(user_name, email) is expected


def _person(digits: str, given: str, family: str, *relations: tuple[str, str]) -> Person:
    return Person(
        national_id=NationalId(digits, "nn"),
        given_name=given,
        family_name=family,
        relations=tuple(
            WorkRelation(
                key=EmployeeKey(GENT, employee_id),
                email=email,
                start_date=dt.date(2020, 1, 1),
                end_date=None,
            )
            for employee_id, email in relations
        ),
    )


def test_two_national_numbers_sharing_an_email_are_warned_about_naming_both() -> None:
    first = make_nn(dt.date(1973, 1, 9), 256)
    second = make_nn(dt.date(1985, 7, 30), 33)
    people = {
        first: _person(first, "Marieke", "Aerts", ("G1012", "marieke.aerts@x.be")),
        second: _person(
            second,
            "Marieke",
            "Aerts",
            ("G1026", "Marieke.Aerts@x.be"),
            ("O0001", "marieke@ocmw.be"),
        ),
    }
    [warning] = shared_emails(people)
    assert warning.kind == "shared_email"
    assert f"{GENT}:G1012" in warning.message and f"{GENT}:G1026" in warning.message
    assert "O0001" not in warning.message
    assert first not in warning.message and second not in warning.message  # masked only
    assert "73.01.09-***.**" in warning.message


def test_one_person_using_one_email_twice_is_no_warning() -> None:
    digits = make_nn(dt.date(1985, 7, 30), 33)
    people = {digits: _person(digits, "A", "B", ("E1", "a@x.be"), ("E2", "a@x.be"))}
    assert shared_emails(people) == []
