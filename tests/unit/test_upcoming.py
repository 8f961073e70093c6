"""`upcoming`: the look ahead is a pure function of the HR input, the mapping and the first day;
the CLI prints it as a per-day timeline or as one JSON object, and contacts nobody."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from connector.cli import app
from connector.hr.records import GrantRecord, HrRecord, NationalId
from connector.mapping import load_mapping
from connector.people import merge_people
from connector.upcoming import EventKind, timeline
from tests.factories import GENT, hr_row, make_nn, write_csv

D = dt.date
RIGHT = "Premiezoeker Gebruiker"
MAPPING = load_mapping()
DEMO = Path(__file__).resolve().parents[2] / "config" / "demo" / "connector.toml"
runner = CliRunner()


def record(n: int, start: dt.date, end: dt.date | None = None, rights: str = "") -> HrRecord:
    return HrRecord(
        source="hr.csv",
        row=n,
        employee_id=f"E{n}",
        national_id=NationalId(make_nn(D(1985, 7, 30), serial=n), "nn"),
        given_name=f"Given{n}",
        family_name="Peeters",
        email=f"p{n}@gent.be",
        organisation_code=GENT,
        organisation_name="Gemeente Gent",
        start_date=start,
        end_date=end,
        rights=tuple(r for r in [rights] if r),
    )


def grant(n: int, begin: dt.date | None, end: dt.date | None) -> GrantRecord:
    return GrantRecord("grants.csv", n, GENT, f"E{n}", RIGHT, begin, end)


def kinds(events: object) -> list[tuple[dt.date, EventKind, str, str | None]]:
    return [(e.day, e.kind, e.person.employee_keys[0], e.right) for e in events]  # type: ignore[attr-defined]


def test_joiner_leaver_and_rights_fall_on_their_days_across_month_end_and_dst() -> None:
    """Europe/Brussels changes to summer time on 2027-03-28; March ends three days later.
    The timeline counts calendar days: none is lost or doubled."""
    people = merge_people(
        [
            record(1, D(2020, 1, 1), end=D(2027, 3, 27), rights=RIGHT),  # last day: Saturday
            record(2, D(2027, 4, 1)),  # joins on the first of the month
            record(3, D(2020, 1, 1), rights=RIGHT),
            record(4, D(2020, 1, 1)),
        ],
        [grant(4, D(2027, 3, 31), D(2027, 4, 2))],
    )
    ahead = timeline(people.values(), MAPPING, D(2027, 3, 25), 10, min_holders=2)
    assert ahead.last == D(2027, 4, 4) and len(ahead.days) == 11
    assert kinds(ahead.events) == [
        (D(2027, 3, 28), EventKind.LEAVES, f"{GENT}:E1", None),
        (D(2027, 3, 28), EventKind.RIGHT_ENDS, f"{GENT}:E1", RIGHT),
        (D(2027, 3, 31), EventKind.RIGHT_BEGINS, f"{GENT}:E4", RIGHT),
        (D(2027, 4, 1), EventKind.JOINS, f"{GENT}:E2", None),
        (D(2027, 4, 3), EventKind.RIGHT_ENDS, f"{GENT}:E4", RIGHT),
    ]
    #                  25 26 27 28 29 30 31  1  2  3  4
    assert ahead.holders[(GENT, RIGHT)] == (2, 2, 2, 1, 1, 1, 2, 2, 2, 1, 1)


def test_warns_on_the_first_day_an_organisation_falls_below_the_wanted_holders() -> None:
    people = merge_people(
        [record(1, D(2020, 1, 1), end=D(2026, 12, 31), rights=RIGHT)],
        [grant(2, None, None)],
    )
    people |= merge_people([record(2, D(2020, 1, 1), rights=RIGHT)])
    ahead = timeline(people.values(), MAPPING, D(2026, 12, 20), 30, min_holders=2)
    (short,) = ahead.shortfalls
    assert (short.day, short.organisation, short.right, short.holders) == (
        D(2027, 1, 1),
        GENT,
        RIGHT,
        1,
    )


def test_an_organisation_already_short_is_warned_on_the_first_day() -> None:
    people = merge_people([record(1, D(2020, 1, 1), rights=RIGHT)])
    ahead = timeline(people.values(), MAPPING, D(2026, 12, 1), 5, min_holders=2)
    assert [s.day for s in ahead.shortfalls] == [D(2026, 12, 1)]
    assert ahead.events == ()


def test_todays_changes_are_on_the_timeline() -> None:
    people = merge_people([record(1, D(2026, 12, 1)), record(2, D(2020, 1, 1), D(2026, 11, 30))])
    ahead = timeline(people.values(), MAPPING, D(2026, 12, 1), 3, min_holders=0)
    assert kinds(ahead.events) == [
        (D(2026, 12, 1), EventKind.JOINS, f"{GENT}:E1", None),
        (D(2026, 12, 1), EventKind.LEAVES, f"{GENT}:E2", None),
    ]


def upcoming(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["upcoming", "--config", str(DEMO), *args], env={"COLUMNS": "250"})
    return result.exit_code, result.stdout


def test_cli_text_is_a_per_day_timeline_over_the_demo_data_across_year_end() -> None:
    code, text = upcoming("--as-of", "2026-12-20", "--days", "20")
    assert code == 1  # the demo's deliberately bad rows are rejected (and left out)
    lines = text.splitlines()
    assert lines[0].startswith("Upcoming from 2026-12-20 to 2027-01-09 (20 days)")
    day = lines.index("2027-01-01 Fri")
    assert "- leaves" in lines[day + 1] and "Joris Cools" in lines[day + 1]
    assert "(last day 2026-12-31)" in lines[day + 1]
    assert "Gemeente Scheldeveld (0216293766): 4 → 3" in text
    assert "2027-01-04 Mon" in lines and "Zeger Bogaert" in text
    assert "HR rows were rejected and are left out" in lines[-1]


def test_cli_json_over_the_demo_data_across_month_end_and_dst() -> None:
    """Summer time ends on 2026-10-25; October ends six days later."""
    code, answer = upcoming("--as-of", "2026-10-20", "--days", "20", "--format", "json")
    report = json.loads(answer)
    assert code == report["exit_code"] == 1 and report["errors"] == []
    assert (report["as_of"], report["until"], report["days"]) == ("2026-10-20", "2026-11-09", 20)
    (begins,) = [e for e in report["events"] if e["kind"] == "right_begins"]
    assert begins["date"] == "2026-11-01" and begins["employee_keys"] == ["0216293766:G1007"]
    assert begins["name"] == "Hannes Goossens" and begins["right"] == RIGHT
    for holders in report["holders"]:
        assert len(holders["per_day"]) == 21
    (gemeente,) = [h for h in report["holders"] if h["organisation"] == "0216293766"]
    assert gemeente["organisation_name"] == "Gemeente Scheldeveld"
    assert gemeente["per_day"][12] == gemeente["per_day"][11] + 1  # 31 Oct -> 1 Nov
    assert all(r["file"] for r in report["rejected"])


def test_cli_json_of_an_unreadable_config_is_one_object_with_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["upcoming", "--config", str(tmp_path / "missing.toml"), "--format", "json"]
    )
    assert result.exit_code == 2
    assert json.loads(result.stdout)["errors"][0]["kind"] == "config"


# ---------------------------------------------------------------------------- dates at the edges

EDGE_DAYS = st.one_of(
    st.dates(),
    st.dates(D.max - dt.timedelta(days=400), D.max),
    st.dates(D.min, D.min + dt.timedelta(days=400)),
    st.sampled_from([D.min, D.max, D.max - dt.timedelta(days=1)]),
)


@settings(max_examples=200, deadline=None)
@given(
    first=EDGE_DAYS,
    days=st.integers(1, 366),
    spans=st.lists(st.tuples(EDGE_DAYS, st.none() | EDGE_DAYS), min_size=1, max_size=3),
)
def test_upcoming_works_out_every_day_up_to_date_max_and_down_to_date_min(
    first: dt.date, days: int, spans: list[tuple[dt.date, dt.date | None]]
) -> None:
    records = [
        record(1, start, end if end is None or end >= start else None, RIGHT)
        for start, end in spans
    ]
    records = [replace(r, employee_id=f"E{i}", row=i) for i, r in enumerate(records)]
    ahead = timeline(merge_people(records).values(), MAPPING, first, days, min_holders=1)
    assert ahead.first == first
    assert ahead.last == min(D.max, first + dt.timedelta(days=min(days, (D.max - first).days)))
    assert all(first <= e.day <= ahead.last for e in ahead.events)
    assert all(len(counts) == len(ahead.days) for counts in ahead.holders.values())
    # nothing happens the day after 9999-12-31: an end written so never comes
    assert not any(e.kind is EventKind.LEAVES for e in ahead.events if all(
        end in (None, D.max) for _, end in spans
    ))  # fmt: skip


def test_an_open_end_written_9999_12_31_never_comes(tmp_path: Path) -> None:
    people = merge_people([record(1, D(2020, 1, 1), D.max, RIGHT)]).values()
    ahead = timeline(people, MAPPING, D(9999, 12, 1), 366, min_holders=1)
    assert ahead.last == D.max
    assert ahead.events == ()
    assert ahead.holders[(GENT, RIGHT)] == (1,) * 31


def _config_with(directory: Path, rows: list[dict[str, str]]) -> Path:
    write_csv(directory / "hr.csv", [hr_row(n, **row) for n, row in enumerate(rows, 1)])
    config = directory / "connector.toml"
    config.write_text(
        '[source]\npath = "hr.csv"\n\n[target]\nbase_url = "http://127.0.0.1:9/v2"\n\n'
        '[state]\npath = "state.db"\n',
        encoding="utf-8",
    )
    return config


def test_upcoming_on_the_last_and_first_days_of_the_calendar(tmp_path: Path) -> None:
    config = _config_with(tmp_path, [dict(end_date="9999-12-31")])
    for as_of, until, said in (
        ("9999-12-30", "9999-12-31", "(1 day)"),
        ("0001-01-01", "0001-01-31", "(30 days)"),
    ):
        result = runner.invoke(app, ["upcoming", "-c", str(config), "--as-of", as_of])
        assert result.exit_code == 0, result.output
        assert f"Upcoming from {as_of} to {until} {said} if HR" in result.output
        answer = runner.invoke(
            app, ["upcoming", "-c", str(config), "--as-of", as_of, "--format", "json"]
        )
        assert json.loads(answer.stdout)["until"] == until
