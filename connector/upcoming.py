"""A look ahead (`upcoming`): what the coming days bring if HR stays as it is. Pure.

For each day from the first to the last, the people's state is worked out with the same rules
a sync uses on that day (`people`: who is active, which rights hold; `mapping`: the rights its
rules derive), and compared with the day before: joiners on their first day, leavers on the
day their account goes inactive (the day after the last working day), rights on the day they
begin and on the day they are withdrawn (the day after their last day). Per organisation and
right it counts the holders on every day, and warns on the first day an organisation falls
below the wanted number of back-up holders. Contacts nobody; the first day is an input.

Dates saturate as the core's do (`people.day_after`): nothing happens the day after 9999-12-31
(an open end as HR exports write it), the look ahead stops at 9999-12-31, and on 0001-01-01
nobody was active the day before.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from connector.mapping import Mapping, derived_grants
from connector.people import Grant, Person, day_after, person_active_on, rights_held_on
from connector.people_display import PersonDisplay, display_of

ONE_DAY = dt.timedelta(days=1)


class EventKind(StrEnum):
    """What happens to a person on a day."""

    JOINS = "joins"  # first working day: the account is created (or activated)
    LEAVES = "leaves"  # the day after the last working day: the account goes inactive
    RIGHT_BEGINS = "right_begins"
    RIGHT_ENDS = "right_ends"  # the day after the right's last day: the membership goes


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happens to one person on one day."""

    day: dt.date
    kind: EventKind
    person: PersonDisplay
    organisations: tuple[str, ...] = ()  # codes: where they join or leave, or hold the right
    right: str | None = None


@dataclass(frozen=True, slots=True)
class Shortfall:
    """The first day an organisation has fewer holders of a right than wanted."""

    day: dt.date
    organisation: str
    right: str
    holders: int
    wanted: int


@dataclass(frozen=True, slots=True)
class Timeline:
    """The look ahead: the days, what happens on them, and holders per organisation and right."""

    first: dt.date
    last: dt.date
    events: tuple[Event, ...]
    # (organisation code, right) -> number of holders on each day, first to last
    holders: dict[tuple[str, str], tuple[int, ...]]
    shortfalls: tuple[Shortfall, ...]
    wanted: int  # safety.min_holders
    organisation_names: dict[str, str] = field(default_factory=dict)

    @property
    def days(self) -> list[dt.date]:
        """Every day of the look ahead, first to last."""
        return [self.first + ONE_DAY * n for n in range((self.last - self.first).days + 1)]

    def events_on(self, day: dt.date) -> list[Event]:
        """What happens on `day`."""
        return [e for e in self.events if e.day == day]

    def organisation(self, code: str) -> str:
        """`Gemeente Gent (0207451227)` where the export names it, else the code."""
        name = self.organisation_names.get(code)
        return f"{name} ({code})" if name else code


@dataclass(frozen=True, slots=True)
class _DayState:
    active: bool
    organisations: frozenset[str]  # of the relations active that day
    rights: frozenset[tuple[str, str]]  # (right, organisation code)


_NOBODY = _DayState(False, frozenset(), frozenset())


def _state(person: Person, grants: tuple[Grant, ...], day: dt.date | None) -> _DayState:
    """The person's state on `day` (None: the day before 0001-01-01, when nobody was active)."""
    if day is None or not person_active_on(person, day):
        return _NOBODY
    organisations = frozenset(
        r.organisation_code
        for r in person.relations
        if r.start_date <= day and (r.end_date is None or day <= r.end_date)
    )
    rights = frozenset(
        (right, grant.relation.organisation_code)
        for right, held in rights_held_on(person, day, grants).items()
        for grant in held
    )
    return _DayState(True, organisations, rights)


def _change_days(
    person: Person, grants: tuple[Grant, ...], first: dt.date, last: dt.date
) -> list[dt.date]:
    """The days in `first..last` on which something about the person may change."""
    dates: set[dt.date | None] = {r.start_date for r in person.relations}
    dates.update(day_after(r.end_date) for r in person.relations if r.end_date is not None)
    dates.update(g.begin for g in grants if g.begin is not None)
    dates.update(day_after(g.end) for g in grants if g.end is not None)
    return sorted(d for d in dates if d is not None and first <= d <= last)


def _day_before(day: dt.date) -> dt.date | None:
    """The day before; None before `date.min` (0001-01-01)."""
    return None if day == dt.date.min else day - ONE_DAY


def last_day(first: dt.date, days: int) -> dt.date:
    """`days` days after `first`, or 9999-12-31 if that is later than any date."""
    remaining = (dt.date.max - first).days
    return first + ONE_DAY * min(days, remaining)


