"""Streaming readers for the HR file and the grants file (CSV or JSON Lines), with validation.

Files are read row by row; memory grows with the records kept (plus a small index per row for
duplicate detection), never with the file as a whole. A bad row is rejected with a reason per
bad field (one row may so give several rejections); a file that cannot be read as a whole raises
`InputError`. Reasons and warnings never contain a national number in clear.

Lean by design (150,000 rows and more): equal values of the few-valued fields (names,
organisation names, departments, job titles, right names, dates) are one object per read, each
national number is validated once per read, and a well-formed row takes a fast path that builds
its record directly. Any row the fast path does not accept as is goes through the full check,
which finds and words every problem; the fast path accepts exactly what the full check accepts.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import itertools
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from connector.errors import InputError
from connector.hr.columns import (
    GRANTS_FILE,
    GRANTS_LAYOUT,
    HR_FILE,
    HR_LAYOUT,
    MAX_UNKNOWN_NAMES,
    Header,
    Layout,
    check_header,
    unknown_fields_warning,
)
from connector.hr.records import (
    EmployeeKey,
    GrantRecord,
    HrInput,
    HrRecord,
    NationalId,
    Rejection,
    RelationType,
    RowHold,
    Warning_,
)
from connector.nationalid import (
    find_national_ids,
    holds_national_id,
    mask_national_ids,
    parse_national_id,
)
from connector.organisation import normalise_organisation_code

if TYPE_CHECKING:
    import _csv

T = TypeVar("T")

JSON_LINES_SUFFIXES = frozenset({".jsonl", ".ndjson"})

# Characters no HR value may contain: C0/C1 controls (line breaks, tabs, NUL, ...) and lone
# surrogates (from JSON escapes such as "\ud800", which are not text).
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# Bytes that are not UTF-8 show up as these under the "surrogateescape" error handler.
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_EMAIL_LOCAL = re.compile(r"[^\s@,;:<>()\[\]\\\"]+")
_EMAIL_DOMAIN = re.compile(r"(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,}")
_SPACE = re.compile(r"\s")


@dataclass(frozen=True, slots=True)
class ReadPolicy:
    """Validation policy that comes from configuration (`[externals]`)."""

    externals_require_end_date: bool = True
    externals_max_days: int = 365


@dataclass(frozen=True, slots=True)
class _Problem:
    """Why (part of) a row is not accepted; `field` None means the row as a whole."""

    field: str | None
    reason: str


@dataclass(slots=True)
class _RawRow:
    """One data row split into known fields: trimmed, NFC-normalised, empty values left out."""

    row: int
    line: int
    values: dict[str, str]
    problems: tuple[_Problem, ...] = ()
    text: str = ""  # the raw row, kept only when it cannot be split into fields

    def row_problems(self, layout: Layout) -> list[_Problem]:
        """Row-level problems: not splittable into fields, or none of the required ones given."""
        if any(p.field is None for p in self.problems):
            return list(self.problems)
        if self.problems or any(name in self.values for name in layout.required):
            return []
        return [_Problem(None, f"has none of the required fields {', '.join(layout.required)}")]


@dataclass(frozen=True, slots=True)
class _Checked:
    """The outcome of validating one HR row, with what identifies its person if valid."""

    record: HrRecord | None
    problems: list[_Problem]
    national_id: NationalId | None = None
    key: EmployeeKey | None = None


@dataclass(frozen=True, slots=True)
class _CheckedGrant:
    """The outcome of validating one grants row."""

    record: GrantRecord | None
    problems: list[_Problem]
    key: EmployeeKey | None = None
    right: str | None = None  # when readable


@dataclass(frozen=True, slots=True)
class _Seen:
    """Where a row with a given employee key was, for duplicate detection."""

    row: int
    line: int
    national_id: NationalId | None


class _LineNumbers:
    """The physical line of every data row, kept as the rows where `line - row` changes.

    Rows are numbered as they come; a file without blank lines or multi-line values holds one
    entry, however long it is.
    """

    __slots__ = ("_offsets", "_rows")

    def __init__(self) -> None:
        self._rows: list[int] = []
        self._offsets: list[int] = []

    def note(self, row: int, line: int) -> None:
        """Record that data row `row` starts on physical line `line` (rows in ascending order)."""
        offset = line - row
        if not self._offsets or self._offsets[-1] != offset:
            self._rows.append(row)
            self._offsets.append(offset)

    def line(self, row: int) -> int:
        """The physical line of a data row noted before."""
        return row + self._offsets[bisect.bisect_right(self._rows, row) - 1]


class _Context:
    """What the rows of one file share: known rights, and caches that make equal values one object.

    The few-valued fields (names, organisation names, departments, job titles, right names)
    are interned in a dict that lives as long as the read (not `sys.intern`, which would keep
    them for the life of the process); dates are parsed once per distinct text; national
    numbers are validated once per distinct number (and its rows share one NationalId).
    """

    __slots__ = ("_dates", "_domains", "_national_ids", "_rights", "_strings", "known_rights")

    def __init__(self, known_rights: frozenset[str] | None) -> None:
        self.known_rights = known_rights
        self._strings: dict[str, str] = {}
        self._dates: dict[str, dt.date] = {}
        self._rights: dict[str, tuple[str, ...]] = {}
        self._national_ids: dict[str, NationalId] = {}
        self._domains: set[str] = set()

    def text(self, value: str) -> str:
        """The one object of this read equal to `value`."""
        return self._strings.setdefault(value, value)

    def optional_text(self, value: str | None) -> str | None:
        """`text`, passing None through."""
        return None if value is None else self._strings.setdefault(value, value)

    def organisation_code(self, text: str) -> str:
        """A normalised KBO number or OVO code (every spelling of it gives the same object)."""
        code = normalise_organisation_code(text)
        return self._strings.setdefault(code, code)

    def date(self, text: str) -> dt.date:
        """An ISO date; raises ValueError with the reason."""
        date = self._dates.get(text)
        if date is None:
            date = self._dates[text] = _date(text)
        return date

    def national_id(self, text: str) -> NationalId:
        """A national number, validated (python-stdnum and tighter checks) once per read."""
        return parse_national_id(text, self._national_ids)

    def email(self, text: str) -> str:
        """A work e-mail address, its domain in lower case; raises ValueError with the reason."""
        return _email(text, self._domains)

    def rights(self, text: str) -> tuple[str, ...]:
        """The rights column's names; raises ValueError naming unknown ones."""
        names = self._rights.get(text)
        if names is None:
            names = tuple(map(self.text, _rights(text, self.known_rights)))
            self._rights[text] = names
        return names

    def right(self, text: str) -> str:
        """One right name; raises ValueError if the mapping does not define it."""
        return self.text(_right(text, self.known_rights))


