"""The rejections of a row, each saying whom the row is about, with no national number in clear."""

from __future__ import annotations

from connector.hr.decoding import Problem, RawRow
from connector.hr.records import (
    EmployeeKey,
    NationalId,
    Rejection,
)
from connector.nationalid import (
    mask_national_ids,
)

# ---------------------------------------------------------------------------- rejections


def rejections(
    source: str,
    raw: RawRow,
    problems: list[Problem],
    key: EmployeeKey | None = None,
    national_ids: tuple[NationalId, ...] = (),
) -> list[Rejection]:
    """The rejections of one row, one per problem, each saying whom the row is about."""
    return [
        rejection(source, raw.row, raw.line, p.field, p.reason, key, national_ids) for p in problems
    ]


def rejection(
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
