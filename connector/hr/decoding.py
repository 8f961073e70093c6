"""Decoding an HR or grants file (CSV or JSON Lines) into raw rows of trimmed, normalised text.

A file that cannot be read as a whole (not UTF-8, cut short, a quote run wild) raises `InputError`;
a row that cannot be split into fields becomes a row with a row-level problem.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from connector.errors import InputError
from connector.hr.columns import (
    MAX_UNKNOWN_NAMES,
    Header,
    Layout,
    check_header,
    unknown_fields_warning,
)
from connector.hr.records import (
    Warning_,
)
from connector.nationalid import (
    mask_national_ids,
)

if TYPE_CHECKING:
    import _csv


JSON_LINES_SUFFIXES = frozenset({".jsonl", ".ndjson"})

# Characters no HR value may contain: C0/C1 controls (line breaks, tabs, NUL, ...) and lone
# surrogates (from JSON escapes such as "\ud800", which are not text).
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# Bytes that are not UTF-8 show up as these under the "surrogateescape" error handler.
_UNDECODABLE = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True, slots=True)
class Problem:
    """Why (part of) a row is not accepted; `field` None means the row as a whole."""

    field: str | None
    reason: str


@dataclass(slots=True)
class RawRow:
    """One data row split into known fields: trimmed, NFC-normalised, empty values left out."""

    row: int
    line: int
    values: dict[str, str]
    problems: tuple[Problem, ...] = ()
    text: str = ""  # the raw row, kept only when it cannot be split into fields

    def row_problems(self, layout: Layout) -> list[Problem]:
        """Row-level problems: not splittable into fields, or none of the required ones given."""
        if any(p.field is None for p in self.problems):
            return list(self.problems)
        if self.problems or any(name in self.values for name in layout.required):
            return []
        return [Problem(None, f"has none of the required fields {', '.join(layout.required)}")]


# ---------------------------------------------------------------------------- rows of a file


def read_rows(
    path: Path, layout: Layout, warnings: list[Warning_], header: Header
) -> Iterator[RawRow]:
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
) -> Iterator[RawRow]:
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
) -> Iterator[RawRow]:
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
                yield RawRow(row, start, values)
            elif not _FORBIDDEN.search(text):
                values = {
                    n: value
                    for i, n in known
                    if (value := (c if (c := cells[i]).isascii() else normalize("NFC", c)).strip())
                }
                yield RawRow(row, start, values)
            else:
                values, problems = _values(zip(names, cells, strict=True), layout)
                yield RawRow(row, start, values, problems)
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
            yield RawRow(row, start, {}, (Problem(None, reason),), text="\n".join(cells))
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
) -> Iterator[RawRow]:
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
) -> RawRow:
    try:
        obj = json.loads(line, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        return RawRow(row, number, {}, (Problem(None, _NOT_JSON),), text=line)
    if not isinstance(obj, _Pairs):
        return RawRow(row, number, {}, (Problem(None, "is not a JSON object"),), text=line)
    pairs: list[tuple[str, str]] = []
    problems: list[Problem] = []
    for key, value in obj:
        name = key.strip().lower()
        if name not in layout.known:
            if len(unknown) < MAX_UNKNOWN_NAMES:
                unknown[name] = None
        elif any(n == name for n, _ in pairs) or any(p.field == name for p in problems):
            problems.append(Problem(name, "is given more than once"))
        else:
            try:
                pairs.append((name, _json_text(value)))
            except ValueError as error:
                problems.append(Problem(name, str(error)))
    if len(known) < len(layout.known):
        known.update((n, None) for n, _ in pairs)
        known.update((p.field, None) for p in problems if p.field is not None)
    values, value_problems = _values(pairs, layout)
    return RawRow(row, number, values, tuple(problems) + value_problems)


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
) -> tuple[dict[str, str], tuple[Problem, ...]]:
    """Known fields with trimmed, NFC-normalised, non-empty values, and bad characters found."""
    values: dict[str, str] = {}
    problems: list[Problem] = []
    for name, raw in pairs:
        if name not in layout.known:
            continue
        value = (raw if raw.isascii() else unicodedata.normalize("NFC", raw)).strip()
        if _FORBIDDEN.search(value):
            problems.append(
                Problem(name, "contains a control character (e.g. a line break or tab)")
            )
        elif value:
            values[name] = value
    return values, tuple(problems)
