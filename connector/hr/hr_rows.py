"""One HR row: the fast path that builds a well-formed row's record directly, and the full check
that finds and words every problem (the fast path accepts exactly what the full check accepts)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from connector.hr.columns import (
    HR_LAYOUT,
)
from connector.hr.decoding import Problem, RawRow
from connector.hr.fields import (
    Context,
    Fields,
    check_free_text,
    check_lengths,
    free_text_clean,
    parse_employee_id,
    parse_relation,
    too_long,
)
from connector.hr.records import (
    EmployeeKey,
    HrRecord,
    NationalId,
    RelationType,
)


@dataclass(frozen=True, slots=True)
class ReadPolicy:
    """Validation policy that comes from configuration (`[externals]`)."""

    externals_require_end_date: bool = True
    externals_max_days: int = 365


@dataclass(frozen=True, slots=True)
class CheckedRow:
    """The outcome of validating one HR row, with what identifies its person if valid."""

    record: HrRecord | None
    problems: list[Problem]
    national_id: NationalId | None = None
    key: EmployeeKey | None = None


def hr_record(raw: RawRow, source: str, policy: ReadPolicy, c: Context) -> HrRecord | None:
    """The fast path: the row's record if the row is valid as it is, else None.

    Uses the same parsers as `check_hr_row`, so it accepts exactly the rows that accepts, with
    the same record; any problem (a missing or bad value) sends the row to `check_hr_row`,
    which finds and words them all.
    """
    values = raw.values
    get = values.get
    try:
        employee_id = parse_employee_id(values["employee_id"])
        national_id = c.national_id(values["national_id"])
        given_name = values["given_name"]
        family_name = values["family_name"]
        email = c.email(values["email"])
        organisation_code = c.organisation_code(values["organisation_code"])
        text = get("employer_code")
        employer_code = None if text is None else c.organisation_code(text)
        start_date = c.date(values["start_date"])
        text = get("end_date")
        end_date = None if text is None else c.date(text)
        text = get("relation")
        relation = RelationType.EMPLOYEE if text is None else parse_relation(text)
        text = get("rights")
        rights = () if text is None else c.rights(text)
    except (KeyError, ValueError):
        return None
    if _relation_dates_problem(start_date, end_date, relation, policy) is not None:
        return None
    if too_long(values) or not free_text_clean(values):
        return None
    return HrRecord(
        source=source,
        row=raw.row,
        employee_id=employee_id,
        national_id=national_id,
        given_name=c.text(given_name),
        family_name=c.text(family_name),
        email=email,
        organisation_code=organisation_code,
        start_date=start_date,
        end_date=end_date,
        organisation_name=c.optional_text(get("organisation_name")),
        department=c.optional_text(get("department")),
        job_title=c.optional_text(get("job_title")),
        relation=relation,
        employer_code=employer_code,
        rights=rights,
    )


def check_hr_row(raw: RawRow, source: str, policy: ReadPolicy, c: Context) -> CheckedRow:
    """The full check of an HR row: every problem, each worded for the report."""
    if unusable := raw.row_problems(HR_LAYOUT):
        return CheckedRow(None, unusable)
    f = Fields(raw)
    employee_id = f.parse("employee_id", parse_employee_id, required=True)
    national_id = f.parse("national_id", c.national_id, required=True)
    given_name = f.required("given_name")
    family_name = f.required("family_name")
    email = f.parse("email", c.email, required=True)
    organisation_code = f.parse("organisation_code", c.organisation_code, required=True)
    employer_code = f.parse("employer_code", c.organisation_code)
    start_date = f.parse("start_date", c.date, required=True)
    end_date = f.parse("end_date", c.date)
    relation = f.parse("relation", parse_relation) or RelationType.EMPLOYEE
    rights = f.parse("rights", c.rights) or ()
    check_relation_dates(f, start_date, end_date, relation, policy)
    check_lengths(f)
    check_free_text(f)
    key = EmployeeKey(organisation_code, employee_id) if organisation_code and employee_id else None
    if (
        f.problems
        or employee_id is None
        or national_id is None
        or given_name is None
        or family_name is None
        or email is None
        or organisation_code is None
        or start_date is None
    ):
        return CheckedRow(None, f.problems, national_id, key)
    record = HrRecord(
        source=source,
        row=raw.row,
        employee_id=employee_id,
        national_id=national_id,
        given_name=c.text(given_name),
        family_name=c.text(family_name),
        email=email,
        organisation_code=organisation_code,
        start_date=start_date,
        end_date=end_date,
        organisation_name=c.optional_text(f.optional("organisation_name")),
        department=c.optional_text(f.optional("department")),
        job_title=c.optional_text(f.optional("job_title")),
        relation=relation,
        employer_code=employer_code,
        rights=rights,
    )
    return CheckedRow(record, [], national_id, key)


def check_relation_dates(
    f: Fields,
    start: dt.date | None,
    end: dt.date | None,
    relation: RelationType,
    policy: ReadPolicy,
) -> None:
    if start is None or f.has_problem("end_date") or f.has_problem("relation"):
        return
    if (problem := _relation_dates_problem(start, end, relation, policy)) is not None:
        f.problems.append(problem)


def _relation_dates_problem(
    start: dt.date, end: dt.date | None, relation: RelationType, policy: ReadPolicy
) -> Problem | None:
    """What is wrong with a relation's dates (end before start, an external's span), if anything."""
    if end is not None and end < start:
        return Problem("end_date", f"{end.isoformat()} is before start_date {start.isoformat()}")
    if relation is not RelationType.EXTERNAL:
        return None
    if end is None:
        if policy.externals_require_end_date:
            return Problem("end_date", "is required for an external (externals.require_end_date)")
    elif (end - start).days >= policy.externals_max_days:
        return Problem(
            "end_date",
            f"an external's end_date must be less than {policy.externals_max_days} days"
            f" after start_date (externals.max_days); it is {(end - start).days} days after",
        )
    return None