# ---------------------------------------------------------------------------- public entry


def read_hr(
    path: Path,
    policy: ReadPolicy,
    known_rights: frozenset[str] | None = None,
    grants_path: Path | None = None,
) -> HrInput:
    """Read and validate the HR file (and the grants file, if given); raises InputError."""
    out = HrInput()
    _read_hr_file(path, policy, known_rights, out)
    if grants_path is not None:
        _read_grants_file(grants_path, known_rights, out, hr_source=path.name)
    return out


# ---------------------------------------------------------------------------- HR file


def _read_hr_file(
    path: Path, policy: ReadPolicy, known_rights: frozenset[str] | None, out: HrInput
) -> None:
    source = path.name
    context = _Context(known_rights)
    # The first row of every employee key: its record when accepted (which says where it is,
    # given the line numbers), else where it was; and every row of the keys seen more than once.
    seen: dict[EmployeeKey, HrRecord | _Seen] = {}
    duplicates: dict[EmployeeKey, list[_Seen]] = {}
    lines = _LineNumbers()
    kept: list[HrRecord] = []
    header = out.columns[HR_FILE] = Header(source, HR_LAYOUT)
    for raw in _rows(path, HR_LAYOUT, out.warnings, header):
        lines.note(raw.row, raw.line)
        record = None if raw.problems else _hr_record(raw, source, policy, context)
        if record is not None:  # the common case
            key: EmployeeKey | None = record.key
            problems: list[_Problem] = []
            national_id: NationalId | None = record.national_id
        else:
            checked = _check_hr_row(raw, source, policy, context)
            record, problems = checked.record, checked.problems
            key = record.key if record is not None else checked.key
            national_id = checked.national_id
        if key is not None:
            here = record if record is not None else _Seen(raw.row, raw.line, national_id)
            first = seen.setdefault(key, here)
            if first is not here:
                copies = duplicates.get(key)
                if copies is None:
                    copies = duplicates[key] = [_seen(first, lines)]
                copies.append(_seen(here, lines))
        if record is not None:
            kept.append(record)
            out.warnings.extend(_formula_warnings(source, record))
            continue
        digits = national_id.digits if national_id is not None else None
        # A row that could not be split into fields still names whoever it names.
        named = {n.digits: n for n in find_national_ids(raw.text) if n.digits != digits}
        whom: tuple[NationalId, ...] = (national_id,) if national_id is not None else ()
        whom += tuple(named[d] for d in sorted(named))
        rejections = _rejections(source, raw, problems, key, whom)
        out.rejected.extend(rejections)
        if digits is not None:
            out.rejected_national_ids.add(digits)
        if key is not None:
            out.rejected_keys.add(key)
        if rejections and (digits is not None or key is not None):
            out.holds.append(RowHold(rejections[0], digits, key))
        # A row that could not be split into fields still holds whoever it names.
        out.rejected_national_ids.update(named)
        out.holds.extend(RowHold(rejections[0], d) for d in sorted(named) if rejections)
    del seen, context
    _reject_duplicates(source, duplicates, out)
    if duplicates:
        kept = [r for r in kept if r.key not in duplicates]
    out.records.extend(kept)
    del kept
    out.rejected.sort(key=lambda r: (r.row or 0, r.line or 0))
    out.warnings.extend(_name_mismatches(source, out.records))
    if not out.records and not out.rejected:
        out.warnings.append(
            Warning_(kind="no_rows", message=f"{source} holds no data rows", file=source)
        )


