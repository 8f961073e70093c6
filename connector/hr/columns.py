"""The columns of the HR file and the grants file: which the contract knows, checking a header,
and header drift: a contract column the last successful sync read that is missing now.

A renamed or dropped column is not a bad row: every row of the file lacks it, and the reader
would take its absence for "no value" (no `end_date`: nobody ever leaves; no `rights`: every
right withdrawn). So the contract columns of each file are kept in the state store after every
sync that applied its plan, and a later file without one of them is an error (exit 2, nothing
applied) until the change is accepted (`--accept-columns`, for that one run; once it applied,
the new columns are the ones compared with).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from connector.errors import InputError
from connector.hr.records import Warning_
from connector.nationalid import mask_national_ids

MAX_UNKNOWN_NAMES = 20


@dataclass(frozen=True, slots=True)
class Layout:
    """The fields one kind of file knows (`columns`, in the contract's order)."""

    columns: tuple[str, ...]
    required: tuple[str, ...]
    known: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "known", frozenset(self.columns))


# The HR-input contract's columns, in the order the contract lists them (and files are written).
HR_COLUMNS = (
    "employee_id",
    "national_id",
    "given_name",
    "family_name",
    "email",
    "organisation_code",
    "organisation_name",
    "department",
    "job_title",
    "relation",
    "employer_code",
    "start_date",
    "end_date",
    "rights",
)
_HR_REQUIRED = (
    "employee_id",
    "national_id",
    "given_name",
    "family_name",
    "email",
    "organisation_code",
    "start_date",
)
HR_LAYOUT = Layout(HR_COLUMNS, required=_HR_REQUIRED)
GRANT_COLUMNS = ("organisation_code", "employee_id", "right", "begin_date", "end_date")
GRANTS_LAYOUT = Layout(GRANT_COLUMNS, required=GRANT_COLUMNS[:3])

# The names the state store keeps the columns of each file under.
HR_FILE = "hr"
GRANTS_FILE = "grants"


@dataclass(slots=True)
class Header:
    """The columns one file turned out to have: all names as found (in order), and whether
    they are known at all (a JSON Lines file without data rows says nothing about them)."""

    file: str  # the file's name, for messages
    layout: Layout
    names: list[str] = field(default_factory=list)
    known: bool = True

    @property
    def contract(self) -> tuple[str, ...] | None:
        """The contract columns among them, in the contract's order (None: unknown)."""
        if not self.known:
            return None
        found = set(self.names)
        return tuple(c for c in self.layout.columns if c in found)


def contract_columns(headers: Mapping[str, Header]) -> dict[str, tuple[str, ...]]:
    """What the state store keeps of the headers: each file's contract columns, if known."""
    return {
        kind: columns
        for kind, header in headers.items()
        if (columns := header.contract) is not None
    }


class ColumnsMissing(InputError):
    """Contract columns the last successful sync read are missing from an input file."""

    def __init__(self, file: str, missing: Iterable[str], found: Iterable[str]) -> None:
        self.missing = tuple(missing)
        listed = ", ".join(_quoted(n) for n in found) or "none"
        super().__init__(
            file,
            mask_national_ids(
                f"column(s) {', '.join(self.missing)} missing: the last sync that applied its"
                f" plan read them, and without them every row would lose what they said"
                f" (columns found: {listed}). Fix the export, or, if the change is intended,"
                " run once with --accept-columns"
            ),
        )


def missing_columns(
    headers: Mapping[str, Header], last: Mapping[str, tuple[str, ...]]
) -> ColumnsMissing | None:
    """The first file (HR before grants) missing a contract column it had last time, as the
    error to raise; None when every column the last successful sync read is still there."""
    for kind in (HR_FILE, GRANTS_FILE):
        header = headers.get(kind)
        before = last.get(kind)
        now = header.contract if header is not None else None
        if header is None or now is None or before is None:
            continue
        gone = [c for c in before if c not in now]
        if gone:
            return ColumnsMissing(header.file, gone, header.names)
    return None


def check_header(
    names: list[str], name: str, source: str, layout: Layout, warnings: list[Warning_]
) -> None:
    """Refuse a header with a column twice or a required one missing; warn of unknown ones."""
    doubled = sorted({n for n in names if n in layout.known and names.count(n) > 1})
    if doubled:
        raise InputError(name, f"column(s) {', '.join(doubled)} appear more than once")
    missing = [n for n in layout.required if n not in names]
    if missing:
        if layout.known & set(names):  # a header: say what it has
            listed = ", ".join(n for n in names if n)
            hint = mask_national_ids(f"; the header has: {listed}")
        else:  # the first line is data, not to be repeated
            hint = "; is the header row missing?"
        raise InputError(name, f"missing required column(s): {', '.join(missing)}{hint}")
    unknown = [n for n in names if n and n not in layout.known]
    if unknown:
        warnings.append(unknown_fields_warning(source, unknown))


def unknown_fields_warning(source: str, names: list[str]) -> Warning_:
    """The warning for columns (or JSON keys) the contract does not know."""
    listed = ", ".join(map(_quoted, names[:MAX_UNKNOWN_NAMES]))
    return Warning_(
        kind="unknown_columns",
        message=mask_national_ids(f"ignoring unknown column(s): {listed}"),
        file=source,
    )


def _quoted(text: str) -> str:
    """Text in quotes for a message, with unprintable characters shown as `?`."""
    return "'" + "".join(c if c.isprintable() else "?" for c in text) + "'"
