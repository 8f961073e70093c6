"""What the corrupted-export property (test_corrupted_export.py) found, each as a small case."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from connector.errors import InputError
from connector.hr.read import ReadPolicy, read_hr
from connector.known import KnownState
from connector.plan import make_plan
from tests.factories import GENT, HR_FIELDS, hr_row, write_csv, write_jsonl
from tests.unit.test_holds import DIGITS, grant_hold, relation_hold
from tests.unit.test_plan import D, desire, people, rec


def test_a_rejected_grant_row_of_someone_never_in_scope_holds_nothing_and_plans_nothing() -> None:
    # Left before the connector first ran, so never created; their grants row has a typo.
    ps = people(rec(1, digits=DIGITS, end=D(2026, 1, 1)))
    desired = desire(ps, KnownState(), D(2026, 6, 1), holds=[grant_hold()])
    assert not desired.users and not desired.held and not desired.hold_notes
    assert make_plan(desired, KnownState(), D(2026, 6, 1)).empty


def test_a_rejected_row_of_a_future_starter_not_yet_provisioned_plans_nothing() -> None:
    ps = people(rec(1, digits=DIGITS, start=D(2026, 9, 1)))
    desired = desire(ps, KnownState(), D(2026, 6, 1), holds=[relation_hold(key=None)])
    assert not desired.users and not desired.held and not desired.hold_notes


def _hr_text(rows: list[dict[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(HR_FIELDS), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def test_an_hr_file_cut_short_in_the_middle_of_a_row_stops_instead_of_losing_the_rest(
    tmp_path: Path,
) -> None:
    text = _hr_text([hr_row(n) for n in range(1, 6)])
    cut = text[: text.index("person3@")]  # row 3 ends there; rows 4 and 5 are lost
    path = tmp_path / "hr.csv"
    path.write_text(cut, encoding="utf-8")
    with pytest.raises(InputError, match=r"ends in the middle of row 3 \(line 4\)") as error:
        read_hr(path, ReadPolicy())
    assert "cut short" in str(error.value) and "85.07" not in str(error.value)


def test_a_short_row_followed_by_a_line_break_is_a_rejected_row_as_before(
    tmp_path: Path,
) -> None:
    text = _hr_text([hr_row(n) for n in range(1, 3)]) + "E0009,85.07.30-009.\n"
    path = tmp_path / "hr.csv"
    path.write_text(text, encoding="utf-8")
    read = read_hr(path, ReadPolicy())
    assert len(read.records) == 2 and [r.row for r in read.rejected] == [3]


def test_a_complete_last_row_without_a_line_break_is_read(tmp_path: Path) -> None:
    path = tmp_path / "hr.csv"
    path.write_text(_hr_text([hr_row(1), hr_row(2)]).rstrip("\n"), encoding="utf-8")
    assert len(read_hr(path, ReadPolicy()).records) == 2


def test_a_grants_file_cut_short_stops_too(tmp_path: Path) -> None:
    hr = write_csv(tmp_path / "hr.csv", [hr_row(1), hr_row(2)])
    grants = tmp_path / "grants.csv"
    grants.write_text(
        "organisation_code,employee_id,right,begin_date,end_date\n"
        f"{GENT},E0001,Premiezoeker Gebruiker,,\n{GENT},E0002,Premiezoeker",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match=r"grants\.csv: the file ends in the middle of row 2"):
        read_hr(hr, ReadPolicy(), grants_path=grants)


def test_a_json_lines_file_cut_short_inside_an_object_stops(tmp_path: Path) -> None:
    path = tmp_path / "hr.jsonl"
    whole = write_jsonl(path, [hr_row(1), hr_row(2)]).read_text(encoding="utf-8")
    path.write_text(whole[: whole.rindex('"email"')], encoding="utf-8")
    with pytest.raises(InputError, match=r"ends in the middle of row 2 \(line 2\)"):
        read_hr(path, ReadPolicy())