def _seen(where: HrRecord | _Seen, lines: _LineNumbers) -> _Seen:
    if isinstance(where, _Seen):
        return where
    return _Seen(where.row, lines.line(where.row), where.national_id)


# The longest value accepted per field, in characters: the usual limits of identity providers'
# SCIM endpoints (Microsoft Entra ID, for one: givenName, surname, department 64; jobTitle 128),
# so that a value is rejected here, with its row, rather than refused by the target.
MAX_LENGTHS = {
    "employee_id": 64,
    "given_name": 64,
    "family_name": 64,
    "organisation_name": 256,
    "department": 64,
    "job_title": 128,
}
# A cell starting with one of these is a formula to a spreadsheet that opens an export of
# the target (CSV injection): accepted, with a warning.
FORMULA_STARTS = ("=", "+", "-", "@")
FORMULA_FIELDS = ("given_name", "family_name", "organisation_name", "department", "job_title")
# The free-text fields: shown in reports, kept in the state store and pushed in clear, so a
# national number in one (a shifted column, a number typed in a name) rejects the row.
FREE_TEXT_FIELDS = FORMULA_FIELDS
HOLDS_NATIONAL_ID = (
    "holds a national number; a name, organisation name, department, job title or right is"
    " shown and pushed in clear and must never hold one (is a column shifted?)"
)


def _too_long(values: dict[str, str]) -> bool:
    return any(len(values.get(name) or "") > limit for name, limit in MAX_LENGTHS.items())


def _check_lengths(f: _Fields) -> None:
    for name, limit in MAX_LENGTHS.items():
        value = f.optional(name)
        if value is not None and len(value) > limit and not f.has_problem(name):
            f.reject(name, f"is {len(value)} characters long; at most {limit} are accepted")


def _free_text_clean(values: dict[str, str]) -> bool:
    """The fast path's test: no free-text field holds a national number."""
    return not any(
        holds_national_id(value)
        for name in FREE_TEXT_FIELDS
        if (value := values.get(name)) is not None
    )


def _check_free_text(f: _Fields) -> None:
    for name in FREE_TEXT_FIELDS:
        value = f.optional(name)
        if value is not None and not f.has_problem(name) and holds_national_id(value):
            f.reject(name, HOLDS_NATIONAL_ID)


