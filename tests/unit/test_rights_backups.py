"""Back-up holders: `plan` warns, per organisation and right, when fewer than
`safety.min_holders` people will hold the right; it names the organisation, never a person."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from connector import jobs
from connector.config import load_config
from connector.report import Report
from tests.factories import GENT, HR_FIELDS, IGS, hr_row, masked_nn, write_csv

RIGHT = "Premiezoeker Gebruiker"
DAY = dt.date(2026, 12, 1)
GRANT_FIELDS = ("organisation_code", "employee_id", "right", "begin_date", "end_date")


def plan(
    tmp_path: Path,
    rows: list[dict[str, str]],
    grants: list[dict[str, str]] | None = None,
    day: dt.date = DAY,
    safety: str = "",
) -> Report:
    """`plan` as of `day` on these HR rows and grants (the target is never contacted)."""
    write_csv(tmp_path / "hr.csv", rows, fields=HR_FIELDS)
    write_csv(tmp_path / "grants.csv", grants or [], fields=GRANT_FIELDS)
    config = tmp_path / "connector.toml"
    config.write_text(
        f"""
[source]
path = "hr.csv"
grants = "grants.csv"

[target]
base_url = "http://127.0.0.1:9/v2"

[target.auth]
method = "none"

[state]
path = "state.db"
{safety}
""",
        encoding="utf-8",
    )
    return jobs.plan(load_config(config), jobs.new_run_id(), day)


def backup_warnings(report: Report) -> list[str]:
    return [w.message for w in report.warnings if w.kind == "backup_holders"]


def holder(n: int, org: str = GENT, **kw: str) -> dict[str, str]:
    """A holder of RIGHT; the export names Gent, not IGS (whose warnings give its code only)."""
    name = "Gemeente Gent" if org == GENT else ""
    return hr_row(n, organisation_code=org, organisation_name=name, rights=RIGHT, **kw)


NAMED_GENT = f"Gemeente Gent ({GENT})"  # as the export names it


def test_backup_warning_for_an_organisation_with_one_holder_and_not_for_one_with_two(
    tmp_path: Path,
) -> None:
    report = plan(tmp_path, [holder(1, IGS), holder(2, GENT), holder(3, GENT), hr_row(4)])
    (message,) = backup_warnings(report)
    assert message.startswith(f"{IGS}: right {RIGHT!r} is held by 1 (wanted at least 2)")
    assert GENT not in message


def test_backup_warning_names_no_person(tmp_path: Path) -> None:
    row = holder(1, IGS)
    (message,) = backup_warnings(plan(tmp_path, [row]))
    digits = "".join(ch for ch in row["national_id"] if ch.isdigit())
    for personal in (digits, masked_nn(digits), row["given_name"], row["email"], "E0001"):
        assert personal not in message


def test_holders_are_people_not_grants(tmp_path: Path) -> None:
    grant = {"organisation_code": GENT, "employee_id": "E0001", "right": RIGHT}
    report = plan(tmp_path, [holder(1)], [grant])
    assert backup_warnings(report) == [
        f"{NAMED_GENT}: right {RIGHT!r} is held by 1 (wanted at least 2); nobody else can stand in"
    ]


def test_organisation_whose_last_holder_left_is_warned_that_nobody_holds_it(
    tmp_path: Path,
) -> None:
    rows = [holder(1, end_date="2026-11-30"), hr_row(2)]
    assert backup_warnings(plan(tmp_path, rows)) == [
        f"{NAMED_GENT}: right {RIGHT!r} is held by nobody (wanted at least 2)"
    ]


def test_holder_whose_grant_starts_later_does_not_count_yet(tmp_path: Path) -> None:
    grants = [
        {"organisation_code": GENT, "employee_id": f"E{n:04d}", "right": RIGHT, "begin_date": b}
        for n, b in ((1, "2026-11-01"), (2, "2026-12-15"))
    ]
    rows = [hr_row(1), hr_row(2)]
    assert len(backup_warnings(plan(tmp_path, rows, grants))) == 1
    assert backup_warnings(plan(tmp_path, rows, grants, day=dt.date(2026, 12, 15))) == []


def test_min_holders_sets_how_many_are_wanted(tmp_path: Path) -> None:
    rows = [holder(1, IGS), holder(2, GENT), holder(3, GENT)]
    assert backup_warnings(plan(tmp_path, rows, safety="[safety]\nmin_holders = 1\n")) == []
    three = backup_warnings(plan(tmp_path, rows, safety="[safety]\nmin_holders = 3\n"))
    assert [m.split(":")[0] for m in three] == [NAMED_GENT, IGS]  # sorted by code
    assert f"{NAMED_GENT}: right {RIGHT!r} is held by 2 (wanted at least 3); only 2" in three[0]


def test_organisation_without_the_right_is_not_warned(tmp_path: Path) -> None:
    assert backup_warnings(plan(tmp_path, [hr_row(1), hr_row(2, organisation_code=IGS)])) == []