def _events(person: Person, before: _DayState, after: _DayState, day: dt.date) -> Iterable[Event]:
    shown = display_of(person)
    if after.active and not before.active:
        yield Event(day, EventKind.JOINS, shown, tuple(sorted(after.organisations)))
    if before.active and not after.active:
        yield Event(day, EventKind.LEAVES, shown, tuple(sorted(before.organisations)))
    for kind, pairs in (
        (EventKind.RIGHT_BEGINS, after.rights - before.rights),
        (EventKind.RIGHT_ENDS, before.rights - after.rights),
    ):
        by_right: dict[str, list[str]] = {}
        for right, organisation in pairs:
            by_right.setdefault(right, []).append(organisation)
        for right, organisations in sorted(by_right.items()):
            yield Event(day, kind, shown, tuple(sorted(organisations)), right)


def timeline(
    people: Iterable[Person], mapping: Mapping, first: dt.date, days: int, min_holders: int
) -> Timeline:
    """What happens from `first` to `days` days later (both included, never past 9999-12-31),
    if HR stays as it is.

    A change on `first` itself (a joiner starting that day, a leaver whose last working day
    was the day before) is on the timeline: today's sync makes it.
    """
    last = last_day(first, days)
    n_days = (last - first).days + 1
    events: list[Event] = []
    # (organisation, right) -> change of the number of holders on each day index
    deltas: dict[tuple[str, str], Counter[int]] = {}
    in_use: set[tuple[str, str]] = set()
    names: dict[str, str] = {}
    for person in people:
        for relation in person.relations:
            if relation.organisation_name:
                names.setdefault(relation.organisation_code, relation.organisation_name)
        grants = derived_grants(person, mapping)
        in_use.update((g.relation.organisation_code, g.right) for g in grants)
        state = _state(person, grants, _day_before(first))
        for right, organisation in state.rights:
            deltas.setdefault((organisation, right), Counter())[0] += 1
        for day in _change_days(person, grants, first, last):
            now = _state(person, grants, day)
            if now != state:
                events.extend(_events(person, state, now, day))
                index = (day - first).days
                for right, organisation in now.rights - state.rights:
                    deltas.setdefault((organisation, right), Counter())[index] += 1
                for right, organisation in state.rights - now.rights:
                    deltas.setdefault((organisation, right), Counter())[index] -= 1
            state = now
    holders: dict[tuple[str, str], tuple[int, ...]] = {}
    shortfalls: list[Shortfall] = []
    for pair in sorted(in_use | deltas.keys()):
        change = deltas.get(pair, Counter())
        counts: list[int] = []
        running = 0
        for index in range(n_days):
            running += change[index]
            counts.append(running)
        holders[pair] = tuple(counts)
        short = next((i for i, n in enumerate(counts) if n < min_holders), None)
        if short is not None:
            organisation, right = pair
            shortfalls.append(
                Shortfall(first + ONE_DAY * short, organisation, right, counts[short], min_holders)
            )
    order = list(EventKind)
    events.sort(key=lambda e: (e.day, order.index(e.kind), e.right or "", e.person.label))
    return Timeline(
        first=first,
        last=last,
        events=tuple(events),
        holders=holders,
        shortfalls=tuple(sorted(shortfalls, key=lambda s: (s.day, s.organisation, s.right))),
        wanted=min_holders,
        organisation_names=names,
    )


def shortfall_message(shortfall: Shortfall, timeline: Timeline) -> str:
    """A sentence for people: which organisation, which right, from when."""
    where = timeline.organisation(shortfall.organisation)
    held = f"{shortfall.holders} holder{'s' if shortfall.holders != 1 else ''}"
    if shortfall.day == timeline.first:
        return (
            f"{where}: right {shortfall.right!r} has {held} from the start "
            f"(wanted at least {shortfall.wanted})"
        )
    return (
        f"{where}: right {shortfall.right!r} falls to {held} on {shortfall.day} "
        f"(wanted at least {shortfall.wanted})"
    )


def timeline_json(timeline: Timeline, names: bool) -> dict[str, object]:
    """The `--format json` object of `upcoming` (see README, "Looking ahead")."""
    days = timeline.days
    return {
        "command": "upcoming",
        "as_of": timeline.first.isoformat(),
        "until": timeline.last.isoformat(),
        "days": len(days) - 1,
        "events": [
            {
                "date": e.day.isoformat(),
                "kind": e.kind.value,
                "person": e.person.label,
                **e.person.json_fields(names),
                "organisations": list(e.organisations),
                "right": e.right,
            }
            for e in timeline.events
        ],
        "holders": [
            {
                "organisation": organisation,
                "organisation_name": timeline.organisation_names.get(organisation),
                "right": right,
                "per_day": list(counts),
            }
            for (organisation, right), counts in timeline.holders.items()
        ],
        "warnings": [
            {
                "kind": "backup_holders",
                "date": s.day.isoformat(),
                "organisation": s.organisation,
                "right": s.right,
                "holders": s.holders,
                "wanted": s.wanted,
                "message": shortfall_message(s, timeline),
            }
            for s in timeline.shortfalls
        ],
    }