def _formula_warnings(source: str, record: HrRecord) -> Iterator[Warning_]:
    for name in FORMULA_FIELDS:
        value = getattr(record, name)
        if value and value.startswith(FORMULA_STARTS):
            yield Warning_(
                kind="formula",
                message=mask_national_ids(
                    f"{source} row {record.row}: {name} starts with {value[0]!r}; a spreadsheet "
                    "opening an export of the target may run it as a formula"
                ),
                file=source,
                row=record.row,
                field=name,
            )


def _hr_record(raw: _RawRow, source: str, policy: ReadPolicy, c: _Context) -> HrRecord | None:
    """The fast path: the row's record if the row is valid as it is, else None.

    Uses the same parsers as `_check_hr_row`, so it accepts exactly the rows that accepts, with
    the same record; any problem (a missing or bad value) sends the row to `_check_hr_row`,
    which finds and words them all.
    """
    values = raw.values
    get = values.get
    try:
        employee_id = _employee_id(values["employee_id"])
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
        relation = RelationType.EMPLOYEE if text is None else _relation(text)
        text = get("rights")
        rights = () if text is None else c.rights(text)
    except (KeyError, ValueError):
        return None
    if _relation_dates_problem(start_date, end_date, relation, policy) is not None:
        return None
    if _too_long(values) or not _free_text_clean(values):
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


def _check_hr_row(raw: _RawRow, source: str, policy: ReadPolicy, c: _Context) -> _Checked:
    """The full check of an HR row: every problem, each worded for the report."""
    if unusable := raw.row_problems(HR_LAYOUT):
        return _Checked(None, unusable)
    f = _Fields(raw)
    employee_id = f.parse("employee_id", _employee_id, required=True)
    national_id = f.parse("national_id", c.national_id, required=True)
    given_name = f.required("given_name")
    family_name = f.required("family_name")
    email = f.parse("email", c.email, required=True)
    organisation_code = f.parse("organisation_code", c.organisation_code, required=True)
    employer_code = f.parse("employer_code", c.organisation_code)
    start_date = f.parse("start_date", c.date, required=True)
    end_date = f.parse("end_date", c.date)
    relation = f.parse("relation", _relation) or RelationType.EMPLOYEE
    rights = f.parse("rights", c.rights) or ()
    _check_relation_dates(f, start_date, end_date, relation, policy)
    _check_lengths(f)
    _check_free_text(f)
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
        return _Checked(None, f.problems, national_id, key)
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
    return _Checked(record, [], national_id, key)


def _check_relation_dates(
    f: _Fields,
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
) -> _Problem | None:
    """What is wrong with a relation's dates (end before start, an external's span), if anything."""
    if end is not None and end < start:
        return _Problem("end_date", f"{end.isoformat()} is before start_date {start.isoformat()}")
    if relation is not RelationType.EXTERNAL:
        return None
    if end is None:
        if policy.externals_require_end_date:
            return _Problem("end_date", "is required for an external (externals.require_end_date)")
    elif (end - start).days >= policy.externals_max_days:
        return _Problem(
            "end_date",
            f"an external's end_date must be less than {policy.externals_max_days} days"
            f" after start_date (externals.max_days); it is {(end - start).days} days after",
        )
    return None


def _reject_duplicates(
    source: str, duplicates: dict[EmployeeKey, list[_Seen]], out: HrInput
) -> None:
    for key, rows in duplicates.items():
        out.rejected_keys.add(key)
        for here in rows:
            others = ", ".join(str(s.row) for s in rows if s is not here)
            reason = (
                f"organisation_code and employee_id ({key}) also appear in row(s) {others};"
                " all copies are rejected"
            )
            whom = (here.national_id,) if here.national_id is not None else ()
            rejection = _rejection(source, here.row, here.line, "employee_id", reason, key, whom)
            out.rejected.append(rejection)
            digits = here.national_id.digits if here.national_id is not None else None
            out.holds.append(RowHold(rejection, digits, key))
            if digits is not None:
                out.rejected_national_ids.add(digits)


