"""`people.steady_window`: the days on which nothing about a person changes by date alone."""

from __future__ import annotations

import datetime as dt

from connector.hr.records import EmployeeKey, NationalId
from connector.people import Grant, Person, WorkRelation, steady_window

D = dt.date
KEY = EmployeeKey("0207451227", "E1")


def person(start: dt.date, end: dt.date | None = None, *grants: Grant) -> Person:
    relation = WorkRelation(key=KEY, email="an@example.be", start_date=start, end_date=end)
    return Person(NationalId("85073003328", "nn"), "An", "Peeters", (relation,), grants)


def test_open_ended_relation_is_steady_from_its_start_for_ever() -> None:
    assert steady_window(person(D(2020, 1, 1)), D(2026, 12, 1)) == (D(2020, 1, 1), None)


def test_the_window_ends_the_day_after_the_last_working_day() -> None:
    since, until = steady_window(person(D(2020, 1, 1), D(2027, 3, 31)), D(2026, 12, 1))
    assert (since, until) == (D(2020, 1, 1), D(2027, 4, 1))


def test_before_the_start_the_window_runs_until_the_start() -> None:
    assert steady_window(person(D(2027, 1, 4)), D(2026, 12, 1)) == (None, D(2027, 1, 4))


def test_grant_dates_split_the_window() -> None:
    grant = Grant("R", KEY, begin=D(2026, 12, 10), end=D(2026, 12, 20))
    p = person(D(2020, 1, 1), None, grant)
    assert steady_window(p, D(2026, 12, 1)) == (D(2020, 1, 1), D(2026, 12, 10))
    assert steady_window(p, D(2026, 12, 15)) == (D(2026, 12, 10), D(2026, 12, 21))
    assert steady_window(p, D(2026, 12, 21)) == (D(2026, 12, 21), None)
