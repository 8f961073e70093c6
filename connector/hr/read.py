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
from dataclasses import dataclass
from pathlib import Path

from connector.hr.columns import (
    HR_FILE,
    HR_LAYOUT,
    Header,
)
from connector.hr.decoding import Problem, read_rows
from connector.hr.fields import Context, formula_warnings
from connector.hr.grant_rows import read_grants_file
from connector.hr.hr_rows import ReadPolicy, check_hr_row, hr_record
from connector.hr.records import (
    EmployeeKey,
    HrInput,
    HrRecord,
    NationalId,
    RowHold,
    Warning_,
)
from connector.hr.rejections import rejection, rejections
from connector.nationalid import (
    find_national_ids,
    mask_national_ids,
)

__all__ = ["ReadPolicy", "read_hr"]


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
        read_grants_file(grants_path, known_rights, out, hr_source=path.name)
    return out


# ---------------------------------------------------------------------------- HR file


def _read_hr_file(
    path: Path, policy: ReadPolicy, known_rights: frozenset[str] | None, out: HrInput
) -> None:
    source = path.name
    context = Context(known_rights)
    # The first row of every employee key: its record when accepted (which says where it is,
    # given the line numbers), else where it was; and every row of the keys seen more than once.
    seen: dict[EmployeeKey, HrRecord | _Seen] = {}
    duplicates: dict[EmployeeKey, list[_Seen]] = {}
    lines = _LineNumbers()
    kept: list[HrRecord] = []
    header = out.columns[HR_FILE] = Header(source, HR_LAYOUT)
    for raw in read_rows(path, HR_LAYOUT, out.warnings, header):
        lines.note(raw.row, raw.line)
        record = None if raw.problems else hr_record(raw, source, policy, context)
        if record is not None:  # the common case
            key: EmployeeKey | None = record.key
            problems: list[Problem] = []
            national_id: NationalId | None = record.national_id
        else:
            checked = check_hr_row(raw, source, policy, context)
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
            out.warnings.extend(formula_warnings(source, record))
            continue
        digits = national_id.digits if national_id is not None else None
        # A row that could not be split into fields still names whoever it names.
        named = {n.digits: n for n in find_national_ids(raw.text) if n.digits != digits}
        whom: tuple[NationalId, ...] = (national_id,) if national_id is not None else ()
        whom += tuple(named[d] for d in sorted(named))
        row_rejections = rejections(source, raw, problems, key, whom)
        out.rejected.extend(row_rejections)
        if digits is not None:
            out.rejected_national_ids.add(digits)
        if key is not None:
            out.rejected_keys.add(key)
        if row_rejections and (digits is not None or key is not None):
            out.holds.append(RowHold(row_rejections[0], digits, key))
        # A row that could not be split into fields still holds whoever it names.
        out.rejected_national_ids.update(named)
        out.holds.extend(RowHold(row_rejections[0], d) for d in sorted(named) if row_rejections)
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
            duplicate = rejection(source, here.row, here.line, "employee_id", reason, key, whom)
            out.rejected.append(duplicate)
            digits = here.national_id.digits if here.national_id is not None else None
            out.holds.append(RowHold(duplicate, digits, key))
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