def _name_mismatches(source: str, records: list[HrRecord]) -> list[Warning_]:
    # Most people have one row: a list only for those with more.
    firsts: dict[str, HrRecord] = {}
    more: dict[str, list[HrRecord]] = {}
    for record in records:
        digits = record.national_id.digits
        other = firsts.setdefault(digits, record)
        if other is not record:
            person_records = more.get(digits)
            if person_records is None:
                more[digits] = [other, record]
            else:
                person_records.append(record)
    warnings: list[Warning_] = []
    if not more:
        return warnings
    # In the order of each person's first row, as one list per person would give.
    for person_records in [more[d] for d in firsts if d in more]:
        if len({_name_key(r) for r in person_records}) < 2:
            continue
        first = person_records[0]
        rows = ", ".join(str(r.row) for r in person_records)
        message = (
            f"national number {first.national_id.masked} has different names in {source}"
            f" rows {rows};"
            " the row with the latest start_date gives the name"
        )
        warnings.append(
            Warning_(
                kind="name_mismatch", message=mask_national_ids(message), file=source, row=first.row
            )
        )
    return warnings


def _name_key(record: HrRecord) -> tuple[str, str]:
    """Names compared without regard to letter case or runs of spaces."""
    return (
        " ".join(record.given_name.split()).casefold(),
        " ".join(record.family_name.split()).casefold(),
    )


# ---------------------------------------------------------------------------- grants file


def _read_grants_file(
    path: Path, known_rights: frozenset[str] | None, out: HrInput, hr_source: str
) -> None:
    source = path.name
    context = _Context(known_rights)
    accepted = {record.key: record for record in out.records}
    header = out.columns[GRANTS_FILE] = Header(source, GRANTS_LAYOUT)
    for raw in _rows(path, GRANTS_LAYOUT, out.warnings, header):
        record = None if raw.problems else _grant_record(raw, source, context, accepted)
        if record is not None:  # the common case
            out.grants.append(record)
            continue
        checked = _check_grant_row(raw, source, context)
        problems = checked.problems
        if checked.key is not None and checked.key not in accepted:
            state = "rejected" if checked.key in out.rejected_keys else "not"
            reason = f"unknown or rejected employee: {checked.key} is {state} in {hr_source}"
            problems.append(_Problem("employee_id", reason))
        if checked.record is not None and not problems:
            out.grants.append(checked.record)
            continue
        rejections = _rejections(source, raw, problems, checked.key)
        out.rejected.extend(rejections)
        if checked.key is not None and checked.key in accepted and rejections:
            # A typo in a grant must not withdraw the right: it holds the employee's
            # withdrawals (of that right, when it is readable).
            hold = RowHold(rejections[0], key=checked.key, grant=True, right=checked.right)
            out.holds.append(hold)


def _grant_record(
    raw: _RawRow, source: str, c: _Context, accepted: dict[EmployeeKey, HrRecord]
) -> GrantRecord | None:
    """The fast path: the row's grant if it is valid and for an accepted employee, else None.

    Like `_hr_record`, it accepts exactly what `_check_grant_row` and the employee check
    accept; the grant shares its employee's organisation code and id.
    """
    values = raw.values
    get = values.get
    try:
        organisation_code = c.organisation_code(values["organisation_code"])
        employee_id = _employee_id(values["employee_id"])
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


def _check_grant_row(raw: _RawRow, source: str, c: _Context) -> _CheckedGrant:
    """The full check of a grants row: every problem, each worded for the report."""
    if unusable := raw.row_problems(GRANTS_LAYOUT):
        return _CheckedGrant(None, unusable)
    f = _Fields(raw)
    organisation_code = f.parse("organisation_code", c.organisation_code, required=True)
    employee_id = f.parse("employee_id", _employee_id, required=True)
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


