"""Header drift (issue 14, kind 2): the columns each input file had are read with it, kept by
the state store after a sync that applied, and a contract column missing later is an error
that names the missing column(s) and the columns found."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from connector.errors import InputError
from connector.hr.columns import (
    GRANTS_FILE,
    HR_FILE,
    ColumnsMissing,
    contract_columns,
    missing_columns,
)
from connector.hr.read import ReadPolicy, read_hr
from connector.state import StateStore
from connector.state.schema import MIGRATIONS
from tests.factories import GENT, HR_FIELDS, hr_row, write_csv, write_jsonl

GRANT_FIELDS = ("organisation_code", "employee_id", "right", "begin_date", "end_date")
RIGHT = "Premiezoeker Gebruiker"


def grant(n: int = 1) -> dict[str, str]:
    return {"organisation_code": GENT, "employee_id": f"E{n:04d}", "right": RIGHT}


def read(hr: Path, grants: Path | None = None) -> dict[str, tuple[str, ...]]:
    return contract_columns(read_hr(hr, ReadPolicy(), grants_path=grants).columns)


def test_the_contract_columns_of_a_csv_header_are_read_with_it(tmp_path: Path) -> None:
    fields = [("einddatum" if f == "end_date" else f) for f in HR_FIELDS]
    hr = write_csv(tmp_path / "hr.csv", [hr_row(1)], fields=fields)
    grants = write_csv(tmp_path / "grants.csv", [grant()], fields=GRANT_FIELDS[:4])
    columns = read(hr, grants)
    assert columns[HR_FILE] == tuple(f for f in HR_FIELDS if f != "end_date")
    assert columns[GRANTS_FILE] == GRANT_FIELDS[:4]


def test_a_header_only_csv_still_has_its_columns(tmp_path: Path) -> None:
    hr = write_csv(tmp_path / "hr.csv", [], fields=HR_FIELDS)
    assert read(hr)[HR_FILE] == HR_FIELDS


def test_json_lines_columns_are_the_keys_any_row_has(tmp_path: Path) -> None:
    first = {k: v for k, v in hr_row(1).items() if k not in {"rights", "end_date"}}
    second = {**{k: v for k, v in hr_row(2).items() if k != "rights"}, "einddatum": "2026-01-01"}
    hr = write_jsonl(tmp_path / "hr.jsonl", [first, second])
    assert read(hr)[HR_FILE] == tuple(f for f in HR_FIELDS if f != "rights")


def test_a_json_lines_file_without_rows_says_nothing_about_its_columns(tmp_path: Path) -> None:
    hr = write_jsonl(tmp_path / "hr.jsonl", [])
    assert HR_FILE not in read(hr)
    headers = read_hr(hr, ReadPolicy()).columns
    assert missing_columns(headers, {HR_FILE: HR_FIELDS}) is None


def test_a_contract_column_the_last_run_had_is_missing_names_it_and_the_columns_found(
    tmp_path: Path,
) -> None:
    fields = [("einddatum" if f == "end_date" else f) for f in HR_FIELDS if f != "rights"]
    hr = write_csv(tmp_path / "hr.csv", [hr_row(1)], fields=fields)
    headers = read_hr(hr, ReadPolicy()).columns
    error = missing_columns(headers, {HR_FILE: HR_FIELDS})
    assert isinstance(error, ColumnsMissing) and isinstance(error, InputError)
    assert error.missing == ("end_date", "rights")
    text = str(error)
    assert text.startswith("hr.csv: column(s) end_date, rights missing")
    assert "'einddatum'" in text and "'employee_id'" in text and "--accept-columns" in text


def test_a_column_the_last_run_did_not_have_is_no_drift(tmp_path: Path) -> None:
    hr = write_csv(tmp_path / "hr.csv", [hr_row(1)], fields=HR_FIELDS)
    headers = read_hr(hr, ReadPolicy()).columns
    assert missing_columns(headers, {HR_FILE: HR_FIELDS[:-2]}) is None
    assert missing_columns(headers, {}) is None  # the first run: nothing to compare with


def test_a_grants_file_missing_its_end_date_column_is_drift(tmp_path: Path) -> None:
    hr = write_csv(tmp_path / "hr.csv", [hr_row(1)], fields=HR_FIELDS)
    grants = write_csv(tmp_path / "grants.csv", [grant()], fields=GRANT_FIELDS[:4])
    headers = read_hr(hr, ReadPolicy(), grants_path=grants).columns
    error = missing_columns(headers, {HR_FILE: HR_FIELDS, GRANTS_FILE: GRANT_FIELDS})
    assert error is not None and error.file == "grants.csv" and error.missing == ("end_date",)


def test_a_national_number_used_as_a_column_name_is_masked_in_the_message(
    tmp_path: Path,
) -> None:
    digits = hr_row(1)["national_id"]
    fields = [*[f for f in HR_FIELDS if f != "rights"], digits]
    hr = write_csv(tmp_path / "hr.csv", [hr_row(1)], fields=fields)
    error = missing_columns(read_hr(hr, ReadPolicy()).columns, {HR_FILE: HR_FIELDS})
    assert error is not None
    assert digits not in str(error) and "***" in str(error)


def test_the_state_store_keeps_the_columns_of_the_last_applied_sync(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.db")
    try:
        assert store.source_columns() == {}
        store.save_source_columns("run-1", {HR_FILE: HR_FIELDS, GRANTS_FILE: GRANT_FIELDS})
        store.save_source_columns("run-2", {HR_FILE: HR_FIELDS[:-1]})
        assert store.source_columns() == {HR_FILE: HR_FIELDS[:-1], GRANTS_FILE: GRANT_FIELDS}
        version = store._db.execute("PRAGMA user_version").fetchone()[0]
        assert version == len(MIGRATIONS)
    finally:
        store.close()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_reading_twice_gives_the_same_columns(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"hr{suffix}"
    if suffix == ".csv":
        write_csv(path, [hr_row(1)], fields=HR_FIELDS)
    else:
        write_jsonl(path, [hr_row(1)])
    assert read(path) == read(path) == {HR_FILE: HR_FIELDS}


def test_syncs_are_an_initial_load_until_one_has_applied_its_plan(tmp_path: Path) -> None:
    store = StateStore.open(tmp_path / "state.db")
    try:
        assert not store.has_applied_run()
        store.begin_run("killed", "sync", dt.date(2026, 12, 1), dry_run=False)
        store.begin_run("preview", "sync", dt.date(2026, 12, 1), dry_run=True)
        store.finish_run("preview", "done", {}, 0)
        assert not store.has_applied_run()  # one never finished, the other was a preview
        store.begin_run("applied", "sync", dt.date(2026, 12, 1), dry_run=False)
        store.finish_run("applied", "failed", {}, 1)
        assert store.has_applied_run()
    finally:
        store.close()
