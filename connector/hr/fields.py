"""Parsing and checking the fields of one row, and the caches one read shares between its rows."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from connector.hr.decoding import Problem, RawRow
from connector.hr.records import (
    HrRecord,
    NationalId,
    RelationType,
    Warning_,
)
from connector.nationalid import (
    find_national_ids,
    holds_national_id,
    mask_national_ids,
    parse_national_id,
)
from connector.organisation import normalise_organisation_code

T = TypeVar("T")


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_EMAIL_LOCAL = re.compile(r"[^\s@,;:<>()\[\]\\\"]+")
_EMAIL_DOMAIN = re.compile(r"(?:[^\W_](?:[\w-]*[^\W_])?\.)+[^\W\d_]{2,}")
_SPACE = re.compile(r"\s")


class Context:
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
            date = self._dates[text] = parse_date(text)
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
EMAIL_HOLDS_NATIONAL_ID = (
    "holds a national number; the e-mail address becomes the account's userName and is shown"
    " and pushed in clear: give the person's work address, never one made of the national number"
)


def too_long(values: dict[str, str]) -> bool:
    return any(len(values.get(name) or "") > limit for name, limit in MAX_LENGTHS.items())


def check_lengths(f: Fields) -> None:
    for name, limit in MAX_LENGTHS.items():
        value = f.optional(name)
        if value is not None and len(value) > limit and not f.has_problem(name):
            f.reject(name, f"is {len(value)} characters long; at most {limit} are accepted")


def free_text_clean(values: dict[str, str]) -> bool:
    """The fast path's test: no free-text field holds a national number."""
    return not any(
        holds_national_id(value)
        for name in FREE_TEXT_FIELDS
        if (value := values.get(name)) is not None
    )


def check_free_text(f: Fields) -> None:
    for name in FREE_TEXT_FIELDS:
        value = f.optional(name)
        if value is not None and not f.has_problem(name) and holds_national_id(value):
            f.reject(name, HOLDS_NATIONAL_ID)


def formula_warnings(source: str, record: HrRecord) -> Iterator[Warning_]:
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


class Fields:
    """Reads the fields of one row, collecting every problem instead of stopping at the first."""

    def __init__(self, raw: RawRow) -> None:
        self._values = raw.values
        self.problems: list[Problem] = list(raw.problems)

    def has_problem(self, name: str) -> bool:
        """True if the field was already found wrong."""
        return any(p.field == name for p in self.problems)

    def reject(self, name: str, reason: str) -> None:
        """Record a problem with a field."""
        self.problems.append(Problem(name, reason))

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


def shown(value: str) -> str:
    """The value quoted for a reason, unless it could hold a national number (11+ digits)."""
    if sum(c.isdigit() for c in value) >= 11 or len(value) > 40:
        return ""
    return f" (got {quoted(value)})"


def quoted(text: str) -> str:
    """Text in quotes for a message, with unprintable characters shown as `?`."""
    return "'" + "".join(c if c.isprintable() else "?" for c in text) + "'"


def parse_date(text: str) -> dt.date:
    if not (text.isascii() and _ISO_DATE.fullmatch(text)):
        raise ValueError(f"must be a date written YYYY-MM-DD{shown(text)}")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"is not a real date{shown(text)}") from None


def parse_employee_id(text: str) -> str:
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
    if holds_national_id(text):
        raise ValueError(EMAIL_HOLDS_NATIONAL_ID)
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


def parse_relation(text: str) -> RelationType:
    relation = _RELATIONS.get(text.lower())
    if relation is None:
        raise ValueError(f"must be 'employee' or 'external'{shown(text)}")
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
        named = ", ".join(map(quoted, unknown))
        listed = ", ".join(map(quoted, sorted(known))) or "none"
        raise ValueError(f"unknown right {named}; known rights: {listed}")