class _Fields:
    """Reads the fields of one row, collecting every problem instead of stopping at the first."""

    def __init__(self, raw: _RawRow) -> None:
        self._values = raw.values
        self.problems: list[_Problem] = list(raw.problems)

    def has_problem(self, name: str) -> bool:
        """True if the field was already found wrong."""
        return any(p.field == name for p in self.problems)

    def reject(self, name: str, reason: str) -> None:
        """Record a problem with a field."""
        self.problems.append(_Problem(name, reason))

    def optional(self, name: str) -> str | None:
        """The field's value, or None when it is missing."""
        return self._values.get(name)

    def required(self, name: str) -> str | None:
        """The field's value; a missing value is a problem."""
        value = self._values.get(name)
        if value is None and not self.has_problem(name):
            self.reject(name, "is required")
        return value

    def parse(self, name: str, parse: Callable[[str], T], *, required: bool = False) -> T | None:
        """The field parsed by `parse`, whose ValueError becomes a problem with the field."""
        value = self.required(name) if required else self.optional(name)
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as error:
            self.reject(name, str(error))
            return None


def _shown(value: str) -> str:
    """The value quoted for a reason, unless it could hold a national number (11+ digits)."""
    if sum(c.isdigit() for c in value) >= 11 or len(value) > 40:
        return ""
    return f" (got {_quoted(value)})"


def _quoted(text: str) -> str:
    """Text in quotes for a message, with unprintable characters shown as `?`."""
    return "'" + "".join(c if c.isprintable() else "?" for c in text) + "'"


def _date(text: str) -> dt.date:
    if not (text.isascii() and _ISO_DATE.fullmatch(text)):
        raise ValueError(f"must be a date written YYYY-MM-DD{_shown(text)}")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"is not a real date{_shown(text)}") from None


def _employee_id(text: str) -> str:
    """The HR key as given; never a national number (it is shown in reports and stored and
    pushed in clear, as the employee number: a national number must be neither)."""
    found = find_national_ids(text) if sum(c.isdigit() for c in text) >= 11 else ()
    if found:
        raise ValueError(
            f"is a national number ({found[0].masked}): give the HR system's personnel "
            "number, never the national number"
        )
    return text


def _email(text: str, valid_domains: set[str] | None = None) -> str:
    """The address with its domain in lower case; `valid_domains` remembers domains checked."""
    local, _, domain = text.partition("@")
    if _SPACE.search(text):
        raise ValueError("must not contain spaces")
    if text.count("@") != 1:
        raise ValueError("must contain exactly one @")
    if not _EMAIL_LOCAL.fullmatch(local):
        raise ValueError('must have a local part before the @, without , ; : < > ( ) [ ] \\ "')
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise ValueError(
            "must not have a dot at the start or end of the local part, nor two in a row"
        )
    if len(local) > 64:
        raise ValueError("must have at most 64 characters before the @")
    if len(text) > 254:
        raise ValueError("must have at most 254 characters")
    if valid_domains is None or domain not in valid_domains:
        if not _EMAIL_DOMAIN.fullmatch(domain):
            raise ValueError("must have a domain name after the @, such as gent.be")
        if valid_domains is not None:
            valid_domains.add(domain)
    lower = domain.lower()
    return text if lower == domain else f"{local}@{lower}"


_RELATIONS = {r.value: r for r in RelationType}


def _relation(text: str) -> RelationType:
    relation = _RELATIONS.get(text.lower())
    if relation is None:
        raise ValueError(f"must be 'employee' or 'external'{_shown(text)}")
    return relation


def _rights(text: str, known: frozenset[str] | None) -> tuple[str, ...]:
    if holds_national_id(text):
        raise ValueError(HOLDS_NATIONAL_ID)
    names = tuple(dict.fromkeys(n.strip() for n in text.split(";") if n.strip()))
    _check_known(names, known)
    return names


def _right(text: str, known: frozenset[str] | None) -> str:
    if holds_national_id(text):
        raise ValueError(HOLDS_NATIONAL_ID)
    _check_known((text,), known)
    return text


def _check_known(names: Iterable[str], known: frozenset[str] | None) -> None:
    if known is None:
        return
    unknown = [n for n in names if n not in known]
    if unknown:
        named = ", ".join(map(_quoted, unknown))
        listed = ", ".join(map(_quoted, sorted(known))) or "none"
        raise ValueError(f"unknown right {named}; known rights: {listed}")


# ---------------------------------------------------------------------------- rows of a file


