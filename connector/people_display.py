"""How reports name a person and an organisation: the one place that builds it.

A person is named by their employee key(s) `ORG:ID` (the HR system's keys, not sensitive, the
ones `resync --employee` and `log --employee` take), then, in reports for people, their name,
then the masked national number: `0207451227:T1 Jan Peeters (85.07.30-***.**)`. Colleagues
born on one day share a masked number; their keys tell them apart.

The *label* (keys and masked number, no name) is what operations, the state store, the audit
journal and log lines carry; the name is added only when a report is rendered or printed as
JSON, and only when `[report] names` is on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from connector.people import Person


@dataclass(frozen=True, slots=True)
class PersonDisplay:
    """What reports show of one person: employee keys, name and masked national number."""

    employee_keys: tuple[str, ...]  # `ORG:ID`, in the order of the person's relations
    name: str | None
    masked: str  # the masked national number, `85.07.30-***.**`

    @property
    def label(self) -> str:
        """Keys and masked number, no name: `0207451227:T1 (85.07.30-***.**)`."""
        return label_of(self.employee_keys, self.masked)

    def text(self, names: bool = True) -> str:
        """For people: `0207451227:T1 Jan Peeters (85.07.30-***.**)` (`names` off: no name)."""
        if not names or not self.name:
            return self.label
        keys = ", ".join(self.employee_keys)
        return f"{keys} {self.name} ({self.masked})" if keys else f"{self.name} ({self.masked})"

    def json_fields(self, names: bool = True) -> dict[str, Any]:
        """`employee_keys` and (with `names`) `name`, for a JSON object about this person."""
        out: dict[str, Any] = {"employee_keys": list(self.employee_keys)}
        if names:
            out["name"] = self.name
        return out


def label_of(employee_keys: Iterable[str], masked: str) -> str:
    """A person's label from their keys and masked number (no keys: the masked number)."""
    keys = ", ".join(employee_keys)
    return f"{keys} ({masked})" if keys else masked


def masked_of(label: str) -> str:
    """The masked national number in a label (`label_of`'s inverse; a bare masked number as is)."""
    keys, sep, rest = label.rpartition(" (")
    return rest[:-1] if sep and keys and rest.endswith(")") else label


def keys_of(label: str) -> tuple[str, ...]:
    """The employee keys in a label (`label_of`'s inverse; none in a bare masked number)."""
    keys, sep, rest = label.rpartition(" (")
    if not (sep and keys and rest.endswith(")")):
        return ()
    return tuple(keys.split(", "))


def display_of(person: Person) -> PersonDisplay:
    """How reports name this person."""
    return PersonDisplay(
        employee_keys=tuple(str(r.key) for r in person.relations),
        name=" ".join(part for part in (person.given_name, person.family_name) if part) or None,
        masked=person.national_id.masked,
    )


def person_label(person: Person) -> str:
    """The label operations, the state store and logs carry for this person."""
    return label_of((str(r.key) for r in person.relations), person.national_id.masked)


@dataclass(frozen=True, slots=True)
class Directory:
    """The people a report mentions (by label) and the organisations' names (by code)."""

    people: dict[str, PersonDisplay]
    organisations: dict[str, str]

    def person(self, label: str, names: bool = True) -> str:
        """A label as reports show it (with the name where known and `names` is on)."""
        shown = self.people.get(label)
        return shown.text(names) if shown else label

    def organisation(self, code: str) -> str:
        """`Gemeente Gent (0207451227)` where the export names it, else the code."""
        name = self.organisations.get(code)
        return f"{name} ({code})" if name else code


EMPTY_DIRECTORY = Directory(people={}, organisations={})


def directory_for(labels: Iterable[str], people: Iterable[Person]) -> Directory:
    """The displays of the people whose labels are given, and every organisation's name.

    Labels that two people share (possible only for labels without employee keys) get no
    display: a report never puts one person's name on another."""
    wanted = set(labels)
    found: dict[str, PersonDisplay] = {}
    shared: set[str] = set()
    organisations: dict[str, str] = {}
    for person in people:
        for relation in person.relations:
            if relation.organisation_name:
                organisations.setdefault(relation.organisation_code, relation.organisation_name)
        if not wanted:
            continue
        label = person_label(person)
        if label in wanted:
            if label in found:
                shared.add(label)
            found[label] = display_of(person)
    for label in shared:
        del found[label]
    return Directory(people=found, organisations=organisations)
