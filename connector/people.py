"""People: HR records merged per national number, and what is active on a given day.

The rules for "is this relation / person / grant active on day D" live here and nowhere else.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

from connector.hr.records import (
    EmployeeKey,
    GrantRecord,
    HrInput,
    HrRecord,
    NationalId,
    RelationType,
)


@dataclass(frozen=True, slots=True)
class Grant:
    """A right held through one work relation, optionally limited to `begin..end` (inclusive)."""

    right: str
    relation: EmployeeKey
    begin: dt.date | None = None
    end: dt.date | None = None
    origin: str = "hr"  # "hr" (rights column), "grants" (grants file) or "rule" (mapping rule)
    # Kept as last pushed because a rejected row touches it (`holds`): it holds whenever its
    # work relation is active, whatever its dates (it was held when pushed).
    held: bool = False


@dataclass(frozen=True, slots=True)
class WorkRelation:
    """One work relation of a person with one organisation."""

    key: EmployeeKey
    email: str
    start_date: dt.date
    end_date: dt.date | None = None  # last working day, inclusive
    organisation_name: str | None = None
    department: str | None = None
    job_title: str | None = None
    relation: RelationType = RelationType.EMPLOYEE
    employer_code: str | None = None
    # Kept as last pushed because its HR row was rejected (`holds`): active or not as it was
    # then, whatever the day (None: an ordinary relation, active by its dates).
    held_active: bool | None = None

    @property
    def organisation_code(self) -> str:
        """The organisation this relation is with."""
        return self.key.organisation_code


@dataclass(frozen=True, slots=True)
class Person:
    """One human being, identified by national number, with 1..n work relations."""

    national_id: NationalId
    given_name: str
    family_name: str
    relations: tuple[WorkRelation, ...]
    grants: tuple[Grant, ...] = ()

    def relation(self, key: EmployeeKey) -> WorkRelation | None:
        """The work relation with this key, if the person has it."""
        return next((r for r in self.relations if r.key == key), None)


def relation_active_on(relation: WorkRelation, day: dt.date) -> bool:
    """True iff `start_date <= day <= end_date` (an open end never ends); a held relation is as
    it was last pushed."""
    if relation.held_active is not None:
        return relation.held_active
    return relation.start_date <= day and (relation.end_date is None or day <= relation.end_date)


def active_relations(person: Person, day: dt.date) -> list[WorkRelation]:
    """The person's relations active on `day`, earliest start first."""
    return sorted(
        (r for r in person.relations if relation_active_on(r, day)),
        key=lambda r: (r.start_date, r.key.organisation_code, r.key.employee_id),
    )


def person_active_on(person: Person, day: dt.date) -> bool:
    """True iff some work relation of the person is active on `day`."""
    return any(relation_active_on(r, day) for r in person.relations)


def person_in_provisioning_window(person: Person, day: dt.date, days_before_start: int) -> bool:
    """True iff some relation is active on `day` or starts within `days_before_start` days."""
    # Counted back from the start (a difference of dates never overflows, `day + n` may).
    return any(
        relation_active_on(r, day)
        or (
            r.held_active is None
            and (r.start_date - day).days <= days_before_start
            and (r.end_date is None or day <= r.end_date)
        )
        for r in person.relations
    )


def grant_holds_on(grant: Grant, relation: WorkRelation, day: dt.date) -> bool:
    """True iff the grant's window contains `day` and its work relation is active on `day` (a
    held grant: iff its work relation is active)."""
    if grant.held:
        return relation_active_on(relation, day)
    if grant.begin is not None and day < grant.begin:
        return False
    if grant.end is not None and day > grant.end:
        return False
    return relation_active_on(relation, day)


def rights_held_on(
    person: Person, day: dt.date, grants: tuple[Grant, ...] | None = None
) -> dict[str, list[Grant]]:
    """The rights the person holds on `day`, each with the grants that give it (`grants`:
    these instead of the person's own, e.g. with those a mapping's rules derive)."""
    held: dict[str, list[Grant]] = defaultdict(list)
    for grant in person.grants if grants is None else grants:
        relation = person.relation(grant.relation)
        if relation is not None and grant_holds_on(grant, relation, day):
            held[grant.right].append(grant)
    return dict(held)


def day_after(day: dt.date) -> dt.date | None:
    """The next day; None after `date.max` (9999-12-31): a day that never comes.

    HR exports write an open end as 9999-12-31; such a date is kept as written, and whatever
    would happen the day after it never happens.
    """
    return None if day == dt.date.max else day + _ONE_DAY


_ONE_DAY = dt.timedelta(days=1)


