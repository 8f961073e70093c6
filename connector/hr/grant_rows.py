"""Reading the grants file: each row's fast path and full check, and what a bad row holds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from connector.hr.columns import (
    GRANTS_FILE,
    GRANTS_LAYOUT,
    Header,
)
from connector.hr.decoding import Problem, RawRow, read_rows
from connector.hr.fields import Context, Fields, parse_employee_id
from connector.hr.records import (
    EmployeeKey,
    GrantRecord,
    HrInput,
    HrRecord,
    RowHold,
)
from connector.hr.rejections import rejections


@dataclass(frozen=True, slots=True)
class _CheckedGrant:
    """The outcome of validating one grants row."""

    record: GrantRecord | None
    problems: list[Problem]
    key: EmployeeKey | None = None
    right: str | None = None  # when readable


# ---------------------------------------------------------------------------- grants file


def read_grants_file(
    path: Path, known_rights: frozenset[str] | None, out: HrInput, hr_source: str
) -> None:
    source = path.name
    context = Context(known_rights)
    accepted = {record.key: record for record in out.records}
    header = out.columns[GRANTS_FILE] = Header(source, GRANTS_LAYOUT)
    for raw in read_rows(path, GRANTS_LAYOUT, out.warnings, header):
        record = None if raw.problems else _grant_record(raw, source, context, accepted)
        if record is not None:  # the common case
            out.grants.append(record)
            continue
        checked = _check_grant_row(raw, source, context)
        problems = checked.problems
        if checked.key is not None and checked.key not in accepted:
            state = "rejected" if checked.key in out.rejected_keys else "not"
            reason = f"unknown or rejected employee: {checked.key} is {state} in {hr_source}"
            problems.append(Problem("employee_id", reason))
        if checked.record is not None and not problems:
            out.grants.append(checked.record)
            continue
        row_rejections = rejections(source, raw, problems, checked.key)
        out.rejected.extend(row_rejections)
        if checked.key is not None and checked.key in accepted and row_rejections:
            # A typo in a grant must not withdraw the right: it holds the employee's
            # withdrawals (of that right, when it is readable).
            hold = RowHold(row_rejections[0], key=checked.key, grant=True, right=checked.right)
            out.holds.append(hold)


def _grant_record(
    raw: RawRow, source: str, c: Context, accepted: dict[EmployeeKey, HrRecord]
) -> GrantRecord | None:
    """The fast path: the row's grant if it is valid and for an accepted employee, else None.

    Like `hr_record`, it accepts exactly what `_check_grant_row` and the employee check
    accept; the grant shares its employee's organisation code and id.
    """
    values = raw.values
    get = values.get
    try:
        organisation_code = c.organisation_code(values["organisation_code"])
        employee_id = parse_employee_id(values["employee_id"])
        right = c.right(values["right"])
        text = get("begin_date")
        begin_date = None if text is None else c.date(text)
        text = get("end_date")
        end_date = None if text is None else c.date(text)
    except (KeyError, ValueError):
        return None
    if begin_date is not None and end_date is not None and end_date < begin_date:
        return None
    employee = accepted.get(EmployeeKey(organisation_code, employee_id))
    if employee is None:
        return None
    return GrantRecord(
        source=source,
        row=raw.row,
        organisation_code=employee.organisation_code,
        employee_id=employee.employee_id,
        right=right,
        begin_date=begin_date,
        end_date=end_date,
    )


def _check_grant_row(raw: RawRow, source: str, c: Context) -> _CheckedGrant:
    """The full check of a grants row: every problem, each worded for the report."""
    if unusable := raw.row_problems(GRANTS_LAYOUT):
        return _CheckedGrant(None, unusable)
    f = Fields(raw)
    organisation_code = f.parse("organisation_code", c.organisation_code, required=True)
    employee_id = f.parse("employee_id", parse_employee_id, required=True)
    right = f.parse("right", c.right, required=True)
    begin_date = f.parse("begin_date", c.date)
    end_date = f.parse("end_date", c.date)
    if begin_date and end_date and end_date < begin_date:
        f.reject(
            "end_date", f"{end_date.isoformat()} is before begin_date {begin_date.isoformat()}"
        )
    key = EmployeeKey(organisation_code, employee_id) if organisation_code and employee_id else None
    if f.problems or organisation_code is None or employee_id is None or right is None:
        return _CheckedGrant(None, f.problems, key, right)
    record = GrantRecord(
        source=source,
        row=raw.row,
        organisation_code=organisation_code,
        employee_id=employee_id,
        right=right,
        begin_date=begin_date,
        end_date=end_date,
    )
    return _CheckedGrant(record, [], key, right)


# ---------------------------------------------------------------------------- field parsing