def _rows(
    path: Path, layout: Layout, warnings: list[Warning_], header: Header
) -> Iterator[_RawRow]:
    """The data rows of a CSV or JSON Lines file; raises InputError if it cannot be read.
    `header` is given the names of its columns (for JSON Lines: the keys its rows have)."""
    name = str(path)
    try:
        with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as f:
            lines = _Lines(f, name)
            if path.suffix.lower() in JSON_LINES_SUFFIXES:
                yield from _jsonl_rows(lines, name, path.name, layout, warnings, header)
            else:
                yield from _csv_rows(lines, name, path.name, layout, warnings, header)
    except FileNotFoundError:
        raise InputError(name, "file not found") from None
    except IsADirectoryError:
        raise InputError(name, "is a directory, not a file") from None
    except OSError as error:
        raise InputError(name, f"cannot be read: {error.strerror or error}") from None


class _Lines:
    """A file's lines, each checked to be UTF-8 text; `ended`: whether the latest line read
    ended with a line break (only a file's last line may not)."""

    __slots__ = ("_f", "_name", "_number", "ended")

    def __init__(self, f: IO[str], name: str) -> None:
        self._f, self._name, self._number, self.ended = f, name, 0, True

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self._f)
        self._number += 1
        if not line.isascii() and _UNDECODABLE.search(line):
            raise InputError(
                self._name, f"line {self._number} is not UTF-8 text; export the file as UTF-8"
            )
        self.ended = line.endswith(("\n", "\r"))
        return line


def _cut_short(name: str, row: int, line: int, what: str) -> InputError:
    """The error for a file whose last line is an incomplete row: an export or copy that was
    interrupted. What it lost cannot be known, so nothing of it is used (not a rejected row:
    the rows after it would read as people who left)."""
    return InputError(
        name,
        f"the file ends in the middle of row {row} (line {line}): {what} and no line break"
        " follows; it looks cut short (an interrupted export or copy), so nothing was"
        " applied. Export it again",
    )


def _csv_rows(
    lines: _Lines,
    name: str,
    source: str,
    layout: Layout,
    warnings: list[Warning_],
    header: Header,
) -> Iterator[_RawRow]:
    first = next(lines, None)
    if first is None or not first.strip():
        raise InputError(name, "the first line is empty: a header row naming the columns is needed")
    reader = csv.reader(itertools.chain([first], lines), delimiter=_delimiter(first))
    try:
        names = [n.strip().lower() for n in next(reader)]
        check_header(names, name, source, layout, warnings)
        header.names = [n for n in names if n]
        yield from _csv_data_rows(reader, names, name, layout, lines)
    except csv.Error as error:
        raise InputError(name, mask_national_ids(f"line {reader.line_num}: {error}")) from None


def _csv_data_rows(
    reader: _csv.Reader, names: list[str], name: str, layout: Layout, lines: _Lines
) -> Iterator[_RawRow]:
    known = [(i, n) for i, n in enumerate(names) if n in layout.known]
    normalize = unicodedata.normalize
    row, start = 0, reader.line_num + 1
    for cells in reader:
        end = reader.line_num
        text = "".join(cells)
        if not text.strip():  # no value holds anything but white space
            start = end + 1
            continue
        row += 1
        if len(cells) == len(names):
            # The common cases of `_values`: no control character in any value, so no
            # per-value checks; and all ASCII, so nothing to normalise either.
            if text.isascii() and text.isprintable():
                values = {n: value for i, n in known if (value := cells[i].strip())}
                yield _RawRow(row, start, values)
            elif not _FORBIDDEN.search(text):
                values = {
                    n: value
                    for i, n in known
                    if (value := (c if (c := cells[i]).isascii() else normalize("NFC", c)).strip())
                }
                yield _RawRow(row, start, values)
            else:
                values, problems = _values(zip(names, cells, strict=True), layout)
                yield _RawRow(row, start, values, problems)
        elif end > start:
            raise InputError(
                name,
                f"line {start}: a quoted value runs on to line {end} and the row does not fit"
                " the header; is a quote character missing or stray?",
            )
        else:
            reason = f"has {len(cells)} values where the header has {len(names)} columns"
            if len(cells) < len(names) and not lines.ended:
                raise _cut_short(name, row, start, reason.removeprefix("has "))
            yield _RawRow(row, start, {}, (_Problem(None, reason),), text="\n".join(cells))
        start = end + 1


