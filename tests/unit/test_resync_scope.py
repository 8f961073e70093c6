"""Whom a rejected row is about, and which of them a resync reports (issue 15): the reader
attributes each rejected row to its employee key and national numbers where those cells are
readable, and a resync keeps the selected people's rows, counting the others."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

import pytest

from connector.hr.read import ReadPolicy, read_hr
from connector.hr.records import EmployeeKey, Rejection
from connector.keys import Keyring
from connector.nationalid import parse_national_id
from connector.report import Report
from connector.selection import Selection, SelectionError, scope_rejections
from tests.factories import GENT, HR_FIELDS, hr_row, write_csv

RING = Keyring(b"a secret of at least thirty-two bytes, for tests")
CLEAR = re.compile(r"(?<![0-9])[0-9]{11}(?![0-9])")
GRANT_FIELDS = ("organisation_code", "employee_id", "right", "begin_date", "end_date")


def key(n: int) -> EmployeeKey:
    return EmployeeKey(GENT, f"E{n:04d}")


def digits(n: int) -> str:
    return parse_national_id(hr_row(n)["national_id"]).digits


def person(n: int) -> str:
    return RING.person_key(digits(n))


def rejected(tmp_path: Path, rows: list[dict[str, str]]) -> list[Rejection]:
    return read_hr(write_csv(tmp_path / "hr.csv", rows, fields=HR_FIELDS), ReadPolicy()).rejected


def test_a_rejected_row_knows_its_employee_key_and_national_number(tmp_path: Path) -> None:
    (bad,) = rejected(tmp_path, [hr_row(1), hr_row(2, start_date="2026-13-01")])
    assert bad.key == key(2)
    assert [n.digits for n in bad.national_ids] == [digits(2)]
    assert bad.attributed


def test_a_row_with_a_bad_national_number_is_still_known_by_its_employee_key(
    tmp_path: Path,
) -> None:
    (bad,) = rejected(tmp_path, [hr_row(2, national_id="12345")])
    assert bad.key == key(2) and bad.national_ids == ()


def test_a_row_with_neither_readable_is_anyones(tmp_path: Path) -> None:
    reasons = rejected(tmp_path, [hr_row(3, employee_id="", national_id="not a number")])
    assert len(reasons) == 2  # one per bad cell, one row
    assert all(r.key is None and r.national_ids == () and not r.attributed for r in reasons)


def test_duplicate_rows_each_know_their_key_and_number(tmp_path: Path) -> None:
    copies = rejected(tmp_path, [hr_row(4), hr_row(5, employee_id="E0004")])
    assert [(r.key, [n.digits for n in r.national_ids]) for r in copies] == [
        (key(4), [digits(4)]),
        (key(4), [digits(5)]),
    ]


def test_a_rejected_grant_row_knows_its_employee_key(tmp_path: Path) -> None:
    hr = write_csv(tmp_path / "hr.csv", [hr_row(1)], fields=HR_FIELDS)
    grant = {"organisation_code": GENT, "employee_id": "E0001", "right": "R", "begin_date": "x"}
    grants = write_csv(tmp_path / "grants.csv", [grant], fields=GRANT_FIELDS)
    (bad,) = read_hr(hr, ReadPolicy(), grants_path=grants).rejected
    assert bad.file == "grants.csv" and bad.key == key(1) and bad.national_ids == ()


def test_a_rejection_never_shows_its_national_number_in_clear(tmp_path: Path) -> None:
    (bad,) = rejected(tmp_path, [hr_row(2, start_date="2026-13-01")])
    for text in (str(bad), repr(bad), bad.reason):
        assert not CLEAR.search(text), text
        assert digits(2) not in text


def owner_of_people(*numbers: int) -> dict[EmployeeKey, str]:
    return {key(n): person(n) for n in numbers}


def scoped(
    rows: list[Rejection],
    selected: set[int],
    known: dict[EmployeeKey, str],
    employees: tuple[EmployeeKey, ...] = (),
) -> tuple[list[int | None], int, int]:
    """The rows a resync of `selected` reports, and its counts of others' and anyone's rows."""
    out = scope_rejections(rows, frozenset(person(n) for n in selected), employees, RING, known.get)
    return [r.row for r in out.theirs], out.other_rows, out.unattributed_rows


def test_a_resync_keeps_its_peoples_rows_and_counts_the_others(tmp_path: Path) -> None:
    rows = rejected(
        tmp_path,
        [
            hr_row(1, start_date="2026-13-01", email="not an address"),  # two reasons, one row
            hr_row(2, start_date="2026-13-01"),
            hr_row(3, national_id="12345", start_date="2026-13-01"),  # by its key only
            hr_row(9, employee_id="", national_id="x"),  # anyone's
        ],
    )
    known = owner_of_people(1, 2, 3)
    assert scoped(rows, {1}, known) == ([1, 1], 2, 1)
    assert scoped(rows, {3}, known) == ([3, 3], 2, 1)  # their key, though the number is unreadable
    assert scoped(rows, {4}, known) == ([], 3, 1)


def test_a_row_with_a_key_nobody_holds_and_no_readable_number_could_be_anyones(
    tmp_path: Path,
) -> None:
    rows = rejected(tmp_path, [hr_row(7, national_id="12345")])
    assert scoped(rows, {1}, owner_of_people(1)) == ([], 0, 1)


def test_a_row_of_a_key_named_on_the_command_line_is_the_resyncs_own(tmp_path: Path) -> None:
    rows = rejected(tmp_path, [hr_row(7, national_id="12345")])
    assert scoped(rows, set(), {}, employees=(key(7),)) == ([1], 0, 0)


def test_an_employee_only_a_rejected_row_holds_is_selected_not_an_error(tmp_path: Path) -> None:
    rows = rejected(tmp_path, [hr_row(1), hr_row(2, start_date="2026-13-01")])
    selection = Selection(employees=(key(2),))
    assert selection.person_keys(RING, {}.get, rows) == {person(2)}
    with pytest.raises(SelectionError, match="E0003"):
        Selection(employees=(key(3),)).person_keys(RING, {}.get, rows)


def test_a_scoped_report_exits_on_its_own_rows_and_says_how_many_others_there_are() -> None:
    report = Report(run_id="r", command="resync", as_of=dt.date(2026, 12, 1), dry_run=False)
    report.rejected = [Rejection("hr.csv", 2, "email", "bad"), Rejection("hr.csv", 3, "x", "y")]
    report.scope_rejections((), other_rows=2, unattributed_rows=1)
    assert report.exit_code == 0 and report.rejected == []
    answer = report.to_json()
    assert answer["rejected_elsewhere"] == {"other_people_rows": 2, "unattributed_rows": 1}
    kinds = {w["kind"]: w["message"] for w in answer["warnings"]}
    assert kinds["rejected_elsewhere"].startswith("2 HR rows about other people")
    assert kinds["unattributed_rows"].startswith("1 HR row rejected")
    assert report.input_rejected_rows == 3
    report.scope_rejections([Rejection("hr.csv", 2, "email", "bad")], 0, 0)
    assert report.exit_code == 1 and report.warnings[-1].kind == "unattributed_rows"


def test_a_plain_report_has_no_rejected_elsewhere() -> None:
    report = Report(run_id="r", command="sync", as_of=dt.date(2026, 12, 1), dry_run=False)
    assert "rejected_elsewhere" not in report.to_json()


def test_rejection_fields_are_the_documented_ones() -> None:
    names = [f.name for f in dataclasses.fields(Rejection)]
    assert names == ["file", "row", "field", "reason", "line", "key", "national_ids"]
