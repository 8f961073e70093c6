"""Validated HR records: what the readers yield and the rest of the core consumes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from connector.hr.columns import Header


class RelationType(StrEnum):
    """The kind of work relation a person has with an organisation."""

    EMPLOYEE = "employee"
    EXTERNAL = "external"


def mask_digits(digits: str) -> str:
    """Mask an 11-digit national number: birth date part kept, serial and checksum hidden."""
    return f"{digits[0:2]}.{digits[2:4]}.{digits[4:6]}-***.**"


@dataclass(frozen=True, slots=True)
class NationalId:
    """A validated rijksregisternummer or bisnummer, kept as 11 digits.

    `str()` and `repr()` give the masked form, so the clear number never leaks into
    logs or exception text by accident; use `.digits` where the clear value is needed.
    """

    digits: str
    kind: str  # "nn" (rijksregisternummer) or "bis" (bisnummer)

    @property
    def masked(self) -> str:
        """The number with serial and checksum hidden: `85.07.30-***.**`."""
        return mask_digits(self.digits)

    def __str__(self) -> str:
        return self.masked

    def __repr__(self) -> str:
        return f"NationalId({self.masked!r}, kind={self.kind!r})"


@dataclass(frozen=True, slots=True)
class EmployeeKey:
    """The HR key of one work relation: organisation code and employee id."""

    organisation_code: str
    employee_id: str

    def __str__(self) -> str:
        return f"{self.organisation_code}:{self.employee_id}"


@dataclass(frozen=True, slots=True)
class HrRecord:
    """One validated HR row: one work relation of one person with one organisation."""

    source: str  # file name, for reports
    row: int  # data row number, counted from 1 (the header is not a row)
    employee_id: str
    national_id: NationalId
    given_name: str
    family_name: str
    email: str
    organisation_code: str  # normalised: 10-digit KBO or OVO + 6 digits
    start_date: dt.date
    end_date: dt.date | None = None  # last working day, inclusive
    organisation_name: str | None = None
    department: str | None = None
    job_title: str | None = None
    relation: RelationType = RelationType.EMPLOYEE
    employer_code: str | None = None
    rights: tuple[str, ...] = ()
    # The key, made on first use and then shared by everything built from this row (the
    # reader's duplicate check, the person's work relation and grants), so that 150,000 rows
    # do not make a new EmployeeKey at every look-up. Not a value of the record.
    _key: EmployeeKey | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def key(self) -> EmployeeKey:
        """The `(organisation_code, employee_id)` key of this row."""
        key = self._key
        if key is None:
            key = EmployeeKey(self.organisation_code, self.employee_id)
            object.__setattr__(self, "_key", key)
        return key


@dataclass(frozen=True, slots=True)
class GrantRecord:
    """One validated row of the grants file: a right with its own dates."""

    source: str
    row: int
    organisation_code: str
    employee_id: str
    right: str
    begin_date: dt.date | None = None
    end_date: dt.date | None = None  # inclusive

    @property
    def key(self) -> EmployeeKey:
        """The work relation this grant belongs to."""
        return EmployeeKey(self.organisation_code, self.employee_id)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A row that was not accepted: where it is, why, and whom it is about as far as its cells
    could be read. Never shows a national number in clear (`NationalId` masks itself)."""

    file: str
    row: int | None  # None for problems that are not about one row
    field: str | None
    reason: str
    line: int | None = None  # physical line in the file, when known
    # Whom the row is about: its employee key (organisation code and employee id readable)
    # and the valid national numbers it names. Neither: it could be anyone's row.
    key: EmployeeKey | None = None
    national_ids: tuple[NationalId, ...] = ()

    @property
    def attributed(self) -> bool:
        """Whether the row says whom it is about (an employee key or a national number)."""
        return self.key is not None or bool(self.national_ids)

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f" row {self.row}"
            if self.line is not None:
                where += f" (line {self.line})"
        if self.field:
            where += f", field {self.field}"
        return f"{where}: {self.reason}"


def rows_text(rejections: Iterable[Rejection]) -> str:
    """Where rejected rows are, per file: `hr.csv rows 3, 7; grants.csv row 2`."""
    per_file: dict[str, dict[int, None]] = {}
    for rejection in rejections:
        rows = per_file.setdefault(rejection.file, {})
        if rejection.row is not None:
            rows[rejection.row] = None
    parts = []
    for file, rows in per_file.items():
        numbers = ", ".join(map(str, rows))
        parts.append(f"{file} row{'s' if len(rows) > 1 else ''} {numbers}" if rows else file)
    return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class RowHold:
    """What one rejected row touches, as far as the row could be read: whose row it is (a
    valid national number and/or employee key) and, for a grants-file row, which right (None:
    unreadable). What it touches is held at its last pushed state for the run (`holds`)."""

    rejection: Rejection  # where and why (its first problem)
    national_digits: str | None = field(default=None, repr=False)
    key: EmployeeKey | None = None
    grant: bool = False  # a grants-file row: it holds withdrawals, not the relation
    right: str | None = None


@dataclass(frozen=True, slots=True)
class Warning_:
    """Something worth a human's attention that did not stop anything."""

    kind: str
    message: str
    file: str | None = None
    row: int | None = None
    field: str | None = None
    person: str | None = None  # the label of the person it is about (people_display)


@dataclass(slots=True)
class HrInput:
    """Everything read from the HR source: accepted records, grants and what was rejected."""

    records: list[HrRecord] = field(default_factory=list)
    grants: list[GrantRecord] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[Warning_] = field(default_factory=list)
    # What identifies the people behind rejected rows, as far as the row allowed: a valid
    # national number (digits) and/or the employee key. Such people are held: left exactly
    # as they are in the target for this run, whatever their other rows say.
    rejected_national_ids: set[str] = field(default_factory=set)
    rejected_keys: set[EmployeeKey] = field(default_factory=set)
    # The columns each file had ("hr", "grants"): for header drift (`connector.hr.columns`).
    columns: dict[str, Header] = field(default_factory=dict)
    # Each rejected row that names someone, with what it touches (see `holds`).
    holds: list[RowHold] = field(default_factory=list)