def _delimiter(header: str) -> str:
    """`;` if the header line has more semicolons than commas outside quotes, else `,`."""
    outside = "".join(part for i, part in enumerate(header.split('"')) if i % 2 == 0)
    return ";" if outside.count(";") > outside.count(",") else ","


def _jsonl_rows(
    lines: _Lines,
    name: str,
    source: str,
    layout: Layout,
    warnings: list[Warning_],
    header: Header,
) -> Iterator[_RawRow]:
    unknown: dict[str, None] = {}
    known: dict[str, None] = {}  # the contract's keys some row has, in the order first seen
    row = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        row += 1
        raw = _json_row(line, row, number, layout, unknown, known)
        if not lines.ended and raw.problems and raw.problems[0].reason == _NOT_JSON:
            raise _cut_short(name, row, number, "a JSON object that is not complete")
        yield raw
    header.names = [*known, *unknown]
    header.known = row > 0  # a file without rows says nothing about its keys
    if unknown:
        warnings.append(unknown_fields_warning(source, list(unknown)))


_NOT_JSON = "is not valid JSON"


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its key/value pairs in order, so that repeated keys can be noticed."""


def _json_row(
    line: str,
    row: int,
    number: int,
    layout: Layout,
    unknown: dict[str, None],
    known: dict[str, None],
) -> _RawRow:
    try:
        obj = json.loads(line, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        return _RawRow(row, number, {}, (_Problem(None, _NOT_JSON),), text=line)
    if not isinstance(obj, _Pairs):
        return _RawRow(row, number, {}, (_Problem(None, "is not a JSON object"),), text=line)
    pairs: list[tuple[str, str]] = []
    problems: list[_Problem] = []
    for key, value in obj:
        name = key.strip().lower()
        if name not in layout.known:
            if len(unknown) < MAX_UNKNOWN_NAMES:
                unknown[name] = None
        elif any(n == name for n, _ in pairs) or any(p.field == name for p in problems):
            problems.append(_Problem(name, "is given more than once"))
        else:
            try:
                pairs.append((name, _json_text(value)))
            except ValueError as error:
                problems.append(_Problem(name, str(error)))
    if len(known) < len(layout.known):
        known.update((n, None) for n, _ in pairs)
        known.update((p.field, None) for p in problems if p.field is not None)
    values, value_problems = _values(pairs, layout)
    return _RawRow(row, number, values, tuple(problems) + value_problems)


def _json_text(value: object) -> str:
    """A JSON value as field text: strings as is, integers in decimal, null as missing."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) < 10**30:
        return str(value)
    raise ValueError("must be a string")


def _values(
    pairs: Iterable[tuple[str, str]], layout: Layout
) -> tuple[dict[str, str], tuple[_Problem, ...]]:
    """Known fields with trimmed, NFC-normalised, non-empty values, and bad characters found."""
    values: dict[str, str] = {}
    problems: list[_Problem] = []
    for name, raw in pairs:
        if name not in layout.known:
            continue
        value = (raw if raw.isascii() else unicodedata.normalize("NFC", raw)).strip()
        if _FORBIDDEN.search(value):
            problems.append(
                _Problem(name, "contains a control character (e.g. a line break or tab)")
            )
        elif value:
            values[name] = value
    return values, tuple(problems)


# ---------------------------------------------------------------------------- rejections


def _rejections(
    source: str,
    raw: _RawRow,
    problems: list[_Problem],
    key: EmployeeKey | None = None,
    national_ids: tuple[NationalId, ...] = (),
) -> list[Rejection]:
    """The rejections of one row, one per problem, each saying whom the row is about."""
    return [
        _rejection(source, raw.row, raw.line, p.field, p.reason, key, national_ids)
        for p in problems
    ]


def _rejection(
    source: str,
    row: int,
    line: int,
    field_: str | None,
    reason: str,
    key: EmployeeKey | None = None,
    national_ids: tuple[NationalId, ...] = (),
) -> Rejection:
    return Rejection(
        file=source,
        row=row,
        field=field_,
        reason=mask_national_ids(reason),
        line=line,
        key=key,
        national_ids=national_ids,
    )
