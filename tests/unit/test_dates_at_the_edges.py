"""Dates at the edges of the calendar (issue 14, kind 5): `9999-12-31` as an "open" end date,
and any date from `date.min` to `date.max`, in the HR file and the grants file, are read, mapped
and planned without a crash. The date is kept as written (an end date of 9999-12-31 is pushed as
such); day-after and spans saturate: the day after `date.max` never comes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.desired import desired_state
from connector.hr.read import ReadPolicy, read_hr
from connector.keys import Keyring
from connector.known import KnownState
from connector.mapping import load_mapping
from connector.people import day_after, people_from_input, steady_window
from connector.plan import OnMissing, OpKind, make_plan, simulate
from tests.factories import GENT, HR_FIELDS, hr_row, write_csv

D = dt.date
MAPPING = load_mapping()
KEYS = Keyring(b"test-secret")
RIGHT = "Premiezoeker Gebruiker"
GRANT_FIELDS = ("organisation_code", "employee_id", "right", "begin_date", "end_date")

any_date = st.dates(min_value=dt.date.min, max_value=dt.date.max)
edge_dates = st.sampled_from(
    [
        dt.date.min,
        dt.date.min + dt.timedelta(days=1),
        dt.date.max - dt.timedelta(days=1),
        dt.date.max,
    ]
)
dates = st.one_of(edge_dates, any_date)


def test_the_day_after_the_last_representable_day_never_comes() -> None:
    assert day_after(D(2026, 12, 31)) == D(2027, 1, 1)
    assert day_after(dt.date.max) is None


def write_inputs(
    directory: Path,
    start: dt.date,
    end: dt.date | None,
    begin: dt.date | None,
    grant_end: dt.date | None,
    relation: str = "employee",
) -> tuple[Path, Path]:
    hr = directory / "hr.csv"
    grants = directory / "grants.csv"
    row = hr_row(
        1,
        start_date=start.isoformat(),
        end_date=end.isoformat() if end else "",
        relation=relation,
        rights=RIGHT,
    )
    write_csv(hr, [row, hr_row(2)], fields=HR_FIELDS)
    grant = {
        "organisation_code": GENT,
        "employee_id": row["employee_id"],
        "right": RIGHT,
        "begin_date": begin.isoformat() if begin else "",
        "end_date": grant_end.isoformat() if grant_end else "",
    }
    write_csv(grants, [grant], fields=GRANT_FIELDS)
    return hr, grants


def run_twice(hr: Path, grants: Path, first: dt.date, second: dt.date, **kw: object) -> None:
    """Read, map and plan on `first`, pretend it was applied, then again on `second`."""
    read = read_hr(hr, ReadPolicy(), known_rights=MAPPING.right_names, grants_path=grants)
    people = people_from_input(read)
    known = KnownState()
    for day in (first, second):
        desired = desired_state(
            people,
            MAPPING,
            known,
            KEYS,
            day,
            provision_days_before_start=kw.get("provision", 0),  # type: ignore[arg-type]
        )
        plan = make_plan(
            desired,
            known,
            day,
            on_missing=OnMissing.DEACTIVATE,
            delete_after_days=kw.get("delete_after_days"),  # type: ignore[arg-type]
        )
        known = simulate(plan, known)


def test_an_open_end_written_9999_12_31_is_read_mapped_and_planned(tmp_path: Path) -> None:
    hr, grants = write_inputs(tmp_path, D(2020, 1, 1), D(9999, 12, 31), None, D(9999, 12, 31))
    read = read_hr(hr, ReadPolicy(), known_rights=MAPPING.right_names, grants_path=grants)
    assert read.rejected == []
    people = people_from_input(read)
    day = D(2026, 12, 1)
    desired = desired_state(people, MAPPING, KnownState(), KEYS, day)
    plan = make_plan(desired, KnownState(), day)
    assert plan.counts()[OpKind.CREATE] == 2 and plan.counts()[OpKind.GRANT] == 1
    person = next(p for p in people.values() if p.relations[0].end_date is not None)
    assert person.relations[0].end_date == D(9999, 12, 31)  # kept as written
    assert steady_window(person, day) == (D(2020, 1, 1), None)  # it never ends


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    start=dates,
    end=st.none() | dates,
    begin=st.none() | dates,
    grant_end=st.none() | dates,
    first=dates,
    second=dates,
    provision=st.sampled_from([0, 30, 365]),
    delete_after_days=st.sampled_from([None, 0, 30, 10**6]),
    relation=st.sampled_from(["employee", "external"]),
)
def test_no_date_from_min_to_max_crashes_reading_mapping_or_planning(
    tmp_path: Path,
    start: dt.date,
    end: dt.date | None,
    begin: dt.date | None,
    grant_end: dt.date | None,
    first: dt.date,
    second: dt.date,
    provision: int,
    delete_after_days: int | None,
    relation: str,
) -> None:
    hr, grants = write_inputs(tmp_path, start, end, begin, grant_end, relation)
    run_twice(
        hr,
        grants,
        min(first, second),
        max(first, second),
        provision=provision,
        delete_after_days=delete_after_days,
    )
