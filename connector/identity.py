"""Proof of identity (pure): whether an account found in the target may be adopted for a person,
the userName a person resolved to a new account gets, and e-mail addresses two people share.

One rule for every way an account is found (a live lookup or the target read once, by
externalId, national number or userName): an account is adopted only when nothing about it
contradicts the person (see `proof` and README, "How matching decides"). Anything else is a
correlation case: no create, no adoption, until a person resolves it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from connector.errors import ConnectorError
from connector.hr.records import Warning_, mask_digits
from connector.people import Person
from connector.scim_models import national_id_of


@dataclass(frozen=True, slots=True)
class Account:
    """What matching needs of one user found in the target."""

    scim_id: str
    user_name: str
    external_id: str | None = None
    national_id: str | None = None  # digits, where the target keeps one
    active: bool = True
    given_name: str | None = None
    family_name: str | None = None

    @property
    def masked_national_id(self) -> str | None:
        """The national number it carries, masked (never shown in clear)."""
        return mask_digits(self.national_id) if self.national_id else None


def account_of(user: Any) -> Account | None:
    """The Account of a parsed SCIM user (None without an id)."""
    if user.id is None:
        return None
    name = user.name
    return Account(
        scim_id=str(user.id),
        user_name=str(user.user_name or ""),
        external_id=user.external_id or None,
        national_id=national_id_of(user) or None,
        active=user.active is not False,
        given_name=(name.given_name or None) if name else None,
        family_name=(name.family_name or None) if name else None,
    )


@dataclass(frozen=True, slots=True)
class Seeker:
    """The person an account is looked for: their key (also the externalId the connector
    gives them), national number, wanted userName and name."""

    key: str
    digits: str | None
    user_name: str
    given_name: str | None = None
    family_name: str | None = None
    employee_keys: tuple[str, ...] = ()  # ORG:ID, for reports


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether an account may be adopted; `reason` says why not."""

    adopt: bool
    reason: str = ""


ADOPT = Verdict(True)


def proof(seeker: Seeker, account: Account, linked_to: str | None) -> Verdict:
    """Whether `account` may be adopted for `seeker`: only when nothing contradicts it.

    `linked_to`: the person key the state store (or this run) links the account to, if any.
    Contradictions: a link to another person; an externalId that is not the person's; a
    national number that is not theirs. Without either identifier matching (found by userName
    or e-mail only), an inactive account, or one carrying another name, is no proof either.
    """
    against = []
    if linked_to is not None and linked_to != seeker.key:
        against.append("the state store links this account to another person")
    if account.external_id and account.external_id != seeker.key:
        against.append("its externalId is another person's")
    if account.national_id and seeker.digits and account.national_id != seeker.digits:
        against.append("it carries another national number")
    if against:
        return Verdict(False, "; ".join(against))
    identified = account.external_id == seeker.key or (
        account.national_id is not None and account.national_id == seeker.digits
    )
    if identified:
        return ADOPT
    if not account.active:
        return Verdict(False, "an inactive account found by userName only: no proof")
    if _other_name(account.given_name, seeker.given_name) or _other_name(
        account.family_name, seeker.family_name
    ):
        return Verdict(False, "it carries another person's name")
    return ADOPT


def _folded(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.split(r"[\s\-]+", bare.casefold().strip()))


def _other_name(held: str | None, wanted: str | None) -> bool:
    """True when the account holds a name part and it is not the person's (accents, case,
    hyphens and spacing aside)."""
    return bool(held and wanted and _folded(held) != _folded(wanted))


class CorrelationFound(ConnectorError):
    """An account was found for a person, but something about it contradicts them (`proof`):
    no create, no adoption; the person is held as a correlation case until it is resolved."""

    def __init__(self, seeker: Seeker, account: Account, reason: str) -> None:
        self.seeker = seeker
        self.account = account
        self.reason = reason
        # The SCIM id the state store links the person to, gone from the target (a 404), when
        # the account was looked for again for a managed person: that link is dropped.
        self.stale_link: str | None = None
        super().__init__(f"correlation case: account {account.scim_id} ({reason})")


# --- a new account's userName -----------------------------------------------------------------

FIRST_SUFFIX = 2
LAST_SUFFIX = 99
_SUFFIXED = re.compile(r"^(?P<local>.+)\.(?P<n>[0-9]{1,2})@(?P<domain>[^@]+)$")


def suffixed_user_name(email: str, n: int) -> str:
    """The userName a person resolved to a new account gets when `email` is taken: a numeric
    suffix after the local part, `jan.peeters.2@gent.be` (2, 3, ... up to 99)."""
    local, _, domain = email.rpartition("@")
    return f"{local}.{n}@{domain}"


def user_names_for_new_account(email: str) -> list[str]:
    """The userNames tried, in order, for a person resolved to a new account."""
    return [email] + [suffixed_user_name(email, n) for n in range(FIRST_SUFFIX, LAST_SUFFIX + 1)]


def is_suffixed_of(user_name: str, email: str) -> bool:
    """True when `user_name` is `email` with a new account's numeric suffix."""
    found = _SUFFIXED.match(user_name)
    if found is None or not FIRST_SUFFIX <= int(found["n"]) <= LAST_SUFFIX:
        return False
    return f"{found['local']}@{found['domain']}".casefold() == email.casefold()


# --- e-mail addresses shared by people ---------------------------------------------------------


def shared_emails(people: Mapping[str, Person] | Iterable[Person]) -> list[Warning_]:
    """A warning per e-mail address that people with different national numbers share in one
    export (no account is adopted by it without proof; see README, "How matching decides")."""
    listed = people.values() if isinstance(people, Mapping) else people
    first: dict[str, Person] = {}  # e-mail (casefolded) -> the first person with it
    shared: dict[str, dict[str, Person]] = {}  # only the addresses people share
    for person in listed:
        for relation in person.relations:
            email = relation.email.casefold()
            owner = first.setdefault(email, person)
            if owner.national_id.digits != person.national_id.digits:
                persons = shared.setdefault(email, {owner.national_id.digits: owner})
                persons[person.national_id.digits] = person
    warnings = []
    for email, persons in sorted(shared.items()):
        named = "; ".join(_named(p, email) for _, p in sorted(persons.items()))
        warnings.append(
            Warning_(
                kind="shared_email",
                message=f"{email} is the e-mail of {len(persons)} different people: {named}; "
                "no account is adopted by it without proof of identity",
                field="email",
            )
        )
    return warnings


def _named(person: Person, email: str) -> str:
    keys = ", ".join(sorted(str(r.key) for r in person.relations if r.email.casefold() == email))
    return f"{keys} {person.given_name} {person.family_name} ({person.national_id.masked})"
