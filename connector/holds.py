"""Holds: what a rejected row touches is kept at its last pushed state for the run; the rest
of the person is applied (pure).

- A rejected HR row holds its work relation: the relation stays as last pushed (its values,
  whether it was active, the rights held through it). A row whose employee key could not be
  read holds every relation of the person last pushed that no accepted row gives.
- A rejected grants-file row holds the withdrawals of the employee's rights: of the right it
  names if that is readable, else of every right held through that relation. A right still
  ends with its relation when an accepted row ends it.
- A relation never pushed has no last pushed state: a joiner is created from their valid rows,
  and a rejected row never blocks an end date a valid row states.
- When the state store has no record of what was pushed for a relation it needs (a person last
  written by an older version), the whole person is held, as they are: the conservative path.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from connector.hr.records import EmployeeKey, Rejection, RelationType, RowHold
from connector.known import KnownUser, PushedRelation
from connector.people import Grant, Person, WorkRelation


@dataclass(frozen=True, slots=True)
class HoldNote:
    """One thing held (or not applied) for a person in a run, and the row that caused it."""

    what: str
    why: Rejection


@dataclass(frozen=True, slots=True)
class Outcome:
    """A person with their holds applied; `person` None: the whole person is held as they are."""

    person: Person | None
    notes: tuple[HoldNote, ...]


def holding(
    person: Person,
    holds: Iterable[RowHold],
    managed: KnownUser | None,
    pushed: tuple[PushedRelation, ...] | None,
) -> Outcome:
    """`person` with what their rejected rows touch put back as last pushed (`pushed`: their
    relations as the state store recorded them, None: no record)."""
    valid = {r.key for r in person.relations}
    by_key = {r.key: r for r in pushed or ()}
    ever_pushed = set(by_key) | (managed.employee_keys if managed else set())
    relations = list(person.relations)
    grants = list(person.grants)
    notes: list[HoldNote] = []
    whole = False
    kept: set[EmployeeKey] = set()
    for hold in holds:
        if hold.grant:
            if hold.key is None or hold.key not in valid:
                continue
            right = f"right {hold.right}" if hold.right else "every right"
            snapshot = by_key.get(hold.key)
            if snapshot is None and managed is not None and managed.memberships:
                whole = True
                what = f"left unchanged: no record of the rights last pushed through {hold.key}"
                notes.append(HoldNote(what, hold.rejection))
                continue
            if snapshot is not None:
                grants += [
                    Grant(p.right, hold.key, p.begin, p.end, origin="held", held=True)
                    for p in snapshot.rights
                    if hold.right is None or p.right == hold.right
                ]
            notes.append(
                HoldNote(f"withdrawals of {right} through {hold.key} held", hold.rejection)
            )
            continue
        keys = {hold.key} - valid if hold.key is not None else ever_pushed - valid
        if not keys and hold.key is None:
            notes.append(HoldNote("row not applied (it touches nothing pushed)", hold.rejection))
        for key in sorted(keys, key=str):
            snapshot = by_key.get(key)
            if snapshot is not None:
                if key not in kept:
                    kept.add(key)
                    relations.append(_as_pushed(snapshot))
                    grants += [
                        Grant(p.right, key, p.begin, p.end, origin="held", held=True)
                        for p in snapshot.rights
                    ]
                notes.append(HoldNote(f"work relation {key} kept as last pushed", hold.rejection))
            elif key in ever_pushed:
                whole = True
                what = f"left unchanged: no record of work relation {key} as last pushed"
                notes.append(HoldNote(what, hold.rejection))
            else:
                what = f"work relation {key} not applied (never pushed)"
                notes.append(HoldNote(what, hold.rejection))
    if whole:
        return Outcome(None, tuple(notes))
    held = replace(person, relations=tuple(relations), grants=tuple(grants))
    return Outcome(held, tuple(notes))


def _as_pushed(snapshot: PushedRelation) -> WorkRelation:
    return WorkRelation(
        key=snapshot.key,
        email=snapshot.email,
        start_date=snapshot.start_date,
        end_date=snapshot.end_date,
        organisation_name=snapshot.organisation_name,
        department=snapshot.department,
        job_title=snapshot.job_title,
        relation=RelationType(snapshot.relation),
        employer_code=snapshot.employer_code,
        held_active=snapshot.active,
    )