def steady_window(person: Person, day: dt.date) -> tuple[dt.date | None, dt.date | None]:
    """The days around `day` on which the person's records cross no date of their own.

    From the last start, begin or day-after-an-end on or before `day` (None: since ever) to the
    first one after it (None: for ever), exclusive. Whatever follows from the records "as of a
    day" (active relations, rights held, ...) is the same on every day of this window.
    """
    relations = [r for r in person.relations if r.held_active is None]
    grants = [g for g in person.grants if not g.held]
    ends = [r.end_date for r in relations] + [g.end for g in grants]
    dates = {r.start_date for r in relations}
    dates.update(g.begin for g in grants if g.begin is not None)
    # The day after each end; after date.max there is none: such an end never comes.
    dates.update(after for end in ends if end is not None and (after := day_after(end)))
    since = max((d for d in dates if d <= day), default=None)
    until = min((d for d in dates if d > day), default=None)
    return since, until


def most_recent_relation(person: Person) -> WorkRelation:
    """The relation that started last (ties: the one that ends last, open end last)."""
    far = dt.date.max
    return max(
        person.relations,
        key=lambda r: (r.start_date, r.end_date or far, r.key.organisation_code),
    )


def _relation_from(record: HrRecord) -> WorkRelation:
    return WorkRelation(
        key=record.key,
        email=record.email,
        start_date=record.start_date,
        end_date=record.end_date,
        organisation_name=record.organisation_name,
        department=record.department,
        job_title=record.job_title,
        relation=record.relation,
        employer_code=record.employer_code,
    )


def _grants_from_rights_column(record: HrRecord) -> list[Grant]:
    return [Grant(right=right, relation=record.key, origin="hr") for right in record.rights]


def _merge_order(record: HrRecord) -> tuple[dt.date, str, str]:
    return (record.start_date, record.organisation_code, record.employee_id)


def merge_people(
    records: Iterable[HrRecord], grants: Iterable[GrantRecord] = ()
) -> dict[str, Person]:
    """Merge accepted HR rows (and grant rows) into one Person per national number.

    The result is keyed by the national number's digits. The row with the latest
    `start_date` gives the person's name.

    Built for 150,000 people and more: most have one row, and get no list of their own; the
    people's work relations and grants share their rows' keys and values instead of copying
    them; and the result dict first holds each person's first row, then the person.
    """
    grant_rows = grants if isinstance(grants, list | tuple) else list(grants)
    granted = {grant.key for grant in grant_rows}
    # digits -> the person's first row (replaced by the Person below, in the same order)
    people: dict[str, HrRecord | Person] = {}
    more: dict[str, list[HrRecord]] = {}  # digits -> all rows, for people with more than one
    owner: dict[EmployeeKey, HrRecord] = {}  # the (last) row with each key that has grants
    for record in records:
        digits = record.national_id.digits
        first = people.setdefault(digits, record)
        if first is not record:
            rows = more.get(digits)
            if rows is None:
                more[digits] = [cast(HrRecord, first), record]
            else:
                rows.append(record)
        if granted and record.key in granted:
            owner[record.key] = record
    del granted

    extra_grants: dict[str, list[Grant]] = {}
    for grant in grant_rows:
        holder = owner.get(grant.key)
        if holder is None:
            continue
        extra = Grant(
            right=grant.right,
            relation=holder.key,
            begin=grant.begin_date,
            end=grant.end_date,
            origin="grants",
        )
        digits = holder.national_id.digits
        held = extra_grants.get(digits)
        if held is None:
            extra_grants[digits] = [extra]
        else:
            held.append(extra)
    del owner

    for digits, first in people.items():
        assert isinstance(first, HrRecord)
        rows = more.get(digits)
        if rows is None:
            namer = first
            relations: tuple[WorkRelation, ...] = (_relation_from(first),)
            person_grants = _grants_from_rights_column(first) if first.rights else []
        else:
            rows.sort(key=_merge_order)
            namer = rows[-1]
            relations = tuple(map(_relation_from, rows))
            person_grants = [g for r in rows for g in _grants_from_rights_column(r)]
        from_file = extra_grants.get(digits)
        if from_file is not None:
            person_grants.extend(from_file)
        people[digits] = Person(
            national_id=namer.national_id,
            given_name=namer.given_name,
            family_name=namer.family_name,
            relations=relations,
            grants=tuple(person_grants),
        )
    return cast(dict[str, Person], people)


def people_from_input(hr: HrInput) -> dict[str, Person]:
    """Merge an HrInput's accepted records and grants into people, keyed by national number."""
    return merge_people(hr.records, hr.grants)
