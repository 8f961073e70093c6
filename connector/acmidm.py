"""The ACM/IDM extension's values as of a day: work relations and rights, and the work
relations as pushed (`known.PushedRelation`), from which a person who vanished from the HR
input is ended exactly like a leaver. Pure functions of the person, their grants and the day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from connector.known import PushedRelation, PushedRight
from connector.people import (
    Grant,
    Person,
    WorkRelation,
    grant_holds_on,
    relation_active_on,
    rights_held_on,
)

ONE_DAY = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class HeldRight:
    """A right a person holds (or held) through one organisation, with its window: the grant's
    dates within its work relation's."""

    right: str
    organisation_code: str
    begin: dt.date | None
    end: dt.date | None


def iso(value: dt.date | None) -> str | None:
    """A date as pushed (ISO 8601), None for none."""
    return value.isoformat() if value is not None else None


def window(grant: Grant, relation: WorkRelation) -> tuple[dt.date, dt.date | None]:
    """The days a grant can hold: its own dates within its work relation's."""
    begin = relation.start_date if grant.begin is None else max(grant.begin, relation.start_date)
    ends = [d for d in (grant.end, relation.end_date) if d is not None]
    return begin, min(ends, default=None)


def held_rights(person: Person, grants: tuple[Grant, ...], day: dt.date) -> tuple[HeldRight, ...]:
    """The rights held on `day`, one per (right, organisation), each with its window."""
    held: list[HeldRight] = []
    for right, right_grants in sorted(rights_held_on(person, day, grants).items()):
        by_org: dict[str, Grant] = {}
        for grant in right_grants:
            by_org.setdefault(grant.relation.organisation_code, grant)
        for org, grant in sorted(by_org.items()):
            relation = person.relation(grant.relation)
            assert relation is not None  # rights_held_on only gives grants of its relations
            held.append(HeldRight(right, org, *window(grant, relation)))
    return tuple(held)


def ended_rights(
    person: Person, grants: tuple[Grant, ...], day: dt.date, held: frozenset[str]
) -> tuple[HeldRight, ...]:
    """The rights not in `held`, each with its latest window (per organisation) that ended
    before `day`; a window ends with its grant or with its work relation, whichever is first."""
    latest: dict[tuple[str, str], HeldRight] = {}
    for grant in grants:
        relation = person.relation(grant.relation)
        if grant.right in held or relation is None or grant.held:
            continue
        begin, last_day = window(grant, relation)
        if last_day is None or last_day >= day:
            continue
        key = (grant.right, relation.organisation_code)
        seen = latest.get(key)
        if seen is None or (seen.end is not None and seen.end < last_day):
            latest[key] = HeldRight(grant.right, relation.organisation_code, begin, last_day)
    return tuple(latest[key] for key in sorted(latest))


def work_relations(person: Person, day: dt.date) -> list[dict[str, Any]]:
    """`workRelations[]`: every relation of the person, with its dates and activity on `day`."""
    ordered = sorted(person.relations, key=lambda r: (r.start_date, r.key.organisation_code))
    return [
        _work_relation(
            r.organisation_code,
            r.organisation_name,
            r.email,
            r.relation.value,
            r.employer_code,
            r.start_date,
            r.end_date,
            relation_active_on(r, day),
        )
        for r in ordered
    ]


def _work_relation(
    org: str,
    name: str | None,
    email: str,
    user_type: str,
    employer: str | None,
    start: dt.date,
    end: dt.date | None,
    active: bool,
) -> dict[str, Any]:
    item = {
        "organizationCode": org,
        "organizationName": name,
        "email": email,
        "userType": user_type,
        "employerOrganizationCode": employer,
        "validFrom": iso(start),
        "validTo": iso(end),
        "active": active,
    }
    return {k: v for k, v in item.items() if v is not None}


def rights_attribute(held: tuple[HeldRight, ...]) -> list[dict[str, Any]]:
    """`rights[]`: one entry per (right, organisation), with its window."""
    out = []
    for h in held:
        item = {
            "value": h.right,
            "organizationCode": h.organisation_code,
            "validFrom": iso(h.begin),
            "validTo": iso(h.end),
        }
        out.append({k: v for k, v in item.items() if v is not None})
    return out


def pushed_relations(
    person: Person, grants: tuple[Grant, ...], day: dt.date
) -> tuple[PushedRelation, ...]:
    """The person's work relations as they are pushed on `day`: values, activity, the rights
    held through each (with their windows)."""
    out = []
    for r in person.relations:
        rights = tuple(
            PushedRight(g.right, *window(g, r))
            for g in grants
            if g.relation == r.key and grant_holds_on(g, r, day)
        )
        out.append(
            PushedRelation(
                key=r.key,
                email=r.email,
                start_date=r.start_date,
                end_date=r.end_date,
                active=relation_active_on(r, day),
                organisation_name=r.organisation_name,
                department=r.department,
                job_title=r.job_title,
                relation=r.relation.value,
                employer_code=r.employer_code,
                rights=tuple(sorted(set(rights), key=lambda p: (p.right, p.begin or dt.date.min))),
            )
        )
    return tuple(out)


def ended_on(relations: tuple[PushedRelation, ...], day: dt.date) -> tuple[PushedRelation, ...]:
    """Pushed relations ended as a leaver's are, for a person who vanished from the HR input in
    the run of `day`: inactive, and their last day (and their rights') at the latest the day
    before (a relation that had not begun yet: the day before its first)."""
    last = day - ONE_DAY if day > dt.date.min else day  # no date arithmetic may overflow
    ended = []
    for r in relations:
        end = min(r.end_date or last, last)
        if r.start_date > end:  # so start_date - 1 day >= end >= date.min
            end = r.start_date - ONE_DAY
        rights = tuple(replace(p, end=min(p.end or end, end)) for p in r.rights)
        ended.append(replace(r, end_date=end, active=False, rights=rights))
    return tuple(ended)


def pushed_work_relations(relations: tuple[PushedRelation, ...]) -> list[dict[str, Any]]:
    """`workRelations[]` of relations as pushed."""
    ordered = sorted(relations, key=lambda r: (r.start_date, r.key.organisation_code))
    return [
        _work_relation(
            r.key.organisation_code,
            r.organisation_name,
            r.email,
            r.relation,
            r.employer_code,
            r.start_date,
            r.end_date,
            r.active,
        )
        for r in ordered
    ]


def pushed_ended_rights(relations: tuple[PushedRelation, ...]) -> tuple[HeldRight, ...]:
    """The rights of relations as pushed, as ended rights: the latest window per (right,
    organisation)."""
    latest: dict[tuple[str, str], HeldRight] = {}
    for r in relations:
        org = r.key.organisation_code
        for p in r.rights:
            seen = latest.get((p.right, org))
            if seen is None or (seen.end or dt.date.max) < (p.end or dt.date.max):
                latest[(p.right, org)] = HeldRight(p.right, org, p.begin, p.end)
    return tuple(latest[key] for key in sorted(latest))
