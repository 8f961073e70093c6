"""Whom a `resync` (or a webhook event) is about, and which rejected rows are its business.

A resync reports and exits on the people it resyncs alone: the rejected rows about them are
its rejections; rows about other people, and rows that name nobody who can be told, are only
counted (`Scoped`), and `scim-connector validate` or the next `sync` lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from connector.errors import ConnectorError
from connector.hr.records import EmployeeKey, Rejection
from connector.keys import Keyring
from connector.nationalid import InvalidNationalId, parse_national_id
from connector.people import Person


class SelectionError(ConnectorError):
    """A resync names someone the connector cannot find."""


OwnerOf = Callable[[EmployeeKey], str | None]
"""The person key of whoever holds an employee key (None: nobody the connector can tell)."""


@dataclass(frozen=True, slots=True)
class Selection:
    """The people a `resync` is about: national numbers and/or employee keys."""

    national_ids: tuple[str, ...] = ()  # as typed by the user; parsed here
    employees: tuple[EmployeeKey, ...] = ()

    def person_keys(
        self, ring: Keyring, owner_of: OwnerOf, rejected: Iterable[Rejection] = ()
    ) -> frozenset[str]:
        """The person keys selected; raises SelectionError for what matches nobody.

        An employee key that only a rejected row holds is not an error: the resync reports
        that row (and, when the row's national number is readable, is about its person)."""
        keys = set()
        for text in self.national_ids:
            try:
                keys.add(ring.person_key(parse_national_id(text).digits))
            except InvalidNationalId as exc:
                raise SelectionError(f"--person: {exc}") from None
        named: dict[EmployeeKey, list[Rejection]] = {}
        for rejection in rejected:
            if rejection.key is not None:
                named.setdefault(rejection.key, []).append(rejection)
        for employee in self.employees:
            key = owner_of(employee)
            if key is not None:
                keys.add(key)
            elif employee in named:
                keys.update(
                    ring.person_key(n.digits) for r in named[employee] for n in r.national_ids
                )
            else:
                raise SelectionError(
                    f"--employee {employee}: not in the HR input and not managed by the connector"
                )
        return frozenset(keys)


def owners(people: Mapping[str, Person], ring: Keyring, stored: OwnerOf) -> OwnerOf:
    """Who holds an employee key: the person whose accepted HR row it is (`people`: by
    national number digits), else whom the state store links it to (`stored`)."""
    digits_of: dict[EmployeeKey, str] = {}  # made on first use: a plain sync asks nobody

    def owner_of(key: EmployeeKey) -> str | None:
        if not digits_of:
            digits_of.update((r.key, d) for d, p in people.items() for r in p.relations)
        digits = digits_of.get(key)
        return ring.person_key(digits) if digits is not None else stored(key)

    return owner_of


@dataclass(frozen=True, slots=True)
class Scoped:
    """A resync's rejected rows: those about the selected people (its business), and how many
    other rows were rejected, about other people or about nobody who can be told."""

    theirs: tuple[Rejection, ...]
    other_rows: int  # rows about other people
    unattributed_rows: int  # rows naming neither a readable national number nor a known key


def scope_rejections(
    rejected: Iterable[Rejection],
    selected: frozenset[str],
    employees: Iterable[EmployeeKey],
    ring: Keyring,
    owner_of: OwnerOf,
) -> Scoped:
    """Split rejected rows into the selected people's (`selected`: person keys; `employees`:
    keys named on the command line) and counts of the others' and of rows whose person cannot
    be told. A row is a person's when it names their national number or holds one of their
    employee keys; a row with neither readable, or only a key nobody holds, could be anyone's."""
    named = frozenset(employees)
    theirs: list[Rejection] = []
    other: set[tuple[str, int | None]] = set()
    unattributed: set[tuple[str, int | None]] = set()
    for rejection in rejected:
        whose = {ring.person_key(n.digits) for n in rejection.national_ids}
        if rejection.key is not None:
            holder = owner_of(rejection.key)
            if holder is not None:
                whose.add(holder)
        where = (rejection.file, rejection.row)
        if whose & selected or rejection.key in named:
            theirs.append(rejection)
        elif whose:
            other.add(where)
        else:
            unattributed.add(where)
    mine = {(r.file, r.row) for r in theirs}
    return Scoped(
        theirs=tuple(theirs),
        other_rows=len(other - mine),
        unattributed_rows=len(unattributed - mine - other),
    )
